// Figure "ipam": how fast the IPAM hands out and takes back addresses, in memory and persisted. The questions it
// answers: does lowest-free allocation over the interval index stay fast across a whole IPv4 /16 and deep into an IPv6
// /64 (no scan from the start of the range per allocation), what does the SQLite transaction per address cost, and what
// does durability (an allocation on disk before its answer, docs/ipam.md "Durability") cost against the store as it was
// (synchronous=NORMAL, no fsync)? Targets (reported, never asserted): 50,000 allocations/s in memory, 5,000 durable
// allocations/s persisted (with IN_FLIGHT requests at a time, as dockerd starting many containers sends them: one
// caller at a time waits for one fsync per allocation whatever the design).
//
//   node dist/bench/ipam.js [--quick]        alone, prints the tables and the targets
//   npm run bench -- ipam                    through bench/run.ts, once it lists `ipam` in FIGURES
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { isMacnetError } from '../src/errors';
import { Ipam } from '../src/ipam';
import { MemoryStore } from '../src/store/memory';
import { SqliteStore } from '../src/store/sqlite';
import type { Store } from '../src/store/types';
import {
  type ExtraTable,
  type Figure,
  type PlotPanel,
  type RichFigureResult,
  type Series,
  fmtRatio,
  summarize,
  textTable,
} from './stats';

const FULL = 100_000;
const QUICK = 10_000;
const V4_SUBNET = '198.18.0.0/16';
const V4_USABLE = 65_534;
const V6_SUBNET = '2001:db8:1::/64';
/** Untimed allocations on a separate subnet first, so the JIT has compiled the hot path before timing. */
const WARMUP = 5_000;
const TARGET_PER_S = { memory: 50_000, durable: 5_000 };
/** Requests in flight in the concurrent runs: about what 50 parallel `docker run`s (figure docker-run) send. */
const IN_FLIGHT = 64;
/** One durable allocation at a time costs an fsync each: fewer of them, so the figure stays within seconds. */
const DURABLE_ONE_AT_A_TIME = 2_000;

/** memory: MemoryStore; sqlite: SqliteStore as it was (durability 'none'); durable: SqliteStore's default. */
type Method = 'memory' | 'sqlite' | 'durable';

interface Run {
  op: string;
  method: Method;
  inFlight: number;
  samplesMs: number[];
  perSecond: number;
  /** Event-loop delay while the allocations ran (concurrent runs only), ms. */
  loop?: { p50: number; p99: number; max: number };
  /** Durable runs: fsyncs per allocation (group commit shares one among many). */
  fsyncsPerOp?: number;
}

interface MemoryUse {
  family: string;
  method: Method;
  count: number;
  rssMiB: number;
  heapMiB: number;
}

/** What one child process measures: one family on one store. */
interface Job {
  method: Method;
  family: 'IPv4 /16' | 'IPv6 /64';
  count: number;
  tmp: string;
  inFlight: number;
}

interface Measured {
  runs: Run[];
  mem?: MemoryUse;
}

/**
 * A full collection before each memory reading, so the deltas are live data and not garbage yet to be
 * collected; the child is started with --expose-gc.
 */
function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error('bench ipam: measure() needs node --expose-gc (it runs in a child process started so)');
  g();
}

const mib = (bytes: number) => bytes / 2 ** 20;

/** Times each call on its own. Samples go to a Float64Array: off the JS heap, so not in the heap delta. */
async function timedLoop(
  n: number,
  fn: (i: number) => Promise<unknown>,
): Promise<{ samplesMs: Float64Array; perSecond: number }> {
  const samplesMs = new Float64Array(n);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const s = process.hrtime.bigint();
    await fn(i);
    samplesMs[i] = Number(process.hrtime.bigint() - s) / 1e6;
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { samplesMs, perSecond: n / seconds };
}

/**
 * `inFlight` callers, each with one request outstanding, yielding to the event loop between requests as
 * requests arriving on a socket do; the event-loop delay is sampled meanwhile (a 1 ms timer's lateness).
 */
