// `macnet store migrate --to etcd` with running containers (issue 19's acceptance: "Migration test from SQLite to
// etcd with running containers"). Lab host h1 runs dockerd and macnet on SQLite: a macnet network, three
// containers. The daemon is stopped (the containers keep pinging each other meanwhile), the address pools are moved
// into a one-member etcd (on h2's LAN address) while h1's own records stay in its state.db, and the daemon starts
// again with --store etcd on the same state dir: `docker network inspect` is unchanged, the containers still ping,
// a new container gets an address none of the old ones has, `docker rm -f` releases an address in etcd, and a
// second host (h2) on the same etcd and network gets only addresses h1 does not use. Before that, the daemon on
// etcd refuses the unmigrated state dir, and a conflict (etcd holding one of h1's addresses for another host) is
// refused, naming it, with etcd and the SQLite state unchanged. At the end, h1's daemon on SQLite refuses the
// migrated state dir (STATE_MIGRATED), and starts again on etcd.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from '../lab/engine-test';
import { Daemon } from '../lab/daemon';
import { EtcdCluster } from '../lab/etcd';
import { LAN, Lab, type LabHost } from '../lab/lab';
import { createMacnetNetwork, dockerOk as ok } from '../lab/networks';
import { SCHEMA_VERSION } from '../../src/store/schema';
import { SqliteStore } from '../../src/store/sqlite';
import type { Entry } from '../../src/store/types';

const MACNET = path.join(__dirname, '..', '..', '..', 'bin', 'macnet');
const NET = 'lan';
const IMAGE = 'busybox:local';
const SEG = 'LocalDefault/198.18.15.0_24';

let lab: Lab;
let etcd: EtcdCluster | undefined;
let h1: LabHost;
let h2: LabHost;
let stateDir: string;
const daemons: Daemon[] = [];
/** h1's daemon on etcd, once migrated. */
let d1: Daemon | undefined;
/** h1's containers and their addresses, as the SQLite daemon gave them. */
const ips = new Map<string, string>();

const ipOf = (h: LabHost, name: string) =>
  ok(h, 'inspect', '-f', `{{(index .NetworkSettings.Networks "${NET}").IPAddress}}`, name);

async function ping(h: LabHost, from: string, to: string): Promise<void> {
  const r = await h.docker('exec', from, 'ping', '-c', '1', '-W', '2', to);
  assert.equal(r.code, 0, `${h.name}: ping ${to} from ${from}: ${r.stdout}${r.stderr}`);
}

async function startDaemon(h: LabHost, dir: string | undefined, args: string[]): Promise<Daemon> {
  const d = await Daemon.start({
    netns: h.ns.path,
    mountNs: h.mountNs,
    pluginDir: h.pluginDir,
    ...(dir && { stateDir: dir }),
    extraArgs: ['--log-level', 'info', ...args],
  });
  daemons.push(d);
  return d;
}

const etcdArgs = () => ['--store', 'etcd', '--etcd-endpoints', etcd!.endpoints.join(',')];

/** The command as an operator runs it on h1: in its namespaces, with the daemon's state dir. */
const migrate = (...extra: string[]) =>
  h1.exec(
    process.execPath,
    MACNET,
    'store',
    'migrate',
    '--to',
    'etcd',
    '--etcd-endpoints',
    etcd!.endpoints.join(','),
    '--state-dir',
    stateDir,
    ...extra,
  );

/** Every key and value under macnet/, as etcdctl prints them. */
async function etcdDump(): Promise<string> {
  const r = await etcd!.etcdctl(['get', '--prefix', 'macnet/']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

async function etcdAddresses(): Promise<string[]> {
  const r = await etcd!.etcdctl(['get', '--prefix', '--keys-only', `macnet/ipam/addresses/${SEG}/`]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((k) => k.slice(k.lastIndexOf('/') + 1))
    .sort();
}

async function sqliteDump(): Promise<Entry[]> {
  const s = SqliteStore.open(path.join(stateDir, 'state.db'));
  try {
    return await s.list('');
  } finally {
    await s.close();
  }
}

/** `docker network inspect` of the network, parsed. */
async function inspect(h: LabHost): Promise<Record<string, unknown>> {
  return (JSON.parse(await ok(h, 'network', 'inspect', NET)) as Record<string, unknown>[])[0]!;
}

/** The same network on each host: name, subnet, gateway (the LAN's router), parent. */
async function createNetwork(h: LabHost): Promise<void> {
  await createMacnetNetwork(h, NET);
}

/** How the SQLite daemon's stop went, said by the first test. */
let stopNote = '';
const STOP_BOUND_MS = 15_000;

/**
 * SIGTERM, as systemctl stop sends it. A daemon that has not exited after STOP_BOUND_MS is killed (its state is
 * durable, as after a crash) and its last log lines are kept for the report: a daemon that logged its stop and
 * kept running was seen on Docker 28 before src/lan/probe-links.ts stopped making probe links after close; the
 * bound stays, so that a regression shows as a diagnostic here rather than a hung file.
 */
async function stopBounded(d: Daemon): Promise<string> {
  const exited = d.exited();
  const pid = d.pid!;
  const t0 = Date.now();
  const signalled = d.stop('SIGTERM');
  const first = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), STOP_BOUND_MS))]);
  if (first !== 'timeout') {
    assert.equal(await signalled, 0, 'the SQLite daemon stops cleanly');
    return `the SQLite daemon exited 0 ${Date.now() - t0} ms after SIGTERM`;
  }
  const tail = d.rawLines().slice(-6).join(' | ');
  process.kill(pid, 'SIGKILL');
  await signalled;
  return `the SQLite daemon had not exited ${STOP_BOUND_MS} ms after SIGTERM: killed; its last log lines: ${tail}`;
}

