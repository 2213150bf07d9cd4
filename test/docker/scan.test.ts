// `macnet scan` end to end: two lab hosts with dockerd and macnet, a LAN device holding two addresses, one of
// them also held by a second machine (a deliberate duplicate), containers on both hosts. The CLI runs as a
// user runs it: in host 1's network and mount namespaces, against host 1's dockerd and daemon.
import { after, before } from 'node:test';
import { test } from '../lab/engine-test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Kernel } from '../../src/kernel';
import type { Row } from '../../src/drivers/inventory';
import { Daemon } from '../lab/daemon';
import { LAN, Lab, type LabHost } from '../lab/lab';
import type { TestNetns } from '../lab/netns';
import { run, sh } from '../lab/sh';
import { scanAsUser } from '../lab/readme';
import { createMacnetNetwork } from '../lab/networks';

const MAIN = path.join(__dirname, '..', '..', '..', 'bin', 'macnet');
let lab: Lab;
const daemons: Daemon[] = [];
let deviceMac: string;
let dupMac: string;

async function lanDevice(label: string, addresses: string[]): Promise<string> {
  const ns: TestNetns = await lab.lanDevice(label, `${label}0`);
  for (const a of addresses) await sh('ip', '-n', ns.name, 'addr', 'add', `${a}/24`, 'dev', 'eth0');
  await sh('ip', '-n', ns.name, 'link', 'set', 'eth0', 'up');
  return (await Kernel.with(ns.path, (k) => k.links.get('eth0'))).mac!;
}

