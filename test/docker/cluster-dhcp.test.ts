// DHCP mode (--ipam-opt mode=dhcp) in cluster mode: two lab hosts, each with dockerd and macnet on one etcd
// (one member, on the LAN router's address), the LAN's DHCP server a real dnsmasq with a range of three addresses.
// Containers on both hosts get leases, distinct, each answered on the LAN by one machine; etcd holds their address
// records naming their host; a daemon restart keeps the leases; `docker rm` releases the lease and the record, and
// the other host's next container gets that address from the server, even though its index had learned it as the
// first host's (a server-given address is the server's call, not the index's).
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from '../lab/engine-test';
import { arpSweep } from '../lab/arp';
import { clusterLab, type ClusterLab } from '../lab/cluster-lab';
import type { Daemon } from '../lab/daemon';
import type { EtcdCluster } from '../lab/etcd';
import { LAN, type Lab, type LabHost } from '../lab/lab';
import { createMacnetNetwork, dockerOk as ok } from '../lab/networks';
import { Dnsmasq, dnsmasqMissing } from '../dhcp/dnsmasq';

/** Three addresses: the hosts' containers use all of them, so the server's next offer is the one released. */
const RANGE = '198.18.15.100,198.18.15.102,255.255.255.0,2m';
const NET = 'dh';
const skip = dnsmasqMissing();
/** --dhcp-keep: long enough for a `docker restart`, short enough to wait for a release. */
const KEEP_S = 3;

let cl: ClusterLab | undefined;
let lab: Lab;
let etcd: EtcdCluster | undefined;
let dns: Dnsmasq | undefined;
let daemons: Daemon[] = [];

before(async () => {
  if (skip) return;
  // No names' options: the daemons as DHCP mode needs them, nothing more.
  cl = await clusterLab({
    hosts: 2,
    etcd: 'router',
    names: false,
    // A stopped container's lease is kept KEEP_S for its next start, then released to the server.
    daemonArgs: () => ['--dhcp-keep', String(KEEP_S)],
  });
  ({ lab, etcd, daemons } = cl);
  dns = await Dnsmasq.start(lab.lan, { range: RANGE, extra: [`--dhcp-option=option:router,${LAN.router4}`] });
});
after(async () => {
  // The lab (dockerd, then the plugins, then etcd: the plugins need etcd while dockerd stops), then dnsmasq.
  try {
    await cl?.close();
  } finally {
    await dns?.stop();
  }
});

const hostId = (i: number) => fs.readFileSync(path.join(daemons[i]!.opts.stateDir, 'host-id'), 'utf8').trim();

interface Attached {
  readonly ip: string;
  readonly mac: string;
}
async function attached(h: LabHost, c: string): Promise<Attached> {
  const n = JSON.parse(await ok(h, 'inspect', '-f', `{{json (index .NetworkSettings.Networks "${NET}")}}`, c)) as {
    IPAddress: string;
    MacAddress: string;
  };
  return { ip: n.IPAddress, mac: n.MacAddress };
}

/** The address records in etcd: address → the host id it names and its owner. */
async function recordsInEtcd(): Promise<Map<string, { host?: string; owner: string; refs?: number }>> {
  const r = await etcd!.etcdctl(['get', '--prefix', 'macnet/ipam/addresses/']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n').filter(Boolean);
  const out = new Map<string, { host?: string; owner: string; refs?: number }>();
  for (let i = 0; i + 1 < lines.length; i += 2)
    out.set(lines[i]!.slice(lines[i]!.lastIndexOf('/') + 1), JSON.parse(lines[i + 1]!));
  return out;
}

async function waitFor(what: string, ms: number, cond: () => Promise<boolean> | boolean): Promise<number> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms)
      throw new Error(`${what}: not within ${ms} ms; dnsmasq log:\n${dns?.log.split('\n').slice(-15).join('\n')}`);
    await sleep(200);
  }
  return Date.now() - t0;
}

const leaseOf = (mac: string) => dns!.leases().find((l) => l.mac === mac);

/** Each address has the server's lease for its container's MAC, and is answered on the LAN by that MAC alone. */
async function assertLeasedAndAnswered(t: { diagnostic(s: string): void }, all: Attached[]): Promise<void> {
  for (const a of all) {
    const l = leaseOf(a.mac);
    assert.ok(l, `dnsmasq leased nothing to ${a.mac}: ${JSON.stringify(dns!.leases())}`);
    assert.equal(l.ip, a.ip, `the container with ${a.mac} has the server's address`);
  }
  assert.equal(new Set(all.map((a) => a.ip)).size, all.length, `distinct addresses: ${all.map((a) => a.ip)}`);
  const swept = await arpSweep(
    lab,
    all.map((a) => a.ip),
  );
  for (const a of all) assert.deepEqual(swept.get(a.ip), [a.mac], `${a.ip} answered once, by ${a.mac}`);
  t.diagnostic(`leased and answered once: ${all.map((a) => `${a.ip} ${a.mac}`).join(', ')}`);
}

