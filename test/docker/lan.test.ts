// LAN-aware addresses end to end: two lab hosts with dockerd and macnet, a LAN device holding addresses,
// and the router checked for what it learned.
import { after, before } from 'node:test';
import { test } from '../lab/engine-test';
import assert from 'node:assert/strict';
import { Kernel } from '../../src/kernel';
import { Daemon } from '../lab/daemon';
import { Lab, type LabHost } from '../lab/lab';
import type { TestNetns } from '../lab/netns';
import { sh } from '../lab/sh';

let lab: Lab;
let device: TestNetns;
let deviceMac: string;
const daemons: Daemon[] = [];
before(async () => {
  lab = await Lab.create({ hosts: 2, docker: true });
  device = await lab.lanDevice('device', 'dev0');
  for (const a of ['198.18.15.2/24', '198.18.15.3/24'])
    await sh('ip', '-n', device.name, 'addr', 'add', a, 'dev', 'eth0');
  await sh('ip', '-n', device.name, 'link', 'set', 'eth0', 'up');
  deviceMac = (await Kernel.with(device.path, (k) => k.links.get('eth0'))).mac!;
  for (const h of lab.hosts)
    daemons.push(await Daemon.start({ netns: h.ns.path, mountNs: h.mountNs, pluginDir: h.pluginDir }));
});
after(async () => {
  for (const d of daemons) await d.remove();
  await lab?.destroy();
});

const create = (h: LabHost, name: string, ...extra: string[]) =>
  h.docker(
    'network',
    'create',
    '-d',
    'macnet',
    '--ipam-driver',
    'macnet',
    '--subnet',
    '198.18.15.0/24',
    '--gateway',
    '198.18.15.1',
    '-o',
    'parent=eth0',
    ...extra,
    name,
  );
