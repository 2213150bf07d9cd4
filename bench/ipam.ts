// Figure "ipam": how fast the IPAM hands out and takes back addresses, in memory and persisted. The question
// it answers: does lowest-free allocation over the interval index stay fast across a whole IPv4 /16 and deep into an IPv6
// /64 (no scan from the start of the range per allocation), and what does the SQLite transaction per address
// cost? Targets (reported, never asserted): 50,000 allocations/s in memory, 5,000/s persisted.
//
//   node dist/bench/ipam.js [--quick]        alone, prints the tables and the targets
//   npm run bench -- ipam                    through bench/run.ts, once it lists `ipam` in FIGURES
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isMacnetError } from '../src/errors';
import { Ipam } from '../src/ipam';
import { MemoryStore } from '../src/store/memory';
import { SqliteStore } from '../src/store/sqlite';
import type { Store } from '../src/store/types';
import { type Figure, type FigureResult, type Series, summarize, textTable } from './stats';

const FULL = 100_000;
const QUICK = 10_000;
const V4_SUBNET = '198.18.0.0/16';
const V4_USABLE = 65_534;
const V6_SUBNET = '2001:db8:1::/64';
/** Untimed allocations on a separate subnet first, so the JIT has compiled the hot path before timing. */
const WARMUP = 5_000;
const TARGET_PER_S: Record<Method, number> = { memory: 50_000, sqlite: 5_000 };

type Method = 'memory' | 'sqlite';

interface Run {
  op: string;
  method: Method;
  samplesMs: number[];
  perSecond: number;
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
}

interface Measured {
  runs: Run[];
  mem: MemoryUse;
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
async function timedLoop(n: number, fn: (i: number) => Promise<unknown>): Promise<{ samplesMs: Float64Array; perSecond: number }> {
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

/** One family on one store: warm up, allocate `count`, check, release them all, check. */
async function measure({ method, family, count, tmp }: Job, log: (m: string) => void): Promise<Measured> {
  const store: Store = method === 'memory' ? new MemoryStore() : SqliteStore.open(path.join(tmp, `${method}-${family.slice(0, 4)}`, 'state.db'));
  try {
    const ipam = new Ipam(store);
    await ipam.load();
    const v6 = family.startsWith('IPv6');
    const warm = await ipam.requestPool({ addressSpace: 'LocalDefault', pool: v6 ? '2001:db8:ffff::/64' : '198.19.0.0/16', v6 });
    for (let i = 0; i < WARMUP; i++) await ipam.requestAddress({ poolId: warm.poolId });
    await ipam.releasePool(warm.poolId);

    const { poolId } = await ipam.requestPool({ addressSpace: 'LocalDefault', pool: v6 ? V6_SUBNET : V4_SUBNET, v6 });
    const options = { 'com.docker.network.endpoint.name': 'bench' };
    const addresses = new Array<string>(count);
    gc();
    const m0 = process.memoryUsage();
    const alloc = await timedLoop(count, async (i) => {
      addresses[i] = (await ipam.requestAddress({ poolId, options })).address;
    });
    gc();
    const m1 = process.memoryUsage();
    log(`ipam: ${method} ${family}: ${count} allocated, ${Math.round(alloc.perSecond)}/s`);

    if (new Set(addresses).size !== count) throw new Error(`ipam bench: ${method} ${family} handed out duplicate addresses`);
    if (!v6 && count === V4_USABLE) {
      // The whole /16 is allocated: one more must be refused, or the figure did not cover every address.
      const more = await ipam.requestAddress({ poolId }).then(() => undefined, (e: unknown) => e);
      if (!isMacnetError(more, 'IPAM_POOL_EXHAUSTED')) throw new Error(`ipam bench: a full ${V4_SUBNET} was not exhausted: ${String(more)}`);
    }
    const plain = addresses.map((a) => a.slice(0, a.indexOf('/')));
    const release = await timedLoop(count, (i) => ipam.releaseAddress(poolId, plain[i]!));
    log(`ipam: ${method} ${family}: ${count} released, ${Math.round(release.perSecond)}/s`);
    if ((await ipam.allocations(poolId)).length !== 0) throw new Error(`ipam bench: ${method} ${family}: addresses left after release`);
    await ipam.releasePool(poolId);

    return {
      runs: [
        { op: `allocate ${family}`, method, samplesMs: Array.from(alloc.samplesMs), perSecond: alloc.perSecond },
        { op: `release ${family}`, method, samplesMs: Array.from(release.samplesMs), perSecond: release.perSecond },
      ],
      mem: { family, method, count, rssMiB: mib(m1.rss - m0.rss), heapMiB: mib(m1.heapUsed - m0.heapUsed) },
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
      else reject(new Error(`bench ipam: ${job.method} ${job.family} child exited with ${signal ?? `code ${code}`}`));
    });
  });
}

export interface IpamFigureDetails {
  runs: Run[];
  memory: MemoryUse[];
  /** One line per method: allocations/s against its target, PASS or FAIL. */
  targets: string[];
}