async function concurrentLoop(n: number, inFlight: number, fn: (i: number) => Promise<unknown>) {
  const samplesMs = new Float64Array(n);
  const h = monitorEventLoopDelay({ resolution: 1 });
  let next = 0;
  h.enable();
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      for (let i = next++; i < n; i = next++) {
        await new Promise((r) => setImmediate(r));
        const s = process.hrtime.bigint();
        await fn(i);
        samplesMs[i] = Number(process.hrtime.bigint() - s) / 1e6;
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  h.disable();
  const ms = (ns: number) => ns / 1e6;
  return {
    samplesMs,
    perSecond: n / seconds,
    loop: { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) },
  };
}

/** One family on one store: warm up, allocate `count`, check, release them all, check. */
async function measure({ method, family, count, tmp, inFlight }: Job, log: (m: string) => void): Promise<Measured> {
  const file = path.join(tmp, `${method}-${inFlight}-${family.slice(0, 4)}`, 'state.db');
  const sqlite =
    method === 'memory' ? undefined : SqliteStore.open(file, { durability: method === 'durable' ? 'group' : 'none' });
  const store: Store = sqlite ?? new MemoryStore();
  const loop =
    inFlight === 1 ? timedLoop : (n: number, fn: (i: number) => Promise<unknown>) => concurrentLoop(n, inFlight, fn);
  const label = `${method} ${family}${inFlight === 1 ? '' : `, ${inFlight} in flight`}`;
  try {
    const ipam = new Ipam(store);
    await ipam.load();
    const v6 = family.startsWith('IPv6');
    const warm = await ipam.requestPool({
      addressSpace: 'LocalDefault',
      pool: v6 ? '2001:db8:ffff::/64' : '198.19.0.0/16',
      v6,
    });
    for (let i = 0; i < WARMUP; i++) await ipam.requestAddress({ poolId: warm.poolId });
    await ipam.releasePool(warm.poolId);

    const { poolId } = await ipam.requestPool({ addressSpace: 'LocalDefault', pool: v6 ? V6_SUBNET : V4_SUBNET, v6 });
    const options = { 'com.docker.network.endpoint.name': 'bench' };
    const addresses = new Array<string>(count);
    gc();
    const m0 = process.memoryUsage();
    const fsyncs0 = sqlite?.group?.fsyncs ?? 0;
    const alloc = await loop(count, async (i) => {
      addresses[i] = (await ipam.requestAddress({ poolId, options })).address;
    });
    const fsyncs = (sqlite?.group?.fsyncs ?? 0) - fsyncs0;
    gc();
    const m1 = process.memoryUsage();
    log(`ipam: ${label}: ${count} allocated, ${Math.round(alloc.perSecond)}/s`);

    if (new Set(addresses).size !== count) throw new Error(`ipam bench: ${label} handed out duplicate addresses`);
    if (!v6 && count === V4_USABLE) {
      // The whole /16 is allocated: one more must be refused, or the figure did not cover every address.
      const more = await ipam.requestAddress({ poolId }).then(
        () => undefined,
        (e: unknown) => e,
      );
      if (!isMacnetError(more, 'IPAM_POOL_EXHAUSTED'))
        throw new Error(`ipam bench: a full ${V4_SUBNET} was not exhausted: ${String(more)}`);
    }
    const plain = addresses.map((a) => a.slice(0, a.indexOf('/')));
    const release = await loop(count, (i) => ipam.releaseAddress(poolId, plain[i]!));
    log(`ipam: ${label}: ${count} released, ${Math.round(release.perSecond)}/s`);
    if ((await ipam.allocations(poolId)).length !== 0)
      throw new Error(`ipam bench: ${label}: addresses left after release`);
    await ipam.releasePool(poolId);

    const suffix = inFlight === 1 ? '' : `, ${inFlight} in flight`;
    const run = (op: string, r: typeof alloc & { loop?: Run['loop'] }, extra: Partial<Run> = {}): Run => ({
      op: `${op} ${family}${suffix}`,
      method,
      inFlight,
      samplesMs: Array.from(r.samplesMs),
      perSecond: r.perSecond,
      ...(r.loop && { loop: r.loop }),
      ...extra,
    });
    return {
      runs: [run('allocate', alloc, sqlite?.group ? { fsyncsPerOp: fsyncs / count } : {}), run('release', release)],
      // Memory is compared between full one-at-a-time runs only (the same count, the same code path).
      ...(inFlight === 1 &&
        method !== 'durable' && {
          mem: { family, method, count, rssMiB: mib(m1.rss - m0.rss), heapMiB: mib(m1.heapUsed - m0.heapUsed) },
        }),
    };
  } finally {
    await store.close();
  }
}