describe('DHCP mode on two hosts sharing etcd', { skip }, () => {
  test('leases on both hosts, records in etcd naming their host, kept across a daemon restart; docker rm releases both, and the other host gets the address', async (t) => {
    const [h1, h2] = lab.hosts as [LabHost, LabHost];
    for (const h of lab.hosts) await createMacnetNetwork(h, NET, { args: ['--ipam-opt', 'mode=dhcp'] });
    const run = (h: LabHost, name: string) =>
      ok(h, 'run', '-d', '--name', name, '--net', NET, 'busybox:local', 'sleep', '600');
    await run(h1, 'a1');
    await run(h2, 'b1');
    await run(h2, 'b2');
    const a1 = await attached(h1, 'a1');
    const b1 = await attached(h2, 'b1');
    const b2 = await attached(h2, 'b2');
    await assertLeasedAndAnswered(t, [a1, b1, b2]);
    const [id1, id2] = [hostId(0), hostId(1)];
    const expect = new Map([
      [a1.ip, id1],
      [b1.ip, id2],
      [b2.ip, id2],
    ]);
    const records = await recordsInEtcd();
    assert.deepEqual([...records.keys()].sort(), [...expect.keys(), LAN.router4].sort(), 'etcd: the 3 and the gateway');
    for (const [ip, id] of expect) assert.equal(records.get(ip)?.host, id, `${ip}'s record names its host`);
    assert.equal(records.get(LAN.router4)?.refs, 2, "the gateway's record counts both hosts' networks");
    const ping = await h1.docker('exec', 'a1', 'ping', '-c', '1', '-W', '2', b1.ip);
    assert.equal(ping.code, 0, `a1 on h1 pings b1 on h2: ${ping.stdout}${ping.stderr}`);

    // h1's daemon restarts: the lease is read back from its SQLite, and a1 restarted gets it again (parked for
    // --dhcp-keep on the release, taken back by the next request): the same address and MAC.
    // (Its index now holds h2's addresses too, read from etcd at load.)
    await daemons[0]!.stop();
    await daemons[0]!.restart();
    await ok(h1, 'restart', '-t', '1', 'a1');
    assert.deepEqual(await attached(h1, 'a1'), a1, 'a1 keeps its address and MAC across the restarts');
    assert.equal(leaseOf(a1.mac)?.ip, a1.ip, 'and the server its lease');
    assert.equal((await recordsInEtcd()).get(a1.ip)?.host, id1, "a1's record still names h1");

    // docker rm on h2: the record leaves etcd, and after --dhcp-keep the lease goes back to the server.
    await ok(h2, 'rm', '-f', 'b1');
    const released = await waitFor(
      "b1's lease and record gone",
      (KEEP_S + 10) * 1000,
      async () => !leaseOf(b1.mac) && !(await recordsInEtcd()).has(b1.ip),
    );
    t.diagnostic(`b1's lease and record gone ${released} ms after docker rm returned`);
    // The server's only free address now is b1's: h1's next container gets it, though h1 had learned it as h2's.
    await run(h1, 'a2');
    const a2 = await attached(h1, 'a2');
    assert.equal(a2.ip, b1.ip, "h1's next container gets the address h2 released");
    await assertLeasedAndAnswered(t, [a1, a2, b2]);
    const now = await recordsInEtcd();
    assert.equal(now.get(a2.ip)?.host, id1, "the released address's record names h1 now");
    assert.equal(now.get(b2.ip)?.host, id2);

    // Everything removed: etcd keeps no address record but the gateway's, which goes with the last network.
    await ok(h1, 'rm', '-f', 'a1', 'a2');
    await ok(h2, 'rm', '-f', 'b2');
    await waitFor('every lease released', (KEEP_S + 10) * 1000, () => dns!.leases().length === 0);
    assert.deepEqual([...(await recordsInEtcd()).keys()], [LAN.router4]);
    for (const h of lab.hosts) await ok(h, 'network', 'rm', NET);
    assert.deepEqual([...(await recordsInEtcd()).keys()], []);
    const pools = await etcd!.etcdctl(['get', '--prefix', '--keys-only', 'macnet/ipam/pools/']);
    assert.equal(pools.stdout.trim(), '', 'no pool left');
  });
});
