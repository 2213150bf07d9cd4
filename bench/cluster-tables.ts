// The tables of figure cluster (bench/cluster.ts): each phase aggregated across the hosts (rates over the wall
// time from the first start to the last end, latencies, what the store did per operation), and etcd's members'
// disk and CPU per phase. cluster-report.ts makes the figure's targets, plot and text of them. No I/O here.
import type { Phase } from './cluster-host';
import type { DiskCounters, EtcdRun, Measured } from './cluster-report';
import { type ExtraTable, fmtMs, fmtRatio, percentile } from './stats';

export const HOSTS = 3;
export const IN_FLIGHT = 16;
/** The fixed-rate phases of bench/cluster.ts (across the cluster); the first is the target's. */
export const PACED = [1_000, 4_000];

export interface Agg {
  n: number;
  perSecond: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Store writes (etcd transactions), lost creates and reads per operation; write latency as the client saw it. */
  writes: number;
  lost: number;
  reads: number;
  writeP50: number;
  writeP99: number;
  /** Between the first host's start and the last's: how "at once" the hosts began. */
  skewMs: number;
}

/** One phase across hosts: the count over the wall time from the first host's start to the last host's end. */
export function aggregate(phases: readonly Phase[]): Agg {
  const samples = phases.flatMap((p) => p.samplesMs);
  const writeMs = phases.flatMap((p) => p.calls.txnMs);
  const start = Math.min(...phases.map((p) => p.startMs));
  const end = Math.max(...phases.map((p) => p.endMs));
  const sum = (f: (p: Phase) => number) => phases.reduce((a, p) => a + f(p), 0);
  const n = sum((p) => p.ops ?? p.samplesMs.length);
  return {
    n,
    perSecond: n / ((end - start) / 1000),
    p50: percentile(samples, 50),
    p90: percentile(samples, 90),
    p99: percentile(samples, 99),
    max: Math.max(...samples),
    writes: sum((p) => p.calls.txns) / n,
    lost: sum((p) => p.calls.lost) / n,
    reads: sum((p) => p.calls.reads) / n,
    writeP50: writeMs.length ? percentile(writeMs, 50) : 0,
    writeP99: writeMs.length ? percentile(writeMs, 99) : 0,
    skewMs: Math.max(...phases.map((p) => p.startMs)) - start,
  };
}

export const perS = (x: number) => Math.round(x).toLocaleString('en');
const per = (x: number) => x.toFixed(2);
export const batchOp = `txn of ${IN_FLIGHT} creates`;

/** What etcd's members and disk did in each phase of one run, and the CPU they and the hosts used. */
function diskRows(hosts: string, run: EtcdRun): string[][] {
  return run.disk.map(({ phase, members, cpu }, i) => {
    const sum = (f: (d: DiskCounters) => number) => members.reduce((x, d) => x + f(d), 0);
    const fsyncs = sum((d) => d.fsyncs) / members.length;
    const proposals = Math.max(...members.map((d) => d.proposals));
    return [
      hosts,
      phase === 'raw' || phase === 'batch'
        ? `store alone: ${phase === 'raw' ? 'create' : batchOp}, then delete`
        : phase,
      String(proposals),
      fsyncs.toFixed(0),
      per(proposals / fsyncs),
      fmtMs((sum((d) => d.fsyncS) / sum((d) => d.fsyncs)) * 1000),
      fmtMs((sum((d) => d.commitS) / sum((d) => d.commits)) * 1000),
      (cpu.etcd / cpu.wall).toFixed(2),
      // The hosts have exited when the last phase's CPU is read.
      i === run.disk.length - 1 ? '-' : (cpu.hosts / cpu.wall).toFixed(2),
    ];
  });
}