/**
 * Each measurement runs in a fresh process: otherwise the memory one run frees (a MemoryStore of 100,000
 * entries) shows up as a negative RSS delta in the next, and the JIT state of one run favours the next.
 */
function inChild(job: Job, log: (m: string) => void): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, ['--child', JSON.stringify(job)], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let result: Measured | undefined;
    // Progress lines and then the result arrive over the IPC channel.
    child.on('message', (m: { progress: string } | Measured) => {
      if ('progress' in m) log(m.progress);
      else result = m;
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (result && code === 0) resolve(result);
      else
        reject(
          new Error(
            `bench ipam: ${job.method} ${job.family} (${job.inFlight} in flight) child exited with ${signal ?? `code ${code}`}`,
          ),
        );
    });
  });
}

export interface IpamFigureDetails {
  runs: Run[];
  memory: MemoryUse[];
  /** allocations/s against the targets, PASS or FAIL. */
  targets: string[];
  tables: ExtraTable[];
}

const perS = (x: number) => Math.round(x).toLocaleString('en');

/** Allocations/s side by side: today's store (sqlite), durable, and their ratio; the event loop meanwhile. */
function tablesOf(runs: Run[]): ExtraTable[] {
  const allocs = runs.filter((r) => r.op.startsWith('allocate'));
  const ops = [...new Set(allocs.map((r) => r.op))];
  const find = (op: string, m: Method) => allocs.find((r) => r.op === op && r.method === m);
  const cell = (r: Run | undefined) => (r ? perS(r.perSecond) : '-');
  const ms = (x: number) => x.toFixed(2);
  return [
    {
      title: "Allocations per second, durable against today's store (sqlite), in the same run",
      header: ['op', 'memory /s', 'sqlite /s', 'durable /s', 'durable / sqlite', 'fsyncs per durable allocation'],
      rows: ops.map((op) => {
        const [m, q, d] = (['memory', 'sqlite', 'durable'] as const).map((x) => find(op, x));
        return [
          op,
          cell(m),
          cell(q),
          cell(d),
          q && d ? fmtRatio(d.perSecond / q.perSecond) : '-',
          d?.fsyncsPerOp !== undefined ? d.fsyncsPerOp.toFixed(3) : '-',
        ];
      }),
    },
    {
      title: `Event-loop delay while ${IN_FLIGHT} requests are in flight (a 1 ms timer's lateness, ms)`,
      header: ['op', 'method', 'p50 ms', 'p99 ms', 'max ms'],
      rows: runs.filter((r) => r.loop).map((r) => [r.op, r.method, ms(r.loop!.p50), ms(r.loop!.p99), ms(r.loop!.max)]),
    },
  ];
}

