// Figure "cluster" (issue 19): three hosts reserving addresses at once on one network of the cluster store, a
// three-member etcd, beside the same load on one host's SQLite. The questions: how many durable reservations per
// second does the cluster make, how long does one take (p50/p99, with requests queueing as dockerd starting many
// containers sends them), and what does sharing one store cost against a host's own file? Targets (reported,
// never asserted): at least 1,000 reservations/s across the cluster, p99 under 20 ms.
//
// Where it runs: the members in a network namespace of the bench's own, each on a /32 of 198.18.0.0/15 on that
// namespace's lo (no veth, no dummy, no link of the root namespace touched); the hosts are child processes forked
// into that namespace through nsenter, each with its own EtcdStore (one gRPC client) and Ipam, as three daemons.
//
//   node dist/bench/cluster.js [--quick]     alone, prints the tables and the targets
//   npm run bench -- cluster                 through bench/run.ts
import { type ChildProcess, fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EtcdCluster } from '../test/lab/etcd';
import { TestNetns } from '../test/lab/netns';
import { run, sh } from '../test/lab/sh';
import type { HostJob, Phase, ToHost, ToParent } from './cluster-host';
import { type DiskCounters, type EtcdRun, delta, resultOf, type Measured } from './cluster-report';
import { type Figure, type RichFigureResult, targetLine, textTable } from './stats';

const FULL = 3_000;
const QUICK = 500;
/** Requests in flight per host: dockerd starting many containers at once (figure docker-run sends about as many). */
export const IN_FLIGHT = 16;
export const HOSTS = 3;
/** The members' addresses, on the lab namespace's lo, and the network all hosts share (room for 3 × 3,000). */
const MEMBER_IPS = ['198.18.21.1', '198.18.21.2', '198.18.21.3'];
export const SUBNET = '198.19.0.0/16';
const SUBNET_KEY = '198.19.0.0_16';
const PREFIX = 'bench/';
const NSENTER = '/usr/bin/nsenter';

/** A host's child process, its messages queued until the parent asks for them. */
class HostProc {
  private readonly queue: ToParent[] = [];
  private waiter: (() => void) | undefined;
  private exited: string | undefined;
  readonly child: ChildProcess;

  constructor(
    readonly name: string,
    job: HostJob,
    netns: string | undefined,
    private readonly log: (m: string) => void,
  ) {
    const module = path.join(__dirname, 'cluster-host.js');
    // Through nsenter into the members' namespace: fork() execs execPath with execArgv before the module, and
    // nsenter execs node in turn, which keeps the IPC channel's descriptor.
    this.child = fork(module, [JSON.stringify(job)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      ...(netns && { execPath: NSENTER, execArgv: [`--net=${netns}`, process.execPath] }),
    });
    this.child.on('message', (m: ToParent) => {
      if ('progress' in m) this.log(m.progress);
      else this.push(m);
    });
    this.child.once('exit', (code, signal) => {
      this.exited = `${this.name} exited with ${signal ?? `code ${code}`}`;
      this.waiter?.();
    });
  }

  private push(m: ToParent): void {
    this.queue.push(m);
    this.waiter?.();
  }

  /** The next message, which must be `key`; a host's error or exit fails it. */
  async next<K extends 'ready' | (typeof REPLY)[PhaseName]>(key: K): Promise<Extract<ToParent, Record<K, unknown>>> {
    for (;;) {
      const m = this.queue.shift();
      if (m) {
        if ('error' in m) throw new Error(`bench cluster: ${this.name}: ${m.error}`);
        if (key in m) return m as Extract<ToParent, Record<K, unknown>>;
        throw new Error(`bench cluster: ${this.name}: expected ${key}, got ${JSON.stringify(m).slice(0, 200)}`);
      }
      if (this.exited) throw new Error(`bench cluster: ${this.exited} before ${key}`);
      await new Promise<void>((r) => (this.waiter = r));
      this.waiter = undefined;
    }
  }

  go(kind: ToHost['go']): void {
    this.child.send({ go: kind } satisfies ToHost);
  }

