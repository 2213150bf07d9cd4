// A network removed during an etcd outage, and `macnet uninstall` on a host of a cluster (docs/cluster.md): two lab
// hosts, each with dockerd and macnet, on one etcd (one member, on the LAN router's address).
// First the second host's containers and network are removed during an outage, and its daemon is stopped before
// etcd is back: its releases (the addresses, the gateway's count, the pool's count) wait in its state.db, and are
// applied once its daemon runs again with etcd, so the pool and the gateway are counted by the first host's
// network alone (src/ipam/pool-release.ts; before, dockerd's failed ReleasePool left both counts one too high).
// Then the same again, but the host leaves the cluster instead of starting its daemon: etcd still holds its
// address records. Given the etcd options, uninstall frees exactly those (never the other host's records, the
// gateway or the pool) and the presence key, so that the first host may take the addresses at once; with etcd
// unreachable it fails naming the endpoints and removes nothing.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from '../lab/engine-test';
import { clusterLab, type ClusterLab } from '../lab/cluster-lab';
import type { Daemon } from '../lab/daemon';
import type { EtcdCluster } from '../lab/etcd';
import { LAN, type Lab, type LabHost } from '../lab/lab';
import { createMacnetNetwork, dockerOk as ok } from '../lab/networks';
import { ipJson, run } from '../lab/sh';

const NET = 'lan';
const bin = path.join(__dirname, '..', '..', '..', 'bin', 'macnet');

let cl: ClusterLab | undefined;
let lab: Lab;
let etcd: EtcdCluster | undefined;
let daemons: Daemon[] = [];

before(async () => {
  // No names' options: the test counts etcd's keys under macnet/, and names' records are no part of it.
  cl = await clusterLab({ hosts: 2, etcd: 'router', names: false });
  ({ lab, etcd, daemons } = cl);
});
// dockerd first (it calls the plugins while it stops, and they need etcd), then the plugins, then etcd.
after(() => cl?.close());

const ipOf = (h: LabHost, c: string) =>
  ok(h, 'inspect', '-f', `{{(index .NetworkSettings.Networks "${NET}").IPAddress}}`, c);
const hostId = (i: number) => fs.readFileSync(path.join(daemons[i]!.opts.stateDir, 'host-id'), 'utf8').trim();