/** Runs the figure and also returns what run.ts's table has no column for (ops/s, memory, targets). */
export async function ipamDetails(opts: { quick?: boolean; rounds?: number; log?: (m: string) => void } = {}): Promise<{ result: FigureResult; details: IpamFigureDetails }> {
  const n = opts.rounds ?? (opts.quick ? QUICK : FULL);
  const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const v4 = Math.min(n, V4_USABLE);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'macnet-bench-ipam-'));
  // An interrupted run (Ctrl-C exits without running the finally below) must not leave the databases behind.
  const removeTmp = () => fs.rmSync(tmp, { recursive: true, force: true });
  process.once('exit', removeTmp);
  const runs: Run[] = [];
  const memory: MemoryUse[] = [];
  try {
    for (const [family, count] of [['IPv4 /16', v4], ['IPv6 /64', n]] as const) {
      for (const method of ['memory', 'sqlite'] as const) {
        const r = await inChild({ method, family, count, tmp }, log);
        runs.push(...r.runs);
        memory.push(r.mem);
      }
    }
  } finally {
    removeTmp();
    process.off('exit', removeTmp);
  }

  const targets = (['memory', 'sqlite'] as const).map((m) => {
    const worst = Math.min(...runs.filter((r) => r.method === m && r.op.startsWith('allocate')).map((r) => r.perSecond));
    const ok = worst >= TARGET_PER_S[m];
    return `${ok ? 'PASS' : 'FAIL'}: ${m === 'memory' ? 'in memory' : 'persisted (SQLite)'}: slowest allocation run ` +
      `${Math.round(worst).toLocaleString('en')}/s, target at least ${TARGET_PER_S[m].toLocaleString('en')}/s`;
  });
  const rate = (r: Run) => `${r.op} / ${r.method}: ${Math.round(r.perSecond).toLocaleString('en')}/s`;
  const result: FigureResult = {
    what:
      `One Ipam per store and family. After ${WARMUP} untimed allocations on another subnet, ${v4 === V4_USABLE ? 'every' : v4} ` +
      `usable address${v4 === 1 ? '' : 'es'} of ${V4_SUBNET} (${V4_USABLE} in all) and ${n} addresses of ${V6_SUBNET} are requested ` +
      'one after another (RequestAddress with an endpoint name, as dockerd sends it, lowest free first) and then released in the same ' +
      'order. Each call is timed on its own (process.hrtime.bigint around the awaited call); ops/s is the count divided by the ' +
      'wall time of the whole loop.',
    methods: {
      memory: 'Ipam on MemoryStore (src/store/memory.ts, the unit-test fake: nothing persisted)',
      sqlite: 'Ipam on SqliteStore in a temporary directory (WAL, synchronous=NORMAL): one SQLite transaction per address',
    },
    baseline: 'memory',
    roundUnit: `one address allocated and released per family and store (IPv4 capped at the ${V4_USABLE} of the /16)`,
    rounds: n,
    series: runs.map((r): Series => ({ op: r.op, method: r.method, samplesMs: r.samplesMs })),
    notes: [
      ...targets,
      `Rates: ${runs.map(rate).join('; ')}.`,
      'Memory: rss and heap after allocating minus before, each after a full GC, in a fresh process per run. The heap ' +
        "delta includes MemoryStore's own entries (for memory) and the benchmark's own array of the returned address " +
        `strings (about 40 to 60 bytes per address); RSS also counts SQLite's page cache and heap pages V8 has not returned. ${memory.map((m) =>
        `${m.family} / ${m.method}: rss ${m.rssMiB.toFixed(1)} MiB, heap ${m.heapMiB.toFixed(1)} MiB`).join('; ')}.`,
      'SQLite commits do not fsync (WAL with synchronous=NORMAL): durable against a crash of the daemon, and against power ' +
        'loss up to the last checkpoint.',
    ],
  };
  return { result, details: { runs, memory, targets } };
}

/** The figure as the brief names it: full sizes, or 10,000 addresses per family with `quick`. */
export async function ipamFigure(opts: { quick?: boolean }): Promise<FigureResult> {
  return (await ipamDetails(opts)).result;
}

/** For bench/run.ts's FIGURES: rounds = addresses per family and store. */
export const ipam: Figure = {
  id: 'ipam',
  title: 'IPAM: allocate and release a whole IPv4 /16 and 100,000 IPv6 addresses, in memory and on SQLite',
  defaultRounds: FULL,
  quickRounds: QUICK,
  async run({ rounds, log }) {
    return (await ipamDetails({ rounds, log })).result;
  },
};

function print(details: IpamFigureDetails): void {
  const us = (ms: number) => (ms * 1000).toFixed(1);
  console.log(textTable(['op', 'method', 'n', 'ops/s', 'median µs', 'p90 µs', 'max µs'], details.runs.map((r) => {
    const s = summarize(r.samplesMs);
    return [r.op, r.method, String(s.n), String(Math.round(r.perSecond)), us(s.median), us(s.p90), us(s.max)];
  })));
  console.log();
  console.log(textTable(['family', 'method', 'addresses', 'rss delta MiB', 'heap delta MiB'], details.memory.map((m) =>
    [m.family, m.method, String(m.count), m.rssMiB.toFixed(1), m.heapMiB.toFixed(1)])));
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
  ipamDetails({ quick }).then(({ details }) => print(details), (e: unknown) => {
    console.error('bench ipam:', e);
    process.exitCode = 1;
  });
}