  async exit(): Promise<void> {
    const c = this.child;
    if (c.exitCode !== null || c.signalCode !== null) return;
    await new Promise((r) => c.once('exit', r));
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

const PHASES = ['raw', 'batch', 'reserve', 'release'] as const;
type PhaseName = (typeof PHASES)[number] | 'pacedRaw' | 'paced';
const REPLY = {
  raw: 'raw',
  batch: 'batched',
  reserve: 'reserved',
  release: 'released',
  pacedRaw: 'pacedRaw',
  paced: 'paced',
} as const;
export type Phases = Record<(typeof PHASES)[number], Phase[]> & { pacedRaw?: Phase[]; paced: Phase[][] };
/**
 * The open-loop phases' rates across the cluster (split evenly between the hosts): the target's rate, and four
 * times it (about half of what the hosts do flat out here).
 */
export const PACED_PER_SECOND = [1_000, 4_000];

interface Hooks {
  before?: (phase: PhaseName) => Promise<void>;
  /** After every host finished the phase: a check of the store, a reading of etcd's metrics. */
  after?: (phase: PhaseName, results: Phase[]) => Promise<void>;
}

/**
 * Runs the hosts in step: all ready, then each phase begun by all hosts at once, the hooks around it; then `paced`
 * open-loop phases (the jobs' pacedPerSecond). Any host failing fails the run, and every host is killed.
 */
async function runHosts(jobs: HostJob[], netns: string | undefined, log: (m: string) => void, hooks: Hooks, paced = 0) {
  const hosts = jobs.map((j, i) => new HostProc(j.host ?? `host ${i + 1}`, j, netns, log));
  const killAll = () => hosts.forEach((h) => h.kill());
  process.once('exit', killAll);
  try {
    await Promise.all(hosts.map((h) => h.next('ready')));
    const out: Partial<Phases> = { paced: [] };
    const open: PhaseName[] = paced ? ['pacedRaw', ...Array.from({ length: paced }, () => 'paced' as const)] : [];
    const steps: PhaseName[] = [...PHASES, ...open];
    for (const [i, phase] of steps.entries()) {
      await hooks.before?.(phase);
      hosts.forEach((h) => h.go(phase));
      const key = REPLY[phase];
      const results = (await Promise.all(hosts.map((h) => h.next(key)))).map(
        (m) => (m as Record<typeof key, Phase>)[key],
      );
      if (i === steps.length - 1) await Promise.all(hosts.map((h) => h.exit()));
      await hooks.after?.(phase, results);
      if (phase === 'paced') out.paced!.push(results);
      else if (phase === 'pacedRaw') out.pacedRaw = results;
      else out[phase] = results;
    }
    return out as Phases;
  } finally {
    killAll();
    process.off('exit', killAll);
  }
}

/**
 * The correctness check of the etcd run (not a timing assert): the address records under the shared subnet are
 * exactly the addresses the hosts were handed, all distinct; after the releases, none is left.
 */
async function checkEtcd(etcd: EtcdCluster, prefix: string, reserved: Phase[] | undefined): Promise<void> {
  const r = await etcd.etcdctl([
    'get',
    '--prefix',
    '--keys-only',
    `${prefix}ipam/addresses/LocalDefault/${SUBNET_KEY}/`,
  ]);
  if (r.code !== 0) throw new Error(`bench cluster: etcdctl get exited ${r.code}: ${r.stderr.trim()}`);
  const keys = r.stdout.split('\n').filter(Boolean);
  const inStore = new Set(keys.map((k) => k.slice(k.lastIndexOf('/') + 1)));
  const handed = (reserved ?? []).flatMap((p) => p.addresses);
  const distinct = new Set(handed);
  if (distinct.size !== handed.length)
    throw new Error(`bench cluster: ${handed.length - distinct.size} addresses were handed out twice`);
  if (keys.length !== handed.length || inStore.size !== keys.length || handed.some((a) => !inStore.has(a)))
    throw new Error(
      `bench cluster: etcd holds ${keys.length} address records (${inStore.size} distinct) for ${handed.length} ` +
        'addresses handed out; they should be the same',
    );
}

/** etcd's own counters of one member (its /metrics): what its disk did. */
async function diskOf(netns: string, endpoint: string): Promise<DiskCounters> {
  const r = await run('nsenter', [`--net=${netns}`, 'curl', '-sf', '--max-time', '5', `${endpoint}/metrics`]);
  const v = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(r.stdout)?.[1] ?? NaN);
  return {
    fsyncs: v('etcd_disk_wal_fsync_duration_seconds_count'),
    fsyncS: v('etcd_disk_wal_fsync_duration_seconds_sum'),
    commits: v('etcd_disk_backend_commit_duration_seconds_count'),
    commitS: v('etcd_disk_backend_commit_duration_seconds_sum'),
    proposals: v('etcd_server_proposals_committed_total'),
  };
}

/** CPU seconds used so far by the etcd members and by the hosts' node processes in namespace `name`. */
async function cpuOf(name: string): Promise<{ etcd: number; hosts: number }> {
  const pids = (await run('ip', ['netns', 'pids', name])).stdout.split(/\s+/).filter(Boolean);
  const out = { etcd: 0, hosts: 0 };
  for (const pid of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime and stime (fields 14 and 15 of the whole line), in clock ticks of 1/100 s.
      const s = (Number(f[11]) + Number(f[12])) / 100;
      if (comm === 'etcd') out.etcd += s;
      else if (comm === 'node') out.hosts += s;
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

/** `hosts` hosts on `cluster` under `prefix`, with the disk and CPU readings around each phase. */
async function etcdHosts(
  cluster: EtcdCluster,
  netns: string,
  netnsName: string,
  hosts: number,
  prefix: string,
  count: number,
  log: (m: string) => void,
): Promise<EtcdRun> {
  const jobs = Array.from({ length: hosts }, (_, i): HostJob => ({
    store: { kind: 'etcd', endpoints: cluster.endpoints, prefix },
    host: `host-${i + 1}`,
    subnet: SUBNET,
    warmSubnet: `198.18.${30 + i}.0/24`,
    count,
    inFlight: IN_FLIGHT,
    // Only the three hosts together: the target is a cluster's.
    ...(hosts === HOSTS && {
      pacedPerSecond: PACED_PER_SECOND.map((r) => r / HOSTS),
      pacedRawPerSecond: PACED_PER_SECOND[0]! / HOSTS,
    }),
  }));
  const paced = hosts === HOSTS ? PACED_PER_SECOND.length : 0;
  const pacedSoFar: Phase[] = [];
  const disk: EtcdRun['disk'] = [];
  let before: { disk: DiskCounters[]; cpu: { etcd: number; hosts: number }; t: number } | undefined;
  const read = async () => ({
    disk: await Promise.all(cluster.endpoints.map((e) => diskOf(netns, e))),
    cpu: await cpuOf(netnsName),
    t: performance.now(),
  });
  const phases = await runHosts(
    jobs,
    netns,
    log,
    {
      before: async () => {
        before = await read();
      },
      after: async (phase, results) => {
        const after = await read();
        const b = before!;
        // The hosts' CPU of the release phase is partly lost: they have exited when it is read.
        const cpu = { etcd: after.cpu.etcd - b.cpu.etcd, hosts: after.cpu.hosts - b.cpu.hosts, wall: 0 };
        cpu.wall = (after.t - b.t) / 1000;
        // A paced phase is named by its rate across the cluster.
        const label =
          phase === 'paced'
            ? `reserve at ${PACED_PER_SECOND[pacedSoFar.length / hosts]}/s`
            : phase === 'pacedRaw'
              ? `store alone: create at ${PACED_PER_SECOND[0]}/s`
              : phase;
        disk.push({ phase: label, members: after.disk.map((a, i) => delta(a, b.disk[i]!)), cpu });
        if (phase === 'reserve') await checkEtcd(cluster, prefix, results);
        if (phase === 'release') await checkEtcd(cluster, prefix, []);
        // The paced phases' addresses stay: the records are all of them so far.
        if (phase === 'paced') {
          pacedSoFar.push(...results);
          await checkEtcd(cluster, prefix, pacedSoFar);
        }
        log(`cluster: etcd, ${hosts} host${hosts > 1 ? 's' : ''}: ${phase} done`);
      },
    },
    paced,
  );
  return { ...phases, disk };
}

async function etcdRun(tmp: string, count: number, log: (m: string) => void): Promise<Measured['etcd']> {
  const ns = await TestNetns.create('cluster');
  let etcd: EtcdCluster | undefined;
  try {
    for (const ip of MEMBER_IPS) await sh('ip', '-n', ns.name, 'addr', 'add', `${ip}/32`, 'dev', 'lo');
    const members = MEMBER_IPS.map((ip) => ({ netns: ns.path, ip }));
    etcd = await EtcdCluster.start({ members: 3, placement: { members, ctlNetns: ns.path }, parentDir: tmp });
    log(`cluster: etcd ${etcd.endpoints.join(' ')} healthy; ${HOSTS} hosts reserve ${count} each`);
    const three = await etcdHosts(etcd, ns.path, ns.name, HOSTS, PREFIX, count, log);
    // The same cluster with one host alone (a prefix of its own, so an empty store): what the sharing costs.
    log(`cluster: etcd, one host alone reserves ${count}`);
    const one = await etcdHosts(etcd, ns.path, ns.name, 1, `${PREFIX}one/`, count, log);
    return { ...three, one };
  } finally {
    await etcd?.close();
    await ns.delete();
  }
}

async function sqliteRun(tmp: string, count: number, log: (m: string) => void): Promise<Measured['sqlite']> {
  log(`cluster: SQLite, one host reserves ${count} with ${HOSTS * IN_FLIGHT} in flight`);
  const job: HostJob = {
    store: { kind: 'sqlite', file: path.join(tmp, 'sqlite', 'state.db') },
    subnet: SUBNET,
    warmSubnet: '198.18.30.0/24',
    count,
    inFlight: HOSTS * IN_FLIGHT,
  };
  const r = await runHosts([job], undefined, log, {
    after: async (phase, [p]) => {
      if (phase === 'reserve' && new Set(p!.addresses).size !== p!.addresses.length)
        throw new Error('bench cluster: SQLite handed out an address twice');
    },
  });
  return { raw: r.raw[0]!, batch: r.batch[0]!, reserve: r.reserve[0]!, release: r.release[0]! };
}

/** Runs the figure and also returns what run.ts's table has no column for. */
export async function clusterDetails(
  opts: { quick?: boolean; rounds?: number; log?: (m: string) => void } = {},
): Promise<{ result: RichFigureResult }> {
  const count = opts.rounds ?? (opts.quick ? QUICK : FULL);
  const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'macnet-bench-cluster-'));
  // An interrupted run (Ctrl-C exits without running the finally below) must not leave the data dirs behind; the
  // members are killed and the namespace deleted by test/lab's own exit handlers (etcd.ts, netns.ts).
  const removeTmp = () => fs.rmSync(tmp, { recursive: true, force: true });
  process.once('exit', removeTmp);
  try {
    const etcd = await etcdRun(tmp, count, log);
    const sqlite = await sqliteRun(tmp, HOSTS * count, log);
    return resultOf({ etcd, sqlite }, count);
  } finally {
    removeTmp();
    process.off('exit', removeTmp);
  }
}

/** For bench/run.ts's FIGURES: rounds = reservations per host. */
export const cluster: Figure = {
  id: 'cluster',
  title: `Cluster store: ${HOSTS} hosts reserving at once on a three-member etcd, beside one host's SQLite`,
  defaultRounds: FULL,
  quickRounds: QUICK,
  async run({ rounds, log }) {
    return (await clusterDetails({ rounds, log })).result;
  },
};

if (require.main === module) {
  const quick = process.argv.includes('--quick') || /^(1|true|yes)$/i.test(process.env['BENCH_QUICK'] ?? '');
  clusterDetails({ quick }).then(
    ({ result }) => {
      for (const t of result.tables ?? []) console.log(`${t.title}:\n\n${textTable(t.header, t.rows)}\n`);
      for (const n of result.notes) console.log(n);
      for (const s of result.skipped ?? []) console.log(`SKIPPED: ${s}`);
      for (const t of result.targets ?? []) console.log(targetLine(t));
    },
    (e: unknown) => {
      console.error('bench cluster:', e);
      process.exitCode = 1;
    },
  );
}