describe('a host on SQLite moves to etcd with its containers running', () => {
  before(async () => {
    lab = await Lab.create({ hosts: 2, docker: true });
    [h1, h2] = lab.hosts as [LabHost, LabHost];
    etcd = await EtcdCluster.start({
      members: 1,
      placement: { members: [{ netns: h2.ns.path, ip: h2.ipv4 }], ctlNetns: lab.lan.path },
      parentDir: lab.dir,
    });
    stateDir = fs.mkdtempSync(path.join(lab.dir, 'h1-state-'));
    const sqliteDaemon = await startDaemon(h1, stateDir, []);
    await createNetwork(h1);
    for (const n of ['c1', 'c2', 'c3']) {
      await ok(h1, 'run', '-d', '--name', n, '--net', NET, IMAGE, 'sleep', '600');
      ips.set(n, await ipOf(h1, n));
    }
    // From here on c1 pings c2 five times a second, through the stop, the migration and the start on etcd.
    await ok(
      h1,
      'exec',
      '-d',
      'c1',
      'sh',
      '-c',
      `ping -i 0.2 ${ips.get('c2')} > /ping.log 2>&1 & echo $! > /ping.pid; wait`,
    );
    stopNote = await stopBounded(sqliteDaemon);
  });
  after(async () => {
    // dockerd first (it calls the plugins while it stops, and they need etcd), then the plugins, then etcd.
    try {
      await lab?.destroy();
    } finally {
      for (const d of daemons.splice(0)) await d.remove();
      await etcd?.close();
    }
  });

  test('etcd holding one of its addresses for another host: refused naming it, etcd and SQLite unchanged', async (t) => {
    t.diagnostic(stopNote);
    const taken = ips.get('c2')!;
    const key = `macnet/ipam/addresses/${SEG}/${taken}`;
    const other = JSON.stringify({ owner: 'web9', pool: `LocalDefault/${LAN.subnet4}`, host: 'other-9f8e7d6c' });
    // A cluster other hosts already use: its key layout version, and the address under another host.
    assert.equal((await etcd!.etcdctl(['put', 'macnet/meta/schema', String(SCHEMA_VERSION)])).code, 0);
    assert.equal((await etcd!.etcdctl(['put', key, other])).code, 0);
    const etcdBefore = await etcdDump();
    const sqliteBefore = await sqliteDump();
    // The daemon on etcd refuses the state dir as it is: its pools would be left out of the cluster's.
    await assert.rejects(startDaemon(h1, stateDir, etcdArgs()), (e: Error) => {
      assert.match(e.message, /exited with 1 before ready/);
      assert.match(e.message, /STORE_ERROR/);
      assert.match(e.message, /holds the address pools of 1 network/);
      assert.match(e.message, /macnet store migrate --to etcd/);
      return true;
    });
    const r = await migrate();
    assert.equal(r.code, 1, `${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /^macnet: STORE_MIGRATE_CONFLICT: /);
    assert.ok(
      r.stderr.includes(`ipam/addresses/${SEG}/${taken}: address ${taken} is held in etcd by host other-9f8e7d6c`),
    );
    assert.equal(await etcdDump(), etcdBefore, 'etcd unchanged');
    assert.deepEqual(await sqliteDump(), sqliteBefore, 'the SQLite state unchanged');
    assert.ok(fs.existsSync(path.join(stateDir, 'state.db')));
    assert.ok(!fs.existsSync(path.join(stateDir, 'host-id')), 'no host id made');
    assert.equal((await etcd!.etcdctl(['del', key])).code, 0);
    // The containers still reach each other with no daemon at all.
    await ping(h1, 'c3', ips.get('c1')!);
  });

  test('migrated and started on etcd: same network, containers ping throughout, addresses kept in etcd', async (t) => {
    const before = await inspect(h1);
    const t0 = Date.now();
    const r = await migrate();
    t.diagnostic(`migrate took ${Date.now() - t0} ms: ${r.stdout.trim().split('\n').join(' | ')}`);
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /gateways 1 new, 0 merged; 3 addresses; staying in SQLite: 1 networks, 3 endpoints/);
    assert.match(r.stdout, /next: start the daemon with --store etcd/);
    const host = fs.readFileSync(path.join(stateDir, 'host-id'), 'utf8').trim();
    const held = [...ips.values(), LAN.router4].sort();
    assert.deepEqual(await etcdAddresses(), held, 'etcd holds the gateway and the three addresses');
    for (const a of ips.values()) {
      const rec = await etcd!.etcdctl(['get', '--print-value-only', `macnet/ipam/addresses/${SEG}/${a}`]);
      assert.equal(JSON.parse(rec.stdout).host, host, `${a} is named as h1's`);
    }
    // Only the shared keys in etcd: nothing under hosts/ (the running daemons' presence), no marker left.
    const keys = (await etcd!.etcdctl(['get', '--prefix', '--keys-only', 'macnet/'])).stdout.split('\n');
    assert.deepEqual(
      keys.filter((k) => k && !k.startsWith('macnet/ipam/') && k !== 'macnet/meta/schema'),
      [],
      keys.join(' '),
    );
    // h1's own records stay in its state.db, which holds no ipam/ key any more.
    const local = await sqliteDump();
    assert.deepEqual(
      local.filter((e) => e.key.startsWith('ipam/')).map((e) => e.key),
      [],
    );
    assert.equal(local.filter((e) => e.key.startsWith('driver/networks/')).length, 1);
    assert.equal(local.filter((e) => e.key.startsWith('driver/endpoints/')).length, 3);

    d1 = await startDaemon(h1, stateDir, etcdArgs());
    const present = (await etcd!.etcdctl(['get', '--prefix', '--keys-only', 'macnet/hosts/'])).stdout;
    assert.deepEqual(present.split('\n').filter(Boolean), [`macnet/hosts/${host}`], 'its presence key only');
    assert.deepEqual(await inspect(h1), before, '`docker network inspect` unchanged');
    await ping(h1, 'c2', ips.get('c3')!);
    await ping(h1, 'c3', ips.get('c1')!);
    // c1's ping to c2 through all of it: at most the one in flight when it was stopped is missing.
    await ok(h1, 'exec', 'c1', 'sh', '-c', 'kill -INT $(cat /ping.pid); sleep 1');
    const log = await ok(h1, 'exec', 'c1', 'cat', '/ping.log');
    const m = /(\d+) packets transmitted, (\d+) packets received/.exec(log);
    assert.ok(m, log);
    t.diagnostic(`c1 → c2 during the migration: ${m[1]} sent, ${m[2]} answered`);
    assert.ok(Number(m[1]) >= 5 && Number(m[2]) >= Number(m[1]) - 1, log.split('\n').slice(-4).join(' '));

    // A new container: an address none of the old ones has; then one is removed: its address leaves etcd.
    await ok(h1, 'run', '-d', '--name', 'c4', '--net', NET, IMAGE, 'sleep', '600');
    const c4 = await ipOf(h1, 'c4');
    assert.ok(!held.includes(c4), `c4 got ${c4}, one of ${held.join(' ')}`);
    await ping(h1, 'c4', ips.get('c2')!);
    await ok(h1, 'rm', '-f', 'c1');
    assert.ok(!(await etcdAddresses()).includes(ips.get('c1')!), `${ips.get('c1')} released in etcd`);
    ips.delete('c1');
    ips.set('c4', c4);
  });

  test('a second host on the same etcd and network gets only addresses the first does not use', async () => {
    await startDaemon(h2, undefined, etcdArgs());
    await createNetwork(h2);
    const mine: string[] = [];
    for (const n of ['d1', 'd2', 'd3']) {
      await ok(h2, 'run', '-d', '--name', n, '--net', NET, IMAGE, 'sleep', '600');
      mine.push(await ipOf(h2, n));
    }
    const first = [...ips.values()];
    for (const a of mine) assert.ok(!first.includes(a) && a !== LAN.router4, `h2 got ${a}; h1 uses ${first}`);
    assert.equal(new Set(mine).size, 3);
    assert.deepEqual(await etcdAddresses(), [...first, ...mine, LAN.router4].sort());
    const gw = (await etcd!.etcdctl(['get', '--print-value-only', `macnet/ipam/addresses/${SEG}/${LAN.router4}`]))
      .stdout;
    assert.equal(JSON.parse(gw).refs, 2, 'the gateway counts both hosts');
    await ping(h2, 'd1', ips.get('c2')!);
    await ping(h1, 'c4', mine[2]!);
  });

  test('h1 on SQLite again refuses the migrated state dir (STATE_MIGRATED); on etcd it serves again', async () => {
    assert.equal(await d1!.stop('SIGTERM'), 0);
    const before = await sqliteDump();
    await assert.rejects(startDaemon(h1, stateDir, []), (e: Error) => {
      assert.match(e.message, /exited with 1 before ready/);
      assert.match(e.message, /STATE_MIGRATED/);
      assert.match(e.message, /whose address pools are in etcd/);
      return true;
    });
    assert.deepEqual(await sqliteDump(), before, 'the refusal changed nothing');
    await ping(h1, 'c2', ips.get('c4')!);
    await startDaemon(h1, stateDir, etcdArgs());
    await ok(h1, 'run', '-d', '--name', 'c5', '--net', NET, IMAGE, 'sleep', '600');
    await ping(h1, 'c5', ips.get('c2')!);
  });
});
