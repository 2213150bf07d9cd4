// The network driver with Docker's own IPAM (no --ipam-driver): dockerd allocates, macnet only wires links.
import { after, before } from 'node:test';
import { test } from '../lab/engine-test';
import assert from 'node:assert/strict';
import { Daemon } from '../lab/daemon';
import { Lab } from '../lab/lab';
import { ipJson } from '../lab/sh';

let lab: Lab;
let d: Daemon;
before(async () => {
  lab = await Lab.create({ hosts: 1, docker: true });
  d = await Daemon.start({ netns: lab.hosts[0]!.ns.path, pluginDir: lab.hosts[0]!.pluginDir });
});
after(async () => {
  await d?.remove();
  await lab?.destroy();
});

test("-d macnet with Docker's default IPAM: containers get Docker's addresses and reach the LAN", async () => {
  const h = lab.hosts[0]!;
  const net = await h.docker(
    'network',
    'create',
    '-d',
    'macnet',
    '--subnet',
    '198.18.15.0/24',
    '--gateway',
    '198.18.15.1',
    '--ip-range',
    '198.18.15.192/26',
    '-o',
    'parent=eth0',
    'dflt',
  );
  assert.equal(net.code, 0, net.stderr);
  const ipam = await h.docker('network', 'inspect', '-f', '{{.IPAM.Driver}}', 'dflt');
  assert.equal(ipam.stdout.trim(), 'default');
  const r = await h.docker(
    'run',
    '--rm',
    '--net',
    'dflt',
    'busybox:local',
    'sh',
    '-c',
    'ip -4 addr show eth0 | grep -o "inet [0-9./]*"; ping -c 1 -W 2 198.18.15.1 >/dev/null && echo reached',
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /inet 198\.18\.15\.19[2-9]\/24|inet 198\.18\.15\.2[0-5][0-9]\/24/);
  assert.match(r.stdout, /reached/);
  assert.equal((await h.docker('network', 'rm', 'dflt')).code, 0);
  const links = await ipJson<{ ifname: string }[]>(h.ns.name, 'link', 'show');
  assert.deepEqual(links.map((l) => l.ifname).sort(), ['eth0', 'lo']);
  const state = await d.call('IpamDriver.GetDefaultAddressSpaces');
  assert.equal(state.status, 200, 'the daemon still answers');
});