/** Every phase aggregated, and the tables of them. */
export function clusterTables(m: Measured) {
  const er = aggregate(m.etcd.reserve);
  const paced = m.etcd.paced.map(aggregate);
  if (!m.etcd.pacedRaw || paced.length !== PACED.length) throw new Error('bench cluster: fixed-rate phases missing');
  const rawAtTarget = aggregate(m.etcd.pacedRaw);
  const ef = aggregate(m.etcd.release);
  const ew = aggregate(m.etcd.raw);
  const eb = aggregate(m.etcd.batch);
  const ob = aggregate(m.etcd.one.batch);
  const sb = aggregate([m.sqlite.batch]);
  const [or, of, ow] = [m.etcd.one.reserve, m.etcd.one.release, m.etcd.one.raw].map(aggregate) as [Agg, Agg, Agg];
  const oneLabel = `etcd, 1 host × ${IN_FLIGHT} (alone)`;
  const sr = aggregate([m.sqlite.reserve]);
  const sf = aggregate([m.sqlite.release]);
  const sw = aggregate([m.sqlite.raw]);
  const etcdLabel = `etcd, ${HOSTS} hosts × ${IN_FLIGHT}`;
  const sqliteLabel = `SQLite, 1 host × ${HOSTS * IN_FLIGHT}`;
  const row = (op: string, store: string, a: Agg) => [
    op,
    store,
    String(a.n),
    perS(a.perSecond),
    fmtMs(a.p50),
    fmtMs(a.p99),
    fmtMs(a.max),
    per(a.writes),
    per(a.lost),
    per(a.reads),
    fmtMs(a.writeP50),
    fmtMs(a.writeP99),
  ];
  const hostRows = m.etcd.reserve.map((r, i) => {
    const f = m.etcd.release[i]!;
    const a = aggregate([r]);
    const b = aggregate([f]);
    return [
      `host-${i + 1}`,
      perS(a.perSecond),
      fmtMs(a.p50),
      fmtMs(a.p99),
      perS(b.perSecond),
      per(a.writes),
      per(a.lost),
      r.loop.p99.toFixed(2),
    ];
  });
  const tables: ExtraTable[] = [
    {
      title:
        'Reservations and releases per second across the cluster (count / wall time from the first start to the last end)',
      header: [
        'op',
        'store, hosts × in flight',
        'n',
        '/s',
        'p50 ms',
        'p99 ms',
        'max ms',
        'writes per op',
        'lost creates per op',
        'reads per op',
        'write p50 ms',
        'write p99 ms',
      ],
      rows: [
        row('reserve', etcdLabel, er),
        row('reserve', sqliteLabel, sr),
        row('release', etcdLabel, ef),
        row('release', sqliteLabel, sf),
        row('reserve', oneLabel, or),
        row('release', oneLabel, of),
        row('store alone: create', etcdLabel, ew),
        row('store alone: create', oneLabel, ow),
        row(batchOp, etcdLabel, eb),
        row(batchOp, oneLabel, ob),
        row(batchOp, sqliteLabel, sb),
        row('store alone: create', sqliteLabel, sw),
      ],
    },
    {
      title:
        'Reservations at a fixed rate across the cluster (an open loop: each host starts its share on a schedule, ' +
        'whatever the answers; a time is from when the call was due)',
      header: [
        'offered /s',
        'achieved /s',
        'n',
        'p50 ms',
        'p90 ms',
        'p99 ms',
        'max ms',
        'writes per op',
        'reads per op',
        'write p50 ms',
        'write p99 ms',
      ],
      rows: [
        ...paced.map((a, i) => [
          perS(PACED[i]!),
          perS(a.perSecond),
          String(a.n),
          fmtMs(a.p50),
          fmtMs(a.p90),
          fmtMs(a.p99),
          fmtMs(a.max),
          per(a.writes),
          per(a.reads),
          fmtMs(a.writeP50),
          fmtMs(a.writeP99),
        ]),
        [
          `store alone at ${perS(PACED[0]!)}: create, one per call`,
          perS(rawAtTarget.perSecond),
          String(rawAtTarget.n),
          fmtMs(rawAtTarget.p50),
          fmtMs(rawAtTarget.p90),
          fmtMs(rawAtTarget.p99),
          fmtMs(rawAtTarget.max),
          per(rawAtTarget.writes),
          per(rawAtTarget.reads),
          fmtMs(rawAtTarget.writeP50),
          fmtMs(rawAtTarget.writeP99),
        ],
        [
          `flat out (${IN_FLIGHT} in flight per host)`,
          perS(er.perSecond),
          String(er.n),
          fmtMs(er.p50),
          fmtMs(er.p90),
          fmtMs(er.p99),
          fmtMs(er.max),
          per(er.writes),
          per(er.reads),
          fmtMs(er.writeP50),
          fmtMs(er.writeP99),
        ],
      ],
    },
    {
      title: 'Per etcd host (its own count over its own wall time)',
      header: [
        'host',
        'reserve /s',
        'reserve p50 ms',
        'reserve p99 ms',
        'release /s',
        'writes per reservation',
        'lost creates per reservation',
        'event-loop p99 ms',
      ],
      rows: hostRows,
    },
    {
      title:
        "etcd's members during each phase (their /metrics; all three WALs on this machine's one disk) and the CPU " +
        'the members and the hosts used (cores: CPU seconds over the wall time of the phase)',
      header: [
        'hosts',
        'phase',
        'proposals committed',
        'WAL fsyncs per member',
        'proposals per fsync',
        'fsync mean ms',
        'backend commit mean ms',
        'etcd cores',
        'hosts cores',
      ],
      rows: [...diskRows(String(HOSTS), m.etcd), ...diskRows('1', m.etcd.one)],
    },
    {
      title: 'etcd (3 hosts) against SQLite (1 host), same total load, same run',
      header: ['op', 'etcd /s', 'SQLite /s', 'rate etcd / SQLite', 'p50 etcd / SQLite', 'p99 etcd / SQLite'],
      rows: [
        ['reserve', er, sr],
        ['release', ef, sf],
      ].map(([op, e, s]) => {
        const [a, b] = [e as Agg, s as Agg];
        return [
          op as string,
          perS(a.perSecond),
          perS(b.perSecond),
          fmtRatio(a.perSecond / b.perSecond),
          fmtRatio(a.p50 / b.p50),
          fmtRatio(a.p99 / b.p99),
        ];
      }),
    },
  ];
  return { tables, er, ef, sr, sf, paced, rawAtTarget, etcdLabel, sqliteLabel };
}
