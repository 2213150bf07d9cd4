// The two-host address conflict of the built-in IPAM (a LAN device and two hosts on one address) at scale, with
// --ipam-driver macnet: LAN devices at several low addresses, 200 containers started without --ip on two hosts
// at once. Then, from the LAN side, one ARP request per address of the subnet, every reply counted: each address
// must be answered by exactly one machine.
import { after, before } from 'node:test';
import { test } from '../lab/engine-test';
import assert from 'node:assert/strict';
import { arpSweep } from '../lab/arp';
import { Daemon } from '../lab/daemon';
import { LAN, Lab, type LabHost } from '../lab/lab';
import type { TestNetns } from '../lab/netns';
import { sh } from '../lab/sh';
import { createMacnetNetwork } from '../lab/networks';

const PER_HOST = 100;
/** docker runs in flight per host: dockerd serialises much of a start anyway; more only queues in it. */
const CONCURRENCY = 8;
/** LAN devices (one namespace, one MAC) at low addresses, where Docker's IPAM would start handing out. */
const DEVICE_ADDRESSES = ['198.18.15.2', '198.18.15.3', '198.18.15.4', '198.18.15.6', '198.18.15.9', '198.18.15.20'];

let lab: Lab;
let device: TestNetns;
const daemons: Daemon[] = [];

before(async () => {
  lab = await Lab.create({ hosts: 2, docker: true });
  device = await lab.lanDevice('devices', 'dev0');
  for (const a of DEVICE_ADDRESSES) await sh('ip', '-n', device.name, 'addr', 'add', `${a}/24`, 'dev', 'eth0');
  await sh('ip', '-n', device.name, 'link', 'set', 'eth0', 'up');
  for (const h of lab.hosts)
    daemons.push(
      await Daemon.start({
        netns: h.ns.path,
        mountNs: h.mountNs,
        pluginDir: h.pluginDir,
        extraArgs: ['--log-level', 'info'],
      }),
    );
});
after(async () => {
  for (const d of daemons) await d.remove();
  await lab?.destroy();
});

async function startAll(h: LabHost, names: string[]): Promise<string[]> {
  const failures: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < names.length) {
        const n = names[next++]!;
        const r = await h.docker('run', '-d', '--name', n, '--net', 'lan', 'busybox:local', 'sleep', '600');
        if (r.code !== 0) failures.push(`${n}: ${r.stderr.trim()}`);
      }
    }),
  );
  return failures;
}

test(`${2 * PER_HOST} containers without --ip on two hosts at once: every address is answered by exactly one machine`, async (t) => {
  const [h1, h2] = lab.hosts as [LabHost, LabHost];
  const names = (h: LabHost) => Array.from({ length: PER_HOST }, (_, i) => `s${h.index}-${i}`);
  t.after(async () => {
    for (const h of [h1, h2]) {
      await h.docker('rm', '-f', ...names(h));
      await h.docker('network', 'rm', 'lan');
    }
  });
  for (const h of [h1, h2]) await createMacnetNetwork(h, 'lan');
  const started = Date.now();
  const failures = (await Promise.all([h1, h2].map((h) => startAll(h, names(h))))).flat();
  t.diagnostic(
    `${2 * PER_HOST} containers started in ${((Date.now() - started) / 1000).toFixed(1)} s, ${CONCURRENCY} at a time per host`,
  );
  assert.deepEqual(failures, []);

  const containers = new Map<string, string>(); // address → container
  for (const h of [h1, h2]) {
    const r = await h.docker(
      'inspect',
      '-f',
      '{{.Name}} {{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}',
      ...names(h),
    );
    assert.equal(r.code, 0, r.stderr);
    for (const line of r.stdout.trim().split('\n')) {
      const [name, ip] = line.trim().split(' ') as [string, string];
      assert.ok(ip, `${name} has no address`);
      assert.ok(!containers.has(ip), `${ip} given to ${containers.get(ip)} and ${name}`);
      containers.set(ip, `h${h.index}${name}`);
    }
  }
  assert.equal(containers.size, 2 * PER_HOST);
  const others = [LAN.router4, h1.ipv4, h2.ipv4, ...DEVICE_ADDRESSES];
  for (const ip of others)
    assert.ok(!containers.has(ip), `${ip} (a LAN device, a host or the router) was given to ${containers.get(ip)}`);

  const swept = await arpSweep(lab, [...containers.keys(), ...DEVICE_ADDRESSES, h1.ipv4, h2.ipv4]);
  const wrong = [...swept]
    .filter(([, macs]) => macs.length !== 1)
    .map(([ip, macs]) => `${ip} (${containers.get(ip) ?? 'LAN'}): ${macs.length} replies ${macs.join(' ')}`);
  t.diagnostic(
    `ARP from the LAN side: ${swept.size} addresses asked, ${swept.size - wrong.length} answered by exactly one reply`,
  );
  assert.deepEqual(wrong, [], 'every address answered exactly once');
  // And by distinct machines: no MAC answers for two addresses except the device's (it holds all of its own).
  const byMac = new Map<string, string[]>();
  for (const [ip, [mac]] of swept) if (mac) byMac.set(mac, [...(byMac.get(mac) ?? []), ip]);
  const shared = [...byMac].filter(([, ips]) => ips.length > 1 && !ips.every((ip) => DEVICE_ADDRESSES.includes(ip)));
  assert.deepEqual(shared, [], 'one MAC per container');
});