/** Runs the figure and also returns what run.ts's table has no column for (ops/s, memory, targets). */
export async function ipamDetails(
  opts: { quick?: boolean; rounds?: number; log?: (m: string) => void } = {},
): Promise<{ result: RichFigureResult; details: IpamFigureDetails }> {
  const n = opts.rounds ?? (opts.quick ? QUICK : FULL);
  const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const v4 = Math.min(n, V4_USABLE);
  const one = Math.min(n, DURABLE_ONE_AT_A_TIME);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'macnet-bench-ipam-'));
  // An interrupted run (Ctrl-C exits without running the finally below) must not leave the databases behind.
  const removeTmp = () => fs.rmSync(tmp, { recursive: true, force: true });
  process.once('exit', removeTmp);
  const runs: Run[] = [];
  const memory: MemoryUse[] = [];
  try {
    for (const [family, count] of [
      ['IPv4 /16', v4],
      ['IPv6 /64', n],
    ] as const) {
      const jobs: Omit<Job, 'family' | 'tmp'>[] = [
        { method: 'memory', count, inFlight: 1 },
        { method: 'sqlite', count, inFlight: 1 },
        { method: 'durable', count: Math.min(count, one), inFlight: 1 },
        { method: 'sqlite', count, inFlight: IN_FLIGHT },
        { method: 'durable', count, inFlight: IN_FLIGHT },
      ];
      for (const job of jobs) {
        const r = await inChild({ ...job, family, tmp }, log);
        runs.push(...r.runs);
        if (r.mem) memory.push(r.mem);
      }
    }
  } finally {
    removeTmp();
    process.off('exit', removeTmp);
  }

  const slowest = (m: Method, inFlight: number) =>
    Math.min(
      ...runs
        .filter((r) => r.method === m && r.inFlight === inFlight && r.op.startsWith('allocate'))
        .map((r) => r.perSecond),
    );
  const line = (ok: boolean, what: string, x: number, target: number) =>
    `${ok ? 'PASS' : 'FAIL'}: ${what}: slowest allocation run ${perS(x)}/s, target at least ${perS(target)}/s`;
  const mem = slowest('memory', 1);
  const durable = slowest('durable', IN_FLIGHT);
  const targets = [
    line(mem >= TARGET_PER_S.memory, 'in memory', mem, TARGET_PER_S.memory),
    line(
      durable >= TARGET_PER_S.durable,
      `persisted and durable (SQLite, group commit, ${IN_FLIGHT} in flight)`,
      durable,
      TARGET_PER_S.durable,
    ),
  ];
  const tables = tablesOf(runs);
  const rate = (r: Run) => `${r.op} / ${r.method}: ${perS(r.perSecond)}/s`;
  const plot: PlotPanel[] = [
    {
      title: `allocations/s, IPv4 /16 (durable: target ${perS(TARGET_PER_S.durable)}/s)`,
      unit: '/s',
      better: 'higher',
      bars: runs
        .filter((r) => r.method !== 'memory' && r.op.startsWith('allocate IPv4'))
        .map((r) => ({
          label: `${r.method}, ${r.inFlight === 1 ? 'one at a time' : `${r.inFlight} in flight`}`,
          value: r.perSecond,
          ...(r.method === 'durable' && r.inFlight > 1 && { pass: r.perSecond >= TARGET_PER_S.durable }),
        })),
      lines: [{ value: TARGET_PER_S.durable, label: 'target (durable)', kind: 'target' }],
    },
  ];
  const result: RichFigureResult = {
    what:
      `One Ipam per store, family and way of calling, each in a fresh process. After ${WARMUP} untimed allocations on ` +
      `another subnet, ${v4 === V4_USABLE ? 'every' : v4} usable address${v4 === 1 ? '' : 'es'} of ${V4_SUBNET} ` +
      `(${V4_USABLE} in all) and ${n} addresses of ${V6_SUBNET} are requested (RequestAddress with an endpoint name, ` +
      'as dockerd sends it, lowest free first) and then released in the same order: one after another (each awaited before ' +
      `the next; durable: the first ${one} only, each waits for its own fsync), and with ${IN_FLIGHT} in flight ` +
      '(that many callers, each yielding to the event loop before its next request, as requests arriving on a socket ' +
      'do; the event-loop delay is sampled meanwhile). Each call is timed on its own (process.hrtime.bigint around the ' +
      'awaited call); ops/s is the count divided by the wall time of the whole loop.',
    methods: {
      memory: 'Ipam on MemoryStore (src/store/memory.ts, the unit-test fake: nothing persisted)',
      sqlite:
        "Ipam on SqliteStore as it was before durability (durability 'none': WAL, synchronous=NORMAL, SQLite's " +
        'own checkpoints): one transaction per address, no fsync; a power cut can roll back the last allocations',
      durable:
        'Ipam on SqliteStore as the daemon runs it (WAL, synchronous=NORMAL, then Store.sync: one fdatasync of ' +
        'the WAL on the thread pool for every allocation committed before it, checkpoints on a worker thread): no ' +
        'answer before its allocation is on disk',
    },
    baseline: 'sqlite',
    roundUnit: `one address allocated and released per family and store (IPv4 capped at the ${V4_USABLE} of the /16)`,
    rounds: n,
    series: runs.map((r): Series => ({ op: r.op, method: r.method, samplesMs: r.samplesMs })),
    tables,
    plot,
    notes: [
      ...targets,
      `Rates: ${runs.map(rate).join('; ')}.`,
      'Memory: rss and heap after allocating minus before, each after a full GC, in a fresh process per run (the ' +
        'one-at-a-time runs of memory and sqlite). The heap ' +
        "delta includes MemoryStore's own entries (for memory) and the benchmark's own array of the returned address " +
        `strings (about 40 to 60 bytes per address); RSS also counts SQLite's page cache and heap pages V8 has not returned. ${memory
          .map((m) => `${m.family} / ${m.method}: rss ${m.rssMiB.toFixed(1)} MiB, heap ${m.heapMiB.toFixed(1)} MiB`)
          .join('; ')}.`,
      'A durable allocation one at a time waits for one fsync of the disk the temporary directory is on; with many in ' +
        'flight, one fsync covers every allocation committed while the previous one ran (group commit), so the rate ' +
        "approaches the no-fsync rate. The sqlite rows fsync only inside SQLite's own checkpoints, on the event loop " +
        '(its event-loop delay shows them).',
    ],
  };
  return { result, details: { runs, memory, targets, tables } };
}

