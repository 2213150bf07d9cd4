// One "host" of figure cluster (bench/cluster.ts): a child process with its own store and Ipam, as one macnet
// daemon of a cluster is, driven by the parent in phases over the IPC channel so that the hosts reserve (and then
// release) at the same moment. It runs inside the etcd members' network namespace (forked through nsenter) for
// the etcd case, and in the root namespace for SQLite, which needs no network.
//
// Phases: open the store, warm the JIT on a subnet of this host's own, request the shared pool → "ready"; "raw"
// → the store's own ceiling (creates of distinct keys, no Ipam) → "raw"; "batch" → the same in transactions of
// `inFlight` creates → "batched"; "reserve" → `count` reservations with
// `inFlight` callers → "reserved"; "release" → all of them released → "released", then the pool released and the
// store closed.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Ipam } from '../src/ipam';
import { EtcdStore } from '../src/store/etcd';
import { SqliteStore } from '../src/store/sqlite';
import type { Store, TxnOp } from '../src/store/types';

export interface HostJob {
  store: { kind: 'etcd'; endpoints: string[]; prefix: string } | { kind: 'sqlite'; file: string };
  /** IpamOptions.host: named in this host's address records (etcd only; a SQLite store has one host). */
  host?: string;
  /** The network all hosts share, and this host's own subnet for the untimed warm-up. */
  subnet: string;
  warmSubnet: string;
  count: number;
  inFlight: number;
  /**
   * After the releases: one phase per rate (reservations/s of this host), each `count` reservations started on a
   * fixed schedule whatever the answers (an open loop), on the pool requested anew. Their addresses stay (the
   * store is thrown away after the run).
   */
  pacedPerSecond?: number[];
  /** Before those: the store alone at this rate (creates of keys of its own, one per call; no Ipam). */
  pacedRawPerSecond?: number;
}

/** What the store saw during one phase: writes (etcd transactions) and how long each took. */
export interface StoreCalls {
  txns: number;
  /** Transactions whose compare failed: an address another host had created meanwhile. */
  lost: number;
  reads: number;
  txnMs: number[];
}

export interface Phase {
  samplesMs: number[];
  /** Epoch milliseconds (performance.timeOrigin + now), comparable between the hosts' processes. */
  startMs: number;
  endMs: number;
  addresses: string[];
  /** Operations done, when a sample covers several (a transaction of several creates); default one per sample. */
  ops?: number;
  calls: StoreCalls;
  loop: { p50: number; p99: number; max: number };
}

export type ToParent =
  | { progress: string }
  | { ready: true }
  | { raw: Phase }
  | { batched: Phase }
  | { reserved: Phase }
  | { released: Phase }
  | { paced: Phase }
  | { pacedRaw: Phase }
  | { error: string };
export type ToHost = { go: 'raw' | 'batch' | 'reserve' | 'release' | 'pacedRaw' | 'paced' };

const WARMUP = 200;
const now = () => performance.timeOrigin + performance.now();

/** Counts and times the store calls a reservation makes (the why of a slow figure), without changing them. */
function instrument(store: Store): { calls: () => StoreCalls; reset: () => void } {
  let c: StoreCalls = { txns: 0, lost: 0, reads: 0, txnMs: [] };
  const write = <A extends unknown[]>(fn: (...a: A) => Promise<boolean>) =>
    async function (...a: A): Promise<boolean> {
      const t = performance.now();
      const ok = await fn(...a);
      c.txnMs.push(performance.now() - t);
      c.txns++;
      if (!ok) c.lost++;
      return ok;
    };
  // Own properties over the class's methods: the Ipam calls them through the same object.
  const s = store as { -readonly [K in keyof Store]: Store[K] };
  const { txn, create, delete: del, get } = { txn: s.txn, create: s.create, delete: s.delete, get: s.get };
  s.txn = write((ops: readonly TxnOp[]) => txn.call(store, ops));
  s.create = write((k: string, v: string) => create.call(store, k, v));
  s.delete = write((k: string, r?: number) => del.call(store, k, r));
  s.get = async (k: string) => {
    c.reads++;
    return get.call(store, k);
  };
  return {
    // A copy: the counters go on counting (the raw phase's deletes) after a phase's answer is taken.
    calls: () => ({ ...c, txnMs: [...c.txnMs] }),
    reset: () => {
      c = { txns: 0, lost: 0, reads: 0, txnMs: [] };
    },
  };
}

