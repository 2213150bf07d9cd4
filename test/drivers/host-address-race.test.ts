// Two hosts on one LAN create a host-access network at the same instant, each choosing its host-side address
// from the top of the subnet: both probe the same candidates at once. Each must end up with an address of
// its own (never the same one, never "no free address"). Real kernel: a lab LAN of two host namespaces, a
// NetworkDriver per host with probing on, each with its own SQLite store, as two daemons would be.
import { Lan } from '../../src/lan';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NetworkDriver } from '../../src/drivers/driver';
import { hostLinkName } from '../../src/drivers/host-access';
import { Kernel } from '../../src/kernel';
import { silentLogger } from '../../src/log';
import { SqliteStore } from '../../src/store/sqlite';
import { LAN, Lab } from '../lab/lab';
import { ipJson } from '../lab/sh';

let lab: Lab;
let dir: string;
const hosts: { k: Kernel; store: SqliteStore; lan: Lan; d: NetworkDriver; ns: string }[] = [];

before(async () => {
  lab = await Lab.create({ hosts: 2, ipv6: true });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), `mnt-${process.pid}-harace-`));
  for (const [i, h] of lab.hosts.entries()) {
    const k = Kernel.open(h.ns.path);
    const store = SqliteStore.open(path.join(dir, `h${i}.db`));
    const lan = new Lan(k, silentLogger);
    hosts.push({ k, store, lan, d: new NetworkDriver(k, store, silentLogger, { lan }), ns: h.ns.name });
  }
});
after(async () => {
  for (const h of hosts) {
    for (const r of await h.d.state.networks().catch(() => []))
      await h.d.deleteNetwork(r.config.id).catch(() => undefined);
    await h.d.close();
    await h.lan.close();
    await h.k.close();
    await h.store.close();
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  await lab?.destroy();
});

const net = (id: string) => ({
  NetworkID: id,
  Options: { 'com.docker.network.generic': { parent: 'eth0', host_access: 'true' } },
  IPv4Data: [{ Pool: LAN.subnet4, Gateway: `${LAN.router4}/24` }],
  IPv6Data: [{ Pool: LAN.subnet6, Gateway: `${LAN.router6}/64` }],
});

/** The global addresses of the host-side link, as the kernel reports them. */
async function hostAddresses(ns: string): Promise<string[]> {
  const j = await ipJson<{ addr_info: { local: string; scope: string }[] }[]>(
    ns,
    'addr',
    'show',
    'dev',
    hostLinkName('eth0'),
  );
  return j[0]!.addr_info
    .filter((a) => a.scope === 'global')
    .map((a) => a.local)
    .sort();
}

const plain = (id: string) => ({
  NetworkID: id,
  Options: { 'com.docker.network.generic': { parent: 'eth0' } },
  IPv4Data: [{ Pool: '198.18.16.0/24', Gateway: '198.18.16.1/24' }],
  IPv6Data: [],
});

test('two hosts choose their host-access addresses at the same instant: each gets its own, five times over', async (t) => {
  // A network on the parent first: the probe link exists, so both hosts' probes start within a millisecond
  // or two of each other (each sees the other's probes for the same candidates).
  await Promise.all(hosts.map((h, i) => h.d.createNetwork(plain(`${(0x90 + i).toString(16)}`.repeat(32)))));
  for (let round = 0; round < 5; round++) {
    const ids = hosts.map((_, i) => `${(round * 2 + i + 0xa0).toString(16)}`.repeat(32));
    await Promise.all(hosts.map((h, i) => h.d.createNetwork(net(ids[i]!))));
    const [a, b] = await Promise.all(hosts.map((h) => hostAddresses(h.ns)));
    t.diagnostic(`round ${round}: h1 ${a!.join(' ')}, h2 ${b!.join(' ')}`);
    assert.equal(a!.length, 2, 'one IPv4 and one IPv6 address on h1');
    assert.equal(b!.length, 2, 'one IPv4 and one IPv6 address on h2');
    assert.deepEqual(
      a!.filter((x) => b!.includes(x)),
      [],
      'no address on both hosts',
    );
    await Promise.all(hosts.map((h, i) => h.d.deleteNetwork(ids[i]!)));
  }
});

test("an address this host's IPAM has promised (warm or just handed out) is not taken as the host address", async () => {
  const h = hosts[0]!;
  const plainId = 'b1'.repeat(32),
    accessId = 'b2'.repeat(32);
  // The other host's probe link defends what it found free in the test before for 5 s: let that lapse, so
  // that only this host's claim can keep .254 from being chosen.
  await new Promise((r) => setTimeout(r, 5_500));
  // A network on the subnet first, so that the guard knows the subnet's LAN; then IPAM's claim, as after an
  // allocation or a warm-set refill: the probe link defends the address, and does not hear itself.
  await h.d.createNetwork({ ...net(plainId), Options: { 'com.docker.network.generic': { parent: 'eth0' } } });
  try {
    h.lan.claim(LAN.subnet4, '198.18.15.254');
    for (let i = 0; i < 100 && !h.lan.claimedAddresses().includes('198.18.15.254'); i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(h.lan.claimedAddresses(), ['198.18.15.254']);
    await h.d.createNetwork(net(accessId));
    const got = await hostAddresses(h.ns);
    assert.ok(got.includes('198.18.15.253') && !got.includes('198.18.15.254'), `the host took ${got.join(', ')}`);
    await h.d.deleteNetwork(accessId);
  } finally {
    await h.d.deleteNetwork(plainId);
  }
});
