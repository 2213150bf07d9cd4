// `macnet store migrate --to etcd` without dockerd: a SQLite state made by the real IPAM (pools, gateway, addresses,
// sticky names) with driver and DHCP lease records as the driver writes them, in the key layout of v0.1.0 (so
// that the migration of the layout is exercised too), moved into a real etcd by the real command (bin/macnet):
// the ipam/ keys go to etcd, this host's own records stay in state.db. Then the stores are opened as the daemon
// opens them and their records are checked; conflicts and --dry-run write nothing, a race with another host in a
// later chunk leaves nothing half-written.
//
// Like test/store/etcd.test.ts, the file runs twice: the outer run makes a network namespace with an address on its
// lo and runs itself inside it, where the etcd member and the command run; nothing of the root namespace is
// touched. The outer run kills whatever is left in the namespace and deletes it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openStore } from '../../src/cli/store-open';
import { planMigration } from '../../src/cli/migrate-plan';
import { applyPlan } from '../../src/cli/migrate-write';
import { DriverState } from '../../src/drivers/state';
import { Ipam } from '../../src/ipam';
import { claimInstance } from '../../src/kernel/instance';
import { EtcdStore, type EtcdOptions } from '../../src/store/etcd';
import { SqliteStore } from '../../src/store/sqlite';
import type { Entry } from '../../src/store/types';
import { EtcdCluster } from '../lab/etcd';
import { inOwnNetns } from '../lab/etcd-netns';
import { run } from '../lab/sh';

const ADDRS = ['198.18.41.1'];
const INNER_LIMIT_MS = 5 * 60_000;
const MACNET = path.join(__dirname, '..', '..', '..', 'bin', 'macnet');
const L = 'LocalDefault';
const SUBNET = '198.18.40.0/24';
const SEG = `${L}/198.18.40.0_24`;
const POOL_ID = `${L}/${SUBNET}`;
const NAME = 'com.docker.network.endpoint.name';
const GW = { RequestAddressType: 'com.docker.network.gateway' };

if (inOwnNetns('store migrate tests', __filename, ADDRS, INNER_LIMIT_MS)) inner();