/** Runs `body` with the event loop's delay watched: its wall-clock span (epoch ms) and the loop's delays. */
async function watched(body: () => Promise<void>) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const startMs = now();
  await body();
  const endMs = now();
  h.disable();
  return { startMs, endMs, loop: { p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, max: h.max / 1e6 } };
}

/**
 * `inFlight` callers, each with one request outstanding and yielding to the event loop before the next, as
 * requests arriving on the plugin socket do; each call timed on its own.
 */
async function concurrently(n: number, inFlight: number, fn: (i: number) => Promise<void>) {
  const samplesMs = new Array<number>(n);
  let next = 0;
  const run = await watched(async () => {
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        for (let i = next++; i < n; i = next++) {
          await new Promise((r) => setImmediate(r));
          const s = performance.now();
          await fn(i);
          samplesMs[i] = performance.now() - s;
        }
      }),
    );
  });
  return { samplesMs, ...run };
}

/**
 * `n` calls started on a fixed schedule, `perSecond` of them a second, however long the answers take: requests
 * arriving at a given rate, as at a target load. Each is timed from the moment it was due, not from when the timer
 * got to it, so a late timer or a slow answer before it counts against the call (no coordinated omission).
 */
async function paced(n: number, perSecond: number, fn: (i: number) => Promise<void>) {
  const samplesMs = new Array<number>(n);
  const interval = 1000 / perSecond;
  const calls: Promise<void>[] = [];
  const run = await watched(async () => {
    const t0 = performance.now();
    let next = 0;
    await new Promise<void>((resolve, reject) => {
      const tick = () => {
        const t = performance.now();
        for (; next < n && t0 + next * interval <= t; next++) {
          const [i, due] = [next, t0 + next * interval];
          calls.push(fn(i).then(() => void (samplesMs[i] = performance.now() - due)));
          // A failed call fails the phase at once, not after the schedule has run out.
          calls[calls.length - 1]!.catch(reject);
        }
        if (next >= n) return resolve();
        setTimeout(tick, Math.max(0, t0 + next * interval - performance.now()));
      };
      tick();
    });
    await Promise.all(calls);
  });
  return { samplesMs, ...run };
}

async function openStore(job: HostJob): Promise<Store> {
  if (job.store.kind === 'sqlite') return SqliteStore.open(job.store.file, { durability: 'group' });
  return EtcdStore.open({ endpoints: job.store.endpoints, prefix: job.store.prefix });
}

const send = (m: ToParent) => new Promise<void>((r) => process.send!(m, () => r()));

/** The next "go" of `kind` from the parent. */
function go(kind: ToHost['go']): Promise<void> {
  return new Promise((resolve, reject) => {
    const on = (m: ToHost) => {
      if (m.go !== kind) return reject(new Error(`cluster host: expected go ${kind}, got ${m.go}`));
      process.off('message', on);
      resolve();
    };
    process.on('message', on);
  });
}