/** The figure as the brief names it: full sizes, or 10,000 addresses per family with `quick`. */
export async function ipamFigure(opts: { quick?: boolean }): Promise<RichFigureResult> {
  return (await ipamDetails(opts)).result;
}

/** For bench/run.ts's FIGURES: rounds = addresses per family and store. */
export const ipam: Figure = {
  id: 'ipam',
  title: 'IPAM: allocate and release a whole IPv4 /16 and 100,000 IPv6 addresses, in memory, on SQLite, durable',
  defaultRounds: FULL,
  quickRounds: QUICK,
  async run({ rounds, log }) {
    return (await ipamDetails({ rounds, log })).result;
  },
};

function print(details: IpamFigureDetails): void {
  const us = (ms: number) => (ms * 1000).toFixed(1);
  console.log(
    textTable(
      ['op', 'method', 'n', 'ops/s', 'median µs', 'p90 µs', 'max µs'],
      details.runs.map((r) => {
        const s = summarize(r.samplesMs);
        return [r.op, r.method, String(s.n), String(Math.round(r.perSecond)), us(s.median), us(s.p90), us(s.max)];
      }),
    ),
  );
  console.log();
  console.log(
    textTable(
      ['family', 'method', 'addresses', 'rss delta MiB', 'heap delta MiB'],
      details.memory.map((m) => [m.family, m.method, String(m.count), m.rssMiB.toFixed(1), m.heapMiB.toFixed(1)]),
    ),
  );
  for (const t of details.tables) console.log(`\n${t.title}:\n\n${textTable(t.header, t.rows)}`);
  console.log();
  for (const t of details.targets) console.log(t);
}

async function childMain(job: Job): Promise<void> {
  const r = await measure(job, (progress) => process.send!({ progress }));
  process.send!(r, () => process.disconnect());
}

if (require.main === module && process.argv[2] === '--child') {
  childMain(JSON.parse(process.argv[3]!) as Job).catch((e: unknown) => {
    console.error('bench ipam (child):', e);
    process.exitCode = 1;
  });
} else if (require.main === module) {
  const quick = process.argv.includes('--quick') || /^(1|true|yes)$/i.test(process.env['BENCH_QUICK'] ?? '');
  ipamDetails({ quick }).then(
    ({ details }) => print(details),
    (e: unknown) => {
      console.error('bench ipam:', e);
      process.exitCode = 1;
    },
  );
}