before(async () => {
  lab = await Lab.create({ hosts: 2, docker: true, ipv6: true });
  deviceMac = await lanDevice('dev', ['198.18.15.2', '198.18.15.3']);
  dupMac = await lanDevice('dup', ['198.18.15.3']);
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

const scan = scanAsUser;
const inspect = async (h: LabHost, c: string) => {
  const r = await h.docker(
    'inspect',
    '-f',
    '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.MacAddress}} {{.EndpointID}}{{end}}',
    c,
  );
  const [ip, mac, endpoint] = r.stdout.trim().split(' ') as [string, string, string];
  return { ip, mac, endpoint };
};

test('scan lists containers of both hosts, the host, the gateway, LAN devices and the duplicate; a down container is silent', async (t) => {
  const [h1, h2] = lab.hosts as [LabHost, LabHost];
  const names: [LabHost, string][] = [
    [h1, 'a1'],
    [h1, 'a2'],
    [h1, 'a3'],
    [h1, 'a4'],
    [h2, 'b1'],
    [h2, 'b2'],
  ];
  t.after(async () => {
    for (const [h, n] of names) await h.docker('rm', '-f', n);
    for (const h of [h1, h2]) await h.docker('network', 'rm', 'lan');
  });
  await createMacnetNetwork(h1, 'lan', { opts: { host_access: 'true' } });
  await createMacnetNetwork(h2, 'lan');
  for (const [h, n] of names) {
    const r = await h.docker(
      'run',
      '-d',
      '--name',
      n,
      '--net',
      'lan',
      ...(n === 'a3' ? ['--cap-add', 'NET_ADMIN'] : []),
      'busybox:local',
      'sleep',
      '300',
    );
    assert.equal(r.code, 0, r.stderr);
  }
  const info = new Map(await Promise.all(names.map(async ([h, n]) => [n, await inspect(h, n)] as const)));
  // a3's interface goes down: its endpoint is known but silent. a4 is stopped: Docker deletes its endpoint
  // and releases its address (this engine sends no container name, so IPAM keeps no sticky record of it).
  assert.equal((await h1.docker('exec', 'a3', 'ip', 'link', 'set', 'eth0', 'down')).code, 0);
  assert.equal((await h1.docker('stop', '-t', '0', 'a4')).code, 0);

  const started = Date.now();
  const r = await scan(h1, 'lan', '--json');
  const ms = Date.now() - started;
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Row[];
  const by = new Map(rows.map((x) => [x.address, x]));
  t.diagnostic(
    `scan took ${ms} ms (CLI included), ${rows.length} rows:\n${rows.map((x) => `${x.address} ${JSON.stringify(x.replies)} ${x.owner} ${x.note}`).join('\n')}\n${(await h1.exec('ip', '-br', 'link')).stdout}`,
  );
  const row = (ip: string) => {
    const x = by.get(ip);
    assert.ok(x, `${ip} missing from the scan`);
    return x;
  };
  for (const n of ['a1', 'a2']) {
    const { ip, mac, endpoint } = info.get(n)!;
    assert.match(mac, /^0a:/, "macnet's MAC signature");
    assert.deepEqual([row(ip).owner, row(ip).mac, row(ip).conflict], ['container (this host)', mac, false], n);
    assert.match(row(ip).note, new RegExp(`^endpoint ${endpoint.slice(0, 12)}, link mn`));
  }
  for (const n of ['b1', 'b2']) {
    const { ip, mac } = info.get(n)!;
    // Started seconds ago: host 2's probe link may still defend the address (30 s), so its MAC may show too.
    assert.deepEqual(
      [row(ip).owner, row(ip).mac.split(',')[0], row(ip).conflict],
      ['macnet container (other host)', mac, false],
      n,
    );
  }
  assert.deepEqual([row(info.get('a3')!.ip).owner, row(info.get('a3')!.ip).replies], ['container (this host)', []]);
  assert.match(row(info.get('a3')!.ip).note, /^silent: no reply/);
  assert.ok(!by.has(info.get('a4')!.ip), "a stopped container's address is free again: not listed");
  assert.equal(row(h1.ipv4).owner, 'host');
  assert.match(row(h1.ipv4).note, /link eth0/);
  const hostAccess = rows.filter((x) => x.owner === 'host' && /link mnh/.test(x.note));
  assert.equal(hostAccess.length, 1, "the host-access link's address is the host's");
  assert.equal(row(LAN.router4).owner, 'gateway');
  assert.deepEqual(
    [row('198.18.15.2').owner, row('198.18.15.2').mac, row('198.18.15.2').conflict],
    ['unknown', deviceMac, false],
  );
  assert.equal(row(h2.ipv4).owner, 'unknown', "another host's own address carries no signature");
  const dup = row('198.18.15.3');
  assert.equal(dup.conflict, true);
  assert.deepEqual(dup.replies.map((x) => x.mac).sort(), [deviceMac, dupMac].sort());
  assert.match(dup.note, /^CONFLICT: 2 MACs answer/);
  assert.deepEqual(
    rows.filter((x) => x.conflict).map((x) => x.address),
    ['198.18.15.3'],
    'the duplicate is the only conflict',
  );

  // The table: a header, then one line per address, sorted as in the JSON.
  const text = await scan(h1, 'lan');
  assert.equal(text.code, 0, text.stderr);
  const lines = text.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^ADDRESS +MAC +OWNER +NOTE$/);
  assert.deepEqual(
    lines.slice(1).map((l) => l.split(/ +/)[0]),
    rows.map((x) => x.address),
  );
  assert.match(text.stderr, /asked 254 IPv4 and \d+ IPv6 addresses in \d+ ms; \d+ listed, 1 conflict/);
  t.diagnostic(`table:\n${text.stdout}${text.stderr}`);
  // By id prefix (no Docker lookup) the same network.
  const id = (await h1.docker('network', 'inspect', '-f', '{{.Id}}', 'lan')).stdout.trim();
  const byId = await run(process.execPath, [MAIN, 'scan', id.slice(0, 12), '--json', '--plugin-dir', h1.pluginDir]);
  assert.equal(byId.code, 0, byId.stderr);
});

test('IPv6: the addresses macnet knows are asked with a DAD solicitation and answered', async (t) => {
  const [h1, h2] = lab.hosts as [LabHost, LabHost];
  t.after(async () => {
    await h1.docker('rm', '-f', 'v1');
    await h2.docker('rm', '-f', 'w1');
    for (const h of [h1, h2]) await h.docker('network', 'rm', 'lan6');
  });
  for (const h of [h1, h2]) await createMacnetNetwork(h, 'lan6', { ipv6: true });
  assert.equal(
    (await h1.docker('run', '-d', '--name', 'v1', '--net', 'lan6', 'busybox:local', 'sleep', '300')).code,
    0,
  );
  assert.equal(
    (await h2.docker('run', '-d', '--name', 'w1', '--net', 'lan6', 'busybox:local', 'sleep', '300')).code,
    0,
  );
  const ip6 = (
    await h1.docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}', 'v1')
  ).stdout.trim();
  const mac = (await inspect(h1, 'v1')).mac;
  // A DAD solicitation for an address still tentative on its owner would make the owner give it up: wait.
  for (
    let i = 0;
    i < 50 && /tentative/.test((await h1.docker('exec', 'v1', 'ip', '-6', 'addr', 'show', 'dev', 'eth0')).stdout);
    i++
  )
    await new Promise((r) => setTimeout(r, 100));
  const r = await scan(h1, 'lan6', '--json');
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Row[];
  const v6 = rows.filter((x) => x.address.includes(':'));
  t.diagnostic(v6.map((x) => `${x.address} ${x.mac} ${x.owner} ${x.note}`).join('\n'));
  const by = new Map(v6.map((x) => [x.address, x]));
  assert.deepEqual(
    [by.get(ip6)?.owner, by.get(ip6)?.mac, by.get(ip6)?.conflict],
    ['container (this host)', mac, false],
  );
  assert.deepEqual(by.get(ip6)?.replies.length, 1, 'it answered the solicitation');
  assert.deepEqual([by.get(LAN.router6)?.owner, by.get(LAN.router6)?.replies.length], ['gateway', 1]);
  assert.equal(by.get(h1.ipv6!)?.owner, 'host');
  const w1 = (
    await h2.docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}', 'w1')
  ).stdout.trim();
  assert.ok(!by.has(w1), "another host's IPv6 containers are not known here, so not asked (a /64 cannot be swept)");
});

test('scan errors: an unknown network is NETWORK_NOT_FOUND, a non-macnet one too, no daemon is DAEMON_UNREACHABLE', async () => {
  const h1 = lab.hosts[0]!;
  const r = await scan(h1, 'nosuchnet');
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /^macnet: NETWORK_NOT_FOUND: scan: Docker at unix:\/\/\S+ has no network "nosuchnet"; `docker network ls --filter driver=macnet`/,
  );
  assert.equal(r.stdout, '');
  const host = await scan(h1, 'host'); // Docker's own "host" network: Docker knows it, macnet does not
  assert.equal(host.code, 1);
  assert.match(
    host.stderr,
    /NETWORK_NOT_FOUND: scan: no macnet network with id "[0-9a-f]{64}".*\(Docker network "host"; is it a macnet network of this daemon\?\)/,
  );
  const none = await run(process.execPath, [MAIN, 'scan', 'f'.repeat(12), '--plugin-dir', '/nonexistent-macnet']);
  assert.equal(none.code, 1);
  assert.match(
    none.stderr,
    /DAEMON_UNREACHABLE: scan: cannot connect to the macnet daemon at \/nonexistent-macnet\/macnet.sock/,
  );
});