interface Kv {
  readonly key: string;
  readonly value: string;
  readonly mod: number;
}
/** Every key under macnet/ with its value and revision, as etcd reports it (root's view, not macnet's). */
async function etcdKeys(): Promise<Map<string, Kv>> {
  const r = await etcd!.etcdctl(['get', '--prefix', 'macnet/', '-w', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const kvs = (JSON.parse(r.stdout) as { kvs?: { key: string; value: string; mod_revision: number }[] }).kvs ?? [];
  const b64 = (s: string) => Buffer.from(s, 'base64').toString();
  return new Map(
    kvs.map((kv) => [b64(kv.key), { key: b64(kv.key), value: b64(kv.value), mod: kv.mod_revision }] as const),
  );
}
const addressKey = (ip: string) => `macnet/ipam/addresses/LocalDefault/${LAN.subnet4.replace('/', '_')}/${ip}`;
const POOL_KEY = `macnet/ipam/pools/LocalDefault/${LAN.subnet4.replace('/', '_')}`;
/** The pool's and the gateway's counts in etcd (a gateway named by one network has no count: 1). */
async function counts(): Promise<{ refs: number; refsByHost?: Record<string, number>; gateway: number }> {
  const keys = await etcdKeys();
  const pool = JSON.parse(keys.get(POOL_KEY)!.value) as { refs: number; refsByHost?: Record<string, number> };
  const gw = JSON.parse(keys.get(addressKey(LAN.router4))!.value) as { refs?: number };
  return { refs: pool.refs, refsByHost: pool.refsByHost, gateway: gw.refs ?? 1 };
}
const hostOf = (keys: Map<string, Kv>, ip: string) => {
  const kv = keys.get(addressKey(ip));
  return kv && (JSON.parse(kv.value) as { host?: string }).host;
};

/** macnet's links in a host's namespace (probe, host-access, endpoint links). */
const macnetLinks = async (h: LabHost) =>
  (await ipJson<{ ifname: string }[]>(h.ns.name, 'link', 'show'))
    .map((l) => l.ifname)
    .filter((n) => /^mn(p|h)?[0-9a-f]{10,11}$/.test(n));

describe('macnet uninstall on a host of a cluster on etcd', () => {
  test("a network removed during an outage is counted off once the daemon runs with etcd; uninstall frees this host's address records and presence in etcd, and nothing else; refuses, removing nothing, while etcd is unreachable", async (t) => {
    const [h1, h2] = lab.hosts as [LabHost, LabHost];
    const runOn = (h: LabHost, name: string, ...extra: string[]) =>
      h.docker('run', '-d', '--name', name, '--net', NET, ...extra, 'busybox:local', 'sleep', '600');
    const [id1, id2] = [hostId(0), hostId(1)];
    const netCreate = (h: LabHost) => createMacnetNetwork(h, NET);
    /** h2's containers and network removed while etcd is stopped, and h2's daemon stopped before etcd is back. */
    const leaveDuringOutage = async () => {
      await etcd!.stopMember(0);
      await ok(h2, 'rm', '-f', 'b1', 'b2');
      const netRm = await h2.docker('network', 'rm', NET);
      assert.equal(netRm.code, 0, netRm.stderr);
      // Every call answered: the releases of the addresses, the gateway and the pool are kept in h2's state.db.
      const refused = daemons[1]!.logLines().filter((l) => l['msg'] === 'call refused');
      assert.deepEqual(
        refused.map((l) => l['call']),
        [],
        "none of h2's calls refused during the outage",
      );
      assert.equal(await daemons[1]!.stop(), 0, 'the daemon stops with releases still waiting for etcd');
      etcd!.startMember(0);
      await etcd!.waitHealthy(etcd!.endpoints);
    };
    for (const h of lab.hosts) await netCreate(h);
    const both = { refs: 2, refsByHost: { [id1]: 1, [id2]: 1 }, gateway: 2 };
    const h1Only = { refs: 1, refsByHost: { [id1]: 1 }, gateway: 1 };

    // 1. A network removed during an outage: applied once h2's daemon runs again with etcd.
    const c0 = Date.now();
    for (const [h, c] of [
      [h1, 'a1'],
      [h2, 'b1'],
      [h2, 'b2'],
    ] as const)
      assert.equal((await runOn(h, c)).code, 0);
    const [a1, old1, old2] = [await ipOf(h1, 'a1'), await ipOf(h2, 'b1'), await ipOf(h2, 'b2')];
    assert.deepEqual(await counts(), both);
    await leaveDuringOutage();
    assert.deepEqual(await counts(), both, "h2's releases wait in its state.db while its daemon is stopped");
    assert.equal(hostOf(await etcdKeys(), old1), id2);
    await daemons[1]!.restart();
    const t1 = Date.now();
    let now = await counts();
    while (JSON.stringify(now) !== JSON.stringify(h1Only) && Date.now() - t1 < 10_000) {
      await new Promise((r) => setTimeout(r, 100));
      now = await counts();
    }
    t.diagnostic(`h2's releases applied ${Date.now() - t1} ms after its daemon was ready (phase: ${t1 - c0} ms)`);
    assert.deepEqual(now, h1Only, "the pool and the gateway are counted by h1's network alone");
    const settled = await etcdKeys();
    assert.equal(hostOf(settled, old1), undefined, `${old1}'s record gone`);
    assert.equal(hostOf(settled, old2), undefined, `${old2}'s record gone`);
    assert.equal(hostOf(settled, a1), id1);

    // 2. The same again, but h2 leaves the cluster without starting its daemon again.
    await netCreate(h2);
    assert.equal((await runOn(h2, 'b1')).code, 0);
    assert.equal((await runOn(h2, 'b2')).code, 0);
    const [b1, b2] = [await ipOf(h2, 'b1'), await ipOf(h2, 'b2')];
    assert.deepEqual(await counts(), both);
    await leaveDuringOutage();
    const before = await etcdKeys();
    assert.equal(hostOf(before, b1), id2, `${b1} still held for h2 in etcd`);
    assert.equal(hostOf(before, b2), id2, `${b2} still held for h2 in etcd`);
    assert.equal(hostOf(before, a1), id1);
    const taken = await runOn(h1, 'x1', '--ip', b1);
    assert.notEqual(taken.code, 0, `h1 cannot take ${b1} yet`);
    assert.match(taken.stderr, new RegExp(`IPAM_ADDRESS_IN_USE.*${b1.replace(/\./g, '\\.')}`));
    await h1.docker('rm', '-f', 'x1');

    const stateDir = daemons[1]!.opts.stateDir;
    const unitsDir = fs.mkdtempSync(path.join(lab.dir, 'units-'));
    const uninstall = (...args: string[]) =>
      run('nsenter', [
        `--net=${h2.ns.path}`,
        process.execPath,
        bin,
        'uninstall',
        '--state-dir',
        stateDir,
        '--units-dir',
        unitsDir,
        ...args,
      ]);
    const withEtcd = ['--purge', '--etcd-endpoints', etcd!.endpoints.join(',')];

    // A bad etcd option is refused before anything is looked at.
    const bad = await uninstall('--etcd-endpoints', etcd!.endpoints[0]!, '--etcd-prefix', 'macnet');
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /OPTION_INVALID: --etcd-prefix "macnet" is not valid/);

    // etcd unreachable: refused naming the endpoint; nothing removed (the state dir keeps the host id).
    const linksBefore = await macnetLinks(h2);
    await etcd!.stopMember(0);
    const r0 = Date.now();
    const refused = await uninstall(...withEtcd);
    t.diagnostic(`refused after ${Date.now() - r0} ms: ${refused.stderr.trim()}`);
    etcd!.startMember(0);
    assert.equal(refused.code, 1, refused.stdout + refused.stderr);
    assert.match(refused.stderr, /^macnet: STORE_UNAVAILABLE: /);
    assert.ok(refused.stderr.includes(etcd!.endpoints[0]!), `names the endpoint: ${refused.stderr}`);
    assert.equal(refused.stdout, '', 'says nothing was removed');
    assert.ok(fs.existsSync(path.join(stateDir, 'host-id')), 'the state dir stays');
    assert.deepEqual(await macnetLinks(h2), linksBefore, 'no link removed');
    await etcd!.waitHealthy(etcd!.endpoints);

    // Without the etcd options: the links go, the state dir stays, and it says what is left in etcd.
    const local = await uninstall();
    assert.equal(local.code, 0, local.stderr);
    assert.match(
      local.stdout,
      new RegExp(
        `^left in etcd: the address records of this host \\(${id2}\\), if any: run macnet uninstall again`,
        'm',
      ),
    );
    assert.deepEqual(await macnetLinks(h2), [], 'no macnet link left on h2');
    assert.deepEqual(
      (await etcdKeys()).get(addressKey(b1)),
      before.get(addressKey(b1)),
      'etcd untouched without its options',
    );

    // A name record of h2's as a daemon stopped with a container running leaves it (docs/names.md): it goes too.
    const planted = `macnet/names/${id2}/n1/c1`;
    const rec = { name: 'c1', aliases: [], host: 'h2', v4: [b1], v6: [], network: 'n1', container: 'c1' };
    assert.equal((await etcd!.etcdctl(['put', planted, JSON.stringify(rec)])).code, 0);
    const done = await uninstall(...withEtcd);
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stdout, /^removed 1 name record\(s\) of this host in etcd /m);
    t.diagnostic(done.stdout.trim().split('\n').slice(0, 3).join(' | '));
    // h2's kept releases (its two addresses, the gateway's and the pool's counts) are applied first; then no
    // record of h2 is left to free.
    assert.match(
      done.stdout,
      new RegExp(`^applied 4 release\\(s\\) kept in ${stateDir} while etcd was unreachable$`, 'm'),
    );
    assert.match(
      done.stdout,
      new RegExp(`^no address record of this host \\(${id2}\\) in etcd ${etcd!.endpoints[0]}`, 'm'),
    );
    assert.match(done.stdout, new RegExp(`^removed the state dir ${stateDir}$`, 'm'));
    assert.equal(fs.existsSync(stateDir), false);
    assert.deepEqual(await macnetLinks(h2), [], 'no macnet link left on h2');

    // etcd: h2's two records gone, the pool and the gateway counted by h1's network alone, every other key as it
    // was (same revision), h2 has no presence. (Presence keys are left out: h1's may be written again after the
    // outages.)
    const afterKeys = await etcdKeys();
    // (Name records are left out too: h2's go with it, h1's follow its containers.)
    const shared = (m: Map<string, Kv>) =>
      [...m.keys()].filter((k) => !k.startsWith('macnet/hosts/') && !k.startsWith('macnet/names/'));
    const gone = shared(before).filter((k) => !afterKeys.has(k));
    assert.deepEqual(gone.sort(), [addressKey(b1), addressKey(b2)].sort(), "only h2's address records went");
    assert.deepEqual(await counts(), h1Only, "the pool and the gateway are counted by h1's network alone");
    const counted = [addressKey(LAN.router4), POOL_KEY];
    for (const k of shared(afterKeys).filter((x) => !counted.includes(x)))
      assert.deepEqual(afterKeys.get(k), before.get(k), `${k} untouched`);
    assert.ok(afterKeys.has(addressKey(LAN.router4)), 'the gateway stays (h1 still has a network)');
    assert.deepEqual(
      [...afterKeys.keys()].filter((k) => k.startsWith('macnet/hosts/')),
      [`macnet/hosts/${id1}`],
      "h1's presence only",
    );
    assert.deepEqual(
      [...afterKeys.keys()].filter((k) => k.startsWith(`macnet/names/${id2}/`)),
      [],
      'no name record of h2 left',
    );

    // The freed address is h1's for the asking, at once (no grace period).
    assert.equal((await runOn(h1, 'x2', '--ip', b1)).code, 0);
    assert.equal(await ipOf(h1, 'x2'), b1);
    assert.equal(hostOf(await etcdKeys(), b1), id1, `${b1}'s record names h1 now`);
    const ping = await h1.docker('exec', 'a1', 'ping', '-c', '1', '-W', '2', b1);
    assert.equal(ping.code, 0, `a1 pings x2 at ${b1}: ${ping.stdout}${ping.stderr}`);
  });
});