const addressOf = async (h: LabHost, c: string) =>
  (await h.docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', c)).stdout.trim();

test("containers started on two hosts at once never get a LAN device's address nor each other's", async (t) => {
  const [h1, h2] = lab.hosts as [LabHost, LabHost];
  const names: [LabHost, string][] = [];
  for (let i = 0; i < 4; i++) for (const h of [h1, h2]) names.push([h, `c${h.index}-${i}`]);
  t.after(async () => {
    for (const [h, n] of names) await h.docker('rm', '-f', n);
    for (const h of [h1, h2]) await h.docker('network', 'rm', 'lan');
  });
  for (const h of [h1, h2]) assert.equal((await create(h, 'lan')).code, 0);
  // Started in parallel across the hosts, sequentially per host (each dockerd serialises its own anyway).
  await Promise.all(
    [h1, h2].map(async (h) => {
      for (const [hh, n] of names)
        if (hh === h)
          assert.equal(
            (await h.docker('run', '-d', '--name', n, '--net', 'lan', 'busybox:local', 'sleep', '300')).code,
            0,
          );
    }),
  );
  const addrs = await Promise.all(names.map(([h, n]) => addressOf(h, n)));
  t.diagnostic(`addresses: ${names.map(([, n], i) => `${n}=${addrs[i]}`).join(' ')}`);
  assert.equal(new Set(addrs).size, addrs.length, `duplicates among ${addrs.join(', ')}`);
  for (const a of addrs) {
    assert.ok(
      !['198.18.15.2', '198.18.15.3', '198.18.15.11', '198.18.15.12', '198.18.15.1'].includes(a),
      `${a} belongs to someone on the LAN`,
    );
  }
  // From the LAN side: each address is answered by exactly one MAC.
  for (const a of addrs) {
    const r = await lab.routerExec('busybox', 'arping', '-c', '2', '-w', '2', '-I', 'sw0', a);
    const macs = new Set([...r.stdout.matchAll(/\[([0-9a-f:]{17})\]/gi)].map((m) => m[1]!.toLowerCase()));
    assert.equal(macs.size, 1, `${a} answered by ${[...macs].join(', ') || 'nobody'}`);
  }
});

test('a static --ip that a LAN device answers for is refused with its MAC; -o conflict=warn allows it', async () => {
  const h = lab.hosts[0]!;
  assert.equal((await create(h, 'strict')).code, 0);
  const r = await h.docker('run', '--rm', '--net', 'strict', '--ip', '198.18.15.2', 'busybox:local', 'true');
  assert.notEqual(r.code, 0);
  assert.match(
    r.stderr,
    new RegExp(
      `ADDRESS_CONFLICT: address 198\\.18\\.15\\.2 is in use on the LAN by ${deviceMac} \\(it answered a probe\\)`,
    ),
  );
  assert.equal((await h.docker('network', 'rm', 'strict')).code, 0);
  assert.equal((await create(h, 'lenient', '-o', 'conflict=warn')).code, 0);
  const w = await h.docker('run', '--rm', '--net', 'lenient', '--ip', '198.18.15.3', 'busybox:local', 'true');
  assert.equal(w.code, 0, w.stderr);
  assert.equal((await h.docker('network', 'rm', 'lenient')).code, 0);
});

test("with Docker's default IPAM the driver probes at CreateEndpoint and refuses the same way", async () => {
  const h = lab.hosts[1]!;
  const n = await h.docker(
    'network',
    'create',
    '-d',
    'macnet',
    '--subnet',
    '198.18.15.0/24',
    '--gateway',
    '198.18.15.1',
    '-o',
    'parent=eth0',
    'dflt',
  );
  assert.equal(n.code, 0, n.stderr);
  const r = await h.docker('run', '--rm', '--net', 'dflt', '--ip', '198.18.15.2', 'busybox:local', 'true');
  assert.notEqual(r.code, 0);
  assert.match(
    r.stderr,
    new RegExp(`ADDRESS_CONFLICT: address 198\\.18\\.15\\.2 is in use on the LAN by ${deviceMac}`),
  );
  assert.equal(
    (await h.docker('run', '--rm', '--net', 'dflt', '--ip', '198.18.15.77', 'busybox:local', 'true')).code,
    0,
  );
  assert.equal((await h.docker('network', 'rm', 'dflt')).code, 0);
});

test("re-created with a new MAC, a container's address moves in the router's cache within 1 s, unasked", async (t) => {
  const h = lab.hosts[0]!;
  assert.equal((await create(h, 'ann')).code, 0);
  const macOf = async () =>
    (
      JSON.parse((await lab.routerExec('ip', '-json', 'neigh', 'show', 'dev', 'sw0')).stdout || '[]') as {
        dst: string;
        lladdr?: string;
      }[]
    ).find((n) => n.dst === '198.18.15.60')?.lladdr;
  assert.equal(
    (
      await h.docker(
        'run',
        '-d',
        '--name',
        'a1',
        '--net',
        'ann',
        '--ip',
        '198.18.15.60',
        '--mac-address',
        '02:00:00:00:60:01',
        'busybox:local',
        'sleep',
        '300',
      )
    ).code,
    0,
  );
  assert.equal((await lab.routerExec('ping', '-c', '1', '-W', '2', '198.18.15.60')).code, 0);
  assert.equal(await macOf(), '02:00:00:00:60:01');
  await h.docker('rm', '-f', 'a1');
  assert.equal(
    (
      await h.docker(
        'run',
        '-d',
        '--name',
        'a2',
        '--net',
        'ann',
        '--ip',
        '198.18.15.60',
        '--mac-address',
        '02:00:00:00:60:02',
        'busybox:local',
        'sleep',
        '300',
      )
    ).code,
    0,
  );
  const started = Date.now(); // the container runs, its interface is up
  let mac: string | undefined;
  while (Date.now() - started < 3000 && (mac = await macOf()) !== '02:00:00:00:60:02')
    await new Promise((r) => setTimeout(r, 50));
  const ms = Date.now() - started;
  assert.equal(mac, '02:00:00:00:60:02', 'the router learned the new MAC from the announcement');
  assert.ok(ms <= 1000, `took ${ms} ms after the container started`);
  t.diagnostic(`router cache updated ${ms} ms after the container started`);
  await h.docker('rm', '-f', 'a2');
  assert.equal((await h.docker('network', 'rm', 'ann')).code, 0);
});