function inner(): void {
  let cluster: EtcdCluster;
  let seq = 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'macnet-migrate-'));
  before(async () => {
    cluster = await EtcdCluster.start({ members: 1, parentDir: dir });
  });
  after(async () => {
    await cluster?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A fresh prefix per test: each starts on an empty etcd. */
  const etcdOptions = (): EtcdOptions => ({ endpoints: cluster.endpoints, prefix: `t${seq++}/` });
  const args = (o: EtcdOptions, stateDir: string) => [
    'store',
    'migrate',
    '--to',
    'etcd',
    '--etcd-endpoints',
    o.endpoints.join(','),
    '--etcd-prefix',
    o.prefix!,
    '--state-dir',
    stateDir,
  ];
  const macnet = (argv: string[]) => run(process.execPath, [MACNET, ...argv], { timeoutMs: 60_000 });
  const dump = async (o: EtcdOptions): Promise<Entry[]> => {
    const s = await EtcdStore.open(o);
    try {
      return (await s.list('')).map((e) => ({ ...e, revision: 0 }));
    } finally {
      await s.close();
    }
  };
  const sqliteDump = async (stateDir: string): Promise<Entry[]> => {
    const s = SqliteStore.open(path.join(stateDir, 'state.db'));
    try {
      return await s.list('');
    } finally {
      await s.close();
    }
  };

  /**
   * A host's state dir as a daemon on SQLite leaves it: one network with gateway .1 and `n` named containers
   * (made by the IPAM), their driver records, a DHCP lease record; with `oldLayout`, in the key layout of v0.1.0 (no
   * meta/schema, a next-fit cursor, leases under ipam/leases/), which the command reads through a migrated copy
   * and brings up to date in the file at its last step.
   */
  async function sqliteState(n = 3, oldLayout = true): Promise<{ stateDir: string; addresses: string[] }> {
    const stateDir = fs.mkdtempSync(path.join(dir, 'state-'));
    const store = SqliteStore.open(path.join(stateDir, 'state.db'));
    const ipam = new Ipam(store);
    try {
      await ipam.load();
      const { poolId } = await ipam.requestPool({ addressSpace: L, pool: SUBNET, v6: false });
      await ipam.requestAddress({ poolId, address: '198.18.40.1', options: GW });
      const addresses: string[] = [];
      for (let i = 1; i <= n; i++) {
        const r = await ipam.requestAddress({ poolId, options: { [NAME]: `c${i}` } });
        addresses.push(r.address.split('/')[0]!);
      }
      const config = {
        id: 'net1',
        kind: 'macvlan',
        parent: { name: 'eth0' },
        internal: false,
        ipv6: false,
        subnets: [],
      };
      await store.put('driver/networks/net1', JSON.stringify({ config, state: 'ready' }));
      for (const [i, a] of addresses.slice(0, 3).entries())
        await store.put(
          `driver/endpoints/net1/ep${i}`,
          JSON.stringify({ networkId: 'net1', endpointId: `ep${i}`, linkName: `mn00000000${i}`, ipv4: a }),
        );
      const lease = JSON.stringify({ state: 'bound' });
      if (oldLayout) {
        await store.put('ipam/leases/LocalDefault/198.18.42.0_24/198.18.42.9', lease);
        await store.put(`ipam/cursors/${SEG}`, '198.18.40.4');
        await store.delete('meta/schema');
      } else await store.put('lan/leases/LocalDefault/198.18.42.0_24/198.18.42.9', lease);
      return { stateDir, addresses };
    } finally {
      ipam.close();
      await store.close();
    }
  }

  test('migrate: every record where the daemon on etcd finds it; the IPAM goes on from there', async () => {
    const { stateDir, addresses } = await sqliteState();
    const before = await sqliteDump(stateDir);
    const o = etcdOptions();
    const r = await macnet(args(o, stateDir));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /staying in SQLite: 1 networks, 3 endpoints, 0 parents, 0 host-access links, 1 DHCP leases/);
    assert.match(r.stdout, /pools 1 new, 0 merged; gateways 1 new, 0 merged; 3 addresses/);
    assert.match(
      r.stdout,
      /state\.db: its 8 ipam\/ keys deleted/,
      'pool, gateway, 3 addresses, 3 names (the cursor went with the layout)',
    );
    assert.match(r.stdout, /next: start the daemon with --store etcd/);
    const host = fs.readFileSync(path.join(stateDir, 'host-id'), 'utf8').trim();
    // etcd: the shared keys only; hosts/ is the running daemons' presence, and no marker is left.
    const inEtcd = (await dump(o)).map((e) => e.key);
    assert.deepEqual(
      inEtcd.filter((k) => !k.startsWith('ipam/') && k !== 'meta/schema'),
      [],
      inEtcd.join(' '),
    );
    // state.db: no ipam/ key; this host's own records as they were (the lease in this layout's place).
    const after = await sqliteDump(stateDir);
    assert.deepEqual(
      after.filter((e) => e.key.startsWith('ipam/')),
      [],
    );
    const own = (entries: Entry[]) =>
      entries.filter((e) => e.key.startsWith('driver/')).map((e) => `${e.key}=${e.value}`);
    assert.deepEqual(own(after), own(before));
    assert.equal(after.filter((e) => e.key.startsWith('lan/leases/')).length, 1);

    // The daemon's view: openStore as `macnet daemon --store etcd` does it (it refuses pools left in SQLite).
    const opened = await openStore({ kind: 'etcd', etcd: o, lostHostGraceMs: 300_000 }, stateDir);
    try {
      assert.equal(opened.host, host);
      assert.deepEqual(opened.migrated.steps, [], 'the layout is current');
      const ipam = new Ipam(opened.shared, { host });
      await ipam.load();
      const owners = (await ipam.allocations(POOL_ID)).map((a) => `${a.address}=${a.owner}`).sort();
      assert.deepEqual(owners, ['198.18.40.1=gateway', ...addresses.map((a, i) => `${a}=c${i + 1}`)].sort());
      for (const a of addresses) {
        const rec = JSON.parse((await opened.shared.get(`ipam/addresses/${SEG}/${a}`))!.value);
        assert.equal(rec.host, host, 'each address record names this host');
      }
      assert.equal(await opened.shared.get(`ipam/cursors/${SEG}`), undefined, 'the old cursor is not carried');
      const pool = JSON.parse((await opened.shared.get(`ipam/pools/${SEG}`))!.value);
      assert.deepEqual([pool.refs, pool.refsByHost], [1, { [host]: 1 }], "its networks counted as this host's");
      assert.equal((await opened.shared.get(`ipam/sticky/${SEG}/c2`))?.value, addresses[1]);
      const state = new DriverState(opened.local);
      assert.deepEqual(
        (await state.networks()).map((n) => n.config.id),
        ['net1'],
      );
      assert.equal((await state.endpoints('net1')).length, 3);
      assert.equal((await opened.local.list('lan/leases/')).length, 1, 'the lease moved with the layout');
      // A new address is none of the old ones; a release deletes its record in etcd.
      const next = (await ipam.requestAddress({ poolId: POOL_ID })).address.split('/')[0]!;
      assert.ok(!addresses.includes(next) && next !== '198.18.40.1', next);
      await ipam.releaseAddress(POOL_ID, addresses[0]!);
      assert.equal(await opened.shared.get(`ipam/addresses/${SEG}/${addresses[0]}`), undefined);
      ipam.close();
    } finally {
      await opened.close();
    }
    // A daemon on SQLite there refuses, rather than serve networks whose pools are in etcd.
    const sqliteNow = await sqliteDump(stateDir);
    await assert.rejects(openStore({ kind: 'sqlite' }, stateDir), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'STATE_MIGRATED');
      assert.ok(e.message.includes(`as host ${host}`) && e.message.includes('--store etcd'), e.message);
      return true;
    });
    assert.deepEqual(await sqliteDump(stateDir), sqliteNow, 'the refusal changed nothing');
    // Migrating again finds nothing to move.
    const again = await macnet(args(o, stateDir));
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /holds no address pool: nothing to move/);
  });

  test('STATE_MIGRATED is for migrated state dirs only: a fresh one, or a SQLite host never migrated, starts', async () => {
    const fresh = fs.mkdtempSync(path.join(dir, 'fresh-'));
    await (await openStore({ kind: 'sqlite' }, fresh)).close();
    const { stateDir } = await sqliteState(1, false);
    await (await openStore({ kind: 'sqlite' }, stateDir)).close();
    // A host id alone (a state dir that ran on etcd without a network) is no reason either.
    fs.writeFileSync(path.join(fresh, 'host-id'), 'was-on-etcd-1\n');
    await (await openStore({ kind: 'sqlite' }, fresh)).close();
  });

  test("merge: an identical pool and gateway of another host are counted; the other host's addresses stay", async () => {
    const { stateDir, addresses } = await sqliteState(2);
    const o = etcdOptions();
    const s = await EtcdStore.open(o);
    try {
      await s.put('meta/schema', '2');
      const theirs = { id: POOL_ID, space: L, subnet: SUBNET, range: null, refs: 1, refsByHost: { 'other-1': 1 } };
      await s.put(`ipam/pools/${SEG}`, JSON.stringify(theirs));
      const gw = { owner: 'gateway', pool: POOL_ID, host: 'other-1' };
      await s.put(`ipam/addresses/${SEG}/198.18.40.1`, JSON.stringify(gw));
      await s.put(
        `ipam/addresses/${SEG}/198.18.40.200`,
        JSON.stringify({ owner: 'far', pool: POOL_ID, host: 'other-1' }),
      );
      await s.put(`ipam/sticky/${SEG}/c1`, '198.18.40.201');
      const r = await macnet(args(o, stateDir));
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /pools 0 new, 1 merged; gateways 0 new, 1 merged; 2 addresses/);
      const host = fs.readFileSync(path.join(stateDir, 'host-id'), 'utf8').trim();
      const pool = JSON.parse((await s.get(`ipam/pools/${SEG}`))!.value);
      assert.deepEqual([pool.refs, pool.refsByHost], [2, { 'other-1': 1, [host]: 1 }], 'counted per host');
      assert.deepEqual(JSON.parse((await s.get(`ipam/addresses/${SEG}/198.18.40.1`))!.value), { ...gw, refs: 2 });
      assert.equal(JSON.parse((await s.get(`ipam/addresses/${SEG}/198.18.40.200`))!.value).host, 'other-1');
      assert.equal((await s.get(`ipam/sticky/${SEG}/c1`))!.value, '198.18.40.201', "etcd's name record is kept");
      assert.equal((await s.get(`ipam/sticky/${SEG}/c2`))!.value, addresses[1]);
    } finally {
      await s.close();
    }
  });

  test('conflicts: each named with the other host; nothing written to etcd, the SQLite state untouched', async () => {
    const { stateDir, addresses } = await sqliteState();
    const sqliteBefore = await sqliteDump(stateDir);
    const o = etcdOptions();
    const s = await EtcdStore.open(o);
    try {
      await s.put('meta/schema', '2');
      const range = `${L}/${SUBNET}/198.18.40.128/25`;
      await s.put(
        `ipam/pools/${SEG}/198.18.40.128_25`,
        JSON.stringify({ id: range, space: L, subnet: SUBNET, range: '198.18.40.128/25', refs: 1 }),
      );
      await s.put(
        `ipam/addresses/${SEG}/${addresses[1]}`,
        JSON.stringify({ owner: 'web1', pool: range, host: 'h2-5f0c1a2b' }),
      );
      await s.put(
        'ipam/pools/LocalDefault/198.18.0.0_16',
        JSON.stringify({ id: 'x', space: L, subnet: '198.18.0.0/16', range: null, refs: 1 }),
      );
      const etcdBefore = await dump(o);
      const r = await macnet(args(o, stateDir));
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /^macnet: STORE_MIGRATE_CONFLICT: .*3 conflicts/);
      assert.ok(r.stderr.includes(`ipam/addresses/${SEG}/${addresses[1]}: address ${addresses[1]}`), r.stderr);
      assert.match(r.stderr, /held in etcd by host h2-5f0c1a2b \(owner web1\); this host has it for c2/);
      assert.match(r.stderr, /differs from etcd's on subnet 198\.18\.40\.0\/24: LocalDefault\/198\.18\.40\.0\/24\/198/);
      assert.match(r.stderr, /overlaps subnet 198\.18\.0\.0\/16/);
      assert.match(r.stderr, /nothing was written to etcd and the SQLite state is unchanged/);
      assert.deepEqual(await dump(o), etcdBefore, 'etcd unchanged');
      assert.deepEqual(await sqliteDump(stateDir), sqliteBefore, 'SQLite unchanged');
      assert.ok(!fs.existsSync(path.join(stateDir, 'host-id')), 'no host id made');

      // Another key layout version; then this host id's addresses already in etcd, a daemon of this host id
      // running on etcd (its presence key), and an earlier migrate of it that did not finish (its marker).
      await s.put('meta/schema', '3');
      fs.writeFileSync(path.join(stateDir, 'host-id'), 'known-1\n');
      const v = await macnet(args(o, stateDir));
      assert.match(v.stderr, /STORE_MIGRATE_CONFLICT: .*meta\/schema: etcd holds key layout version 3, this macnet/);
      await s.put('meta/schema', '2');
      await s.delete(`ipam/addresses/${SEG}/${addresses[1]}`);
      await s.delete(`ipam/pools/${SEG}/198.18.40.128_25`);
      await s.delete('ipam/pools/LocalDefault/198.18.0.0_16');
      await s.put(
        `ipam/addresses/${SEG}/198.18.40.250`,
        JSON.stringify({ owner: 'old', pool: POOL_ID, host: 'known-1' }),
      );
      await s.put('hosts/known-1', JSON.stringify({ since: 'now', hostname: 'h', pid: 1 }));
      await s.put('migrating/known-1/0', 'then');
      const h = await macnet(args(o, stateDir));
      assert.match(h.stderr, /STORE_MIGRATE_CONFLICT: .*3 conflicts/);
      assert.match(h.stderr, /hosts\/known-1: a daemon of this host id \(known-1, .*\) runs on etcd right now/);
      assert.match(h.stderr, /migrating\/known-1\/0: an earlier macnet store migrate of this host id did not finish/);
      assert.match(h.stderr, /etcd already holds 1 address records of this host id \(known-1\)/);
      assert.deepEqual(await sqliteDump(stateDir), sqliteBefore, 'SQLite unchanged');
    } finally {
      await s.close();
    }
  });

  test('--dry-run prints the plan and writes nothing', async () => {
    const { stateDir } = await sqliteState();
    const before = await sqliteDump(stateDir);
    const o = etcdOptions();
    const r = await macnet([...args(o, stateDir), '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /pool LocalDefault\/198\.18\.40\.0\/24: new in etcd, 1 network/);
    assert.match(r.stdout, /then .*state\.db's ipam\/ keys would be deleted in one transaction/);
    assert.match(r.stdout, /dry run: nothing was written/);
    assert.deepEqual(await dump(o), []);
    assert.deepEqual(await sqliteDump(stateDir), before, 'state.db unchanged, its old key layout too');
    assert.ok(!fs.existsSync(path.join(stateDir, 'host-id')));
  });

  test('refused while a daemon holds the state dir; bad options name the option', async () => {
    const { stateDir } = await sqliteState(1);
    const o = etcdOptions();
    const held = await claimInstance(stateDir);
    try {
      const r = await macnet(args(o, stateDir));
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /DAEMON_ALREADY_RUNNING: .*stop it, run macnet store migrate again, then start the daemon with --store etcd/,
      );
    } finally {
      held.release();
    }
    assert.deepEqual(await dump(o), []);
    const to = await macnet(['store', 'migrate', '--to', 'sqlite', '--state-dir', stateDir]);
    assert.equal(to.code, 2);
    assert.match(to.stderr, /OPTION_INVALID: --to "sqlite" is not valid: give --to etcd/);
    const noEndpoints = await macnet(['store', 'migrate', '--to', 'etcd', '--state-dir', stateDir]);
    assert.match(noEndpoints.stderr, /OPTION_INVALID: --etcd-endpoints "" is not valid/);
    const noState = await macnet(args(o, path.join(dir, 'nowhere')));
    assert.match(noState.stderr, /OPTION_INVALID: --state-dir ".*nowhere" is not valid: it holds no state\.db/);
    // The daemon's --lost-host-grace is no migrate option.
    const grace = await macnet([...args(o, stateDir), '--lost-host-grace', '60']);
    assert.equal(grace.code, 2);
    assert.match(grace.stderr, /lost-host-grace/);
    const sub = await macnet(['store', 'copy']);
    assert.match(sub.stderr, /INVALID_ARGUMENT: store: unknown subcommand "copy"/);
  });

  test('a race with another host in a later chunk: the earlier chunks are undone, nothing is left', async () => {
    const { stateDir } = await sqliteState(150, false);
    const local = await sqliteDump(stateDir);
    const o = etcdOptions();
    const s = await EtcdStore.open(o);
    try {
      const plan = planMigration(
        local,
        {
          schema: undefined,
          keysWithoutSchema: 0,
          pools: [],
          addresses: [],
          stickies: [],
          present: undefined,
          markers: [],
        },
        'me-1',
      );
      assert.deepEqual(plan.conflicts, []);
      assert.ok(plan.steps.length > 150, `${plan.steps.length} steps: more than one chunk`);
      // Another host takes the last address after the plan was made.
      const last = [...plan.steps].reverse().find((st) => st.op.key.startsWith('ipam/addresses/'))!.op.key;
      await s.put(last, JSON.stringify({ owner: 'racer', pool: POOL_ID, host: 'other-2' }));
      let reached = 0;
      const r = await applyPlan(s, 'me-1', plan.steps, plan.stickies, async () => {
        reached++;
      });
      assert.equal(reached, 0, 'the SQLite delete is not reached');
      assert.equal(r.ok, false);
      assert.equal(r.changed, true);
      assert.deepEqual(r.leftover, []);
      assert.ok(r.transactions >= 2, `${r.transactions} transactions`);
      assert.deepEqual(
        (await s.list('')).map((e) => e.key),
        [last],
        "only the racing host's record is left",
      );
    } finally {
      await s.close();
    }
  });
}