async function host(job: HostJob): Promise<void> {
  const store = await openStore(job);
  try {
    const ipam = new Ipam(store, job.host === undefined ? {} : { host: job.host });
    await ipam.load();
    const space = 'LocalDefault';
    const warm = await ipam.requestPool({ addressSpace: space, pool: job.warmSubnet, v6: false });
    const warmed: string[] = [];
    for (let i = 0; i < WARMUP; i++) warmed.push((await ipam.requestAddress({ poolId: warm.poolId })).address);
    for (const a of warmed) await ipam.releaseAddress(warm.poolId, a.split('/')[0]!);
    await ipam.releasePool(warm.poolId);
    const { poolId } = await ipam.requestPool({ addressSpace: space, pool: job.subnet, v6: false });
    const counted = instrument(store);
    await send({ ready: true });

    // The store alone, as a ceiling: distinct keys of this host's own, `inFlight` creates at a time with no lock
    // between them (durable: SQLite syncs after each, etcd answers after its quorum's fsync).
    await go('raw');
    counted.reset();
    const key = (i: number) => `raw/${job.host ?? 'host'}/${i}`;
    const raw = await concurrently(job.count, job.inFlight, async (i) => {
      if (!(await store.create(key(i), '{}'))) throw new Error(`cluster host: raw key ${key(i)} existed`);
      await store.sync();
    });
    const rawCalls = counted.calls();
    // Before the answer, so that the next phase starts on all hosts at once.
    await concurrently(job.count, job.inFlight, async (i) => void (await store.delete(key(i))));
    await send({ raw: { ...raw, addresses: [], calls: rawCalls } });

    // The store alone again, as a batching design would use it (issue 19 allows several reservations in one
    // transaction): one transaction of `inFlight` creates at a time, so `inFlight` callers share one round trip.
    await go('batch');
    counted.reset();
    const batches = Math.ceil(job.count / job.inFlight);
    const keys = (b: number) =>
      Array.from({ length: Math.min(job.inFlight, job.count - b * job.inFlight) }, (_, i) => key(b * job.inFlight + i));
    const batched = await concurrently(batches, 1, async (b) => {
      if (!(await store.txn(keys(b).map((k) => ({ op: 'create', key: k, value: '{}' })))))
        throw new Error(`cluster host: a batch of raw keys existed`);
      await store.sync();
    });
    const batchCalls = counted.calls();
    await concurrently(job.count, job.inFlight, async (i) => void (await store.delete(key(i))));
    await send({ batched: { ...batched, addresses: [], ops: job.count, calls: batchCalls } });

    await go('reserve');
    counted.reset();
    const addresses = new Array<string>(job.count);
    // A name per container, as Docker 29 sends it (20.10 to 28 send none): each reservation also writes the name's
    // sticky record (sticky.ts), two keys in etcd instead of one. The harder case of the two.
    const name = (i: number) => ({ 'com.docker.network.endpoint.name': `c-${job.host ?? 'host'}-${i}` });
    const r = await concurrently(job.count, job.inFlight, async (i) => {
      addresses[i] = (await ipam.requestAddress({ poolId, options: name(i) })).address.split('/')[0]!;
    });
    await send({ reserved: { ...r, addresses, calls: counted.calls() } });

    await go('release');
    counted.reset();
    const f = await concurrently(job.count, job.inFlight, (i) => ipam.releaseAddress(poolId, addresses[i]!));
    const calls = counted.calls();
    await ipam.releasePool(poolId);
    await send({ released: { ...f, addresses: [], calls } });

    // The store alone at a fixed rate, one create per call as a client without batching writes: the floor under
    // any reservation at that load. The keys stay (the store is thrown away after the run).
    if (job.pacedRawPerSecond !== undefined) {
      await go('pacedRaw');
      counted.reset();
      const k = (i: number) => `paced-raw/${job.host ?? 'host'}/${i}`;
      const p = await paced(job.count, job.pacedRawPerSecond, async (i) => {
        if (!(await store.create(k(i), '{}'))) throw new Error(`cluster host: raw key ${k(i)} existed`);
      });
      await send({ pacedRaw: { ...p, addresses: [], calls: counted.calls() } });
    }

    // At fixed rates: what a caller waits at a given load, rather than at the most the host can do.
    for (const [k, rate] of (job.pacedPerSecond ?? []).entries()) {
      await go('paced');
      const pool = await ipam.requestPool({ addressSpace: space, pool: job.subnet, v6: false });
      counted.reset();
      const got = new Array<string>(job.count);
      const opts = (i: number) => ({ 'com.docker.network.endpoint.name': `p${k}-${job.host ?? 'host'}-${i}` });
      const p = await paced(job.count, rate, async (i) => {
        got[i] = (await ipam.requestAddress({ poolId: pool.poolId, options: opts(i) })).address.split('/')[0]!;
      });
      await send({ paced: { ...p, addresses: got, calls: counted.calls() } });
    }
  } finally {
    await store.close();
  }
}

if (require.main === module) {
  // The parent gone (killed, or failed and exiting): stop at once rather than reserve against stopped members.
  process.on('disconnect', () => process.exit(1));
  host(JSON.parse(process.argv[2]!) as HostJob).then(
    () => process.disconnect(),
    async (e: unknown) => {
      await send({ error: e instanceof Error ? (e.stack ?? e.message) : String(e) }).catch(() => undefined);
      process.exit(1);
    },
  );
}
