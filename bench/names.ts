// Figure "names" (issue 20, docs/names.md): (a) how fast macnet's DNS server (src/dns/server.ts) answers from a
// realistic name table, beside dnsmasq answering the same names from a hosts file, both asked over UDP from
// another namespace; (b) with two lab hosts on etcd (as test/docker/names.test.ts builds them: etcd, a dockerd
// and a macnet daemon per host, one network with host access), the time from `docker run` on host 1 returning to
// the name resolving at host 2's macnet DNS, and from `docker rm -f` returning to it no longer resolving there.
import * as os from 'node:os';
import { TTL_S } from '../src/dns/answer';
import { clusterLab, type ClusterLab } from '../test/lab/cluster-lab';
import { createMacnetNetwork } from '../test/lab/networks';
import { type Lab, type LabHost } from '../test/lab/lab';
import { sh } from '../test/lab/sh';
import { balancedOrder, docker } from './docker-lab';
import {
  Asker,
  type EngineEventTime,
  POLL_EVERY_MS,
  type Query,
  followNetworkEvents,
  nameTable,
  startDnsmasq,
  startMacnetDns,
  stopAll,
  writeFile,
} from './names-lab';
import { nowMs } from './names-peer';
import {
  type Figure,
  type PlotPanel,
  type RichFigureResult,
  type Series,
  fmtMs,
  fmtRatio,
  median,
  pairedRatios,
  p99,
  percentile,
  ratio,
} from './stats';

const NAMES = 1000;
const TABLE_HOSTS = 3;
const QUERIES_PER_ROUND = 500;
const WARMUP_QUERIES = 500;
/** Part (a): the servers' namespace (both on one veth) and the client's. */
const SRV = { macnet: '198.18.16.1', dnsmasq: '198.18.16.2' } as const;
const CLI = '198.18.16.10';
type Server = keyof typeof SRV;
const SERVERS: readonly Server[] = ['macnet', 'dnsmasq'];
/** Part (b): the network and each host's host-access address (where its DNS listens), as in names.test.ts. */
const NET = 'lan';
const HOST_ADDR = ['198.18.15.241', '198.18.15.242'] as const;
const TARGET_MS = 1000;
const LIMIT_MS = 15_000;

const loadavg = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A small deterministic generator (the same queries every run). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** Part (a): per server, the times of QUERIES_PER_ROUND queries a round, the servers in balanced order. */
async function dnsAnswers(lab: Lab, rounds: number, log: (m: string) => void) {
  const table = nameTable(NAMES, TABLE_HOSTS);
  const tableFile = writeFile(lab.dir, 'names-table.json', JSON.stringify(table.records));
  const hostsFile = writeFile(lab.dir, 'names-hosts', table.hosts);
  const srv = await lab.newNetns('dns-srv');
  const cli = await lab.newNetns('dns-cli');
  await sh('ip', '-n', srv.name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', cli.name);
  for (const a of Object.values(SRV)) await sh('ip', '-n', srv.name, 'addr', 'add', `${a}/24`, 'dev', 'eth0');
  await sh('ip', '-n', cli.name, 'addr', 'add', `${CLI}/24`, 'dev', 'eth0');
  for (const ns of [srv, cli]) await sh('ip', '-n', ns.name, 'link', 'set', 'eth0', 'up');
  await startMacnetDns(srv.path, tableFile, SRV.macnet);
  startDnsmasq(srv.path, hostsFile, SRV.dnsmasq, TTL_S);
  const asker = await Asker.start(cli.path);
  const rnd = lcg(20);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const queries = (n: number): Query[] =>
    Array.from({ length: n }, () =>
      rnd() < 0.1
        ? [`${pick(table.addresses).split('.').reverse().join('.')}.in-addr.arpa`, 'PTR']
        : [pick(table.names), 'A'],
    );
  // dnsmasq is ready once it answers; both warm up (JIT, caches) before anything counts.
  for (let i = 0; (await asker.time(SRV.dnsmasq, queries(1))).failed > 0; i++) {
    if (i > 50) throw new Error('names: dnsmasq does not answer');
    await sleep(100);
  }
  for (const s of SERVERS) await asker.time(SRV[s], queries(WARMUP_QUERIES));
  const samples: Record<Server, number[]> = { macnet: [], dnsmasq: [] };
  /** Each round's median per server: the ratio of a round's two medians cancels drift between rounds. */
  const roundMedians: Record<Server, number[]> = { macnet: [], dnsmasq: [] };
  let failed = 0;
  for (let i = 0; i < rounds; i++) {
    const qs = queries(QUERIES_PER_ROUND);
    for (const s of balancedOrder(SERVERS, i)) {
      const r = await asker.time(SRV[s], qs);
      samples[s].push(...r.samplesMs);
      if (r.samplesMs.length) roundMedians[s].push(median(r.samplesMs));
      failed += r.failed;
    }
  }
  log(`names: DNS answers timed (${rounds} × ${QUERIES_PER_ROUND} queries per server), load ${loadavg()}`);
  return { samples, roundMedians, failed, table };
}

/** The two hosts of names.test.ts: etcd on the LAN's router, per host a daemon with DNS, one network. */
async function twoHosts(): Promise<ClusterLab> {
  const cl = await clusterLab({ hosts: 2, etcd: 'router', daemonArgs: () => ['--log-level', 'info'] });
  try {
    for (const [i, h] of cl.lab.hosts.entries())
      await createMacnetNetwork(h, NET, { opts: { host_access_address: HOST_ADDR[i]! } });
  } catch (e) {
    await cl.close();
    throw e;
  }
  return cl;
}

interface Across {
  resolve: number[];
  gone: number[];
  connect: number[];
  disconnect: number[];
  /** How long the docker commands themselves took (CLI start to exit). */
  runCli: number[];
  rmCli: number[];
}

/** Part (b): containers run and removed on host 1, their names polled at host 2's macnet DNS from host 2. */
async function acrossHosts(lab: Lab, rounds: number, log: (m: string) => void): Promise<Across> {
  const [h1, h2] = lab.hosts as [LabHost, LabHost];
  const events = followNetworkEvents(h1);
  const asker = await Asker.start(h2.ns.path);
  const dns = HOST_ADDR[1];
  const run = (name: string) => docker(h1, 'run', '-d', '--name', name, '--net', NET, 'busybox:local', 'sleep', '600');
  // The first container also waits for host 2's DNS to listen (it checks the host-access links every 2 s).
  const warm = asker.poll(dns, 'warm', 'present', undefined, 30_000);
  await run('warm');
  if ((await warm).atMs === null) throw new Error("names: host 2's DNS never answered for a container of host 1");
  await docker(h1, 'rm', '-f', 'warm');
  const out: Across = { resolve: [], gone: [], connect: [], disconnect: [], runCli: [], rmCli: [] };
  const wallOffset = Date.now() - nowMs();
  const eventAt = (e: EngineEventTime[], action: string, id: string) =>
    e.find((x) => x.action === action && x.container === id)?.atWallMs;
  for (let i = 0; i < rounds; i++) {
    const name = `nb${i}`;
    const present = asker.poll(dns, name, 'present', undefined, LIMIT_MS);
    await sleep(30); // the first query is out
    const t0 = nowMs();
    const id = await run(name);
    const tRun = nowMs();
    out.runCli.push(tRun - t0);
    const p = await present;
    if (p.atMs === null) throw new Error(`names: ${name} did not resolve on ${h2.name} within ${LIMIT_MS} ms`);
    out.resolve.push(p.atMs - tRun);
    const ip = await docker(h1, 'inspect', '-f', `{{(index .NetworkSettings.Networks "${NET}").IPAddress}}`, name);
    const absent = asker.poll(dns, name, 'absent', ip, LIMIT_MS);
    await sleep(30);
    const t1 = nowMs();
    await docker(h1, 'rm', '-f', name);
    const tRm = nowMs();
    out.rmCli.push(tRm - t1);
    const g = await absent;
    if (g.atMs === null) throw new Error(`names: ${name} still resolved on ${h2.name} ${LIMIT_MS} ms after rm`);
    out.gone.push(g.atMs - tRm);
    await sleep(200); // the disconnect event may come after `docker rm -f` returned
    const c = eventAt(events, 'connect', id);
    const d = eventAt(events, 'disconnect', id);
    if (c !== undefined) out.connect.push(c - (tRun + wallOffset));
    if (d !== undefined) out.disconnect.push(d - (tRm + wallOffset));
  }
  log(`names: ${rounds} containers run and removed across hosts, load ${loadavg()}`);
  return out;
}

const stat = (xs: number[]) =>
  xs.length ? [String(xs.length), fmtMs(median(xs)), fmtMs(p99(xs)), fmtMs(Math.max(...xs))] : ['0', '-', '-', '-'];

async function namesFigure(rounds: number, log: (m: string) => void): Promise<RichFigureResult> {
  const loadStart = loadavg();
  const cl = await twoHosts();
  const lab = cl.lab;
  let a: Awaited<ReturnType<typeof dnsAnswers>>;
  let b: Across;
  let loadA: string;
  try {
    log(`names: lab up (${lab.engine.label}), load ${loadavg()}`);
    a = await dnsAnswers(lab, rounds, log);
    loadA = loadavg();
    b = await acrossHosts(lab, rounds, log);
  } finally {
    await stopAll();
    await cl.close();
  }
  const loadEnd = loadavg();
  const DNS_OP = `DNS answer (UDP, ${NAMES.toLocaleString('en')} names)`;
  const series: Series[] = [
    ...SERVERS.map((s) => ({ op: DNS_OP, method: s, samplesMs: a.samples[s] })),
    { op: 'docker run returned → resolves on the other host', method: 'macnet', samplesMs: b.resolve },
    { op: 'docker rm -f returned → gone on the other host', method: 'macnet', samplesMs: b.gone },
  ];
  const m = a.samples.macnet;
  const d = a.samples.dnsmasq;
  const resolveP99 = p99(b.resolve);
  const rr = pairedRatios(a.roundMedians.macnet, a.roundMedians.dnsmasq);
  const panels: PlotPanel[] = [
    {
      title: `DNS answer over UDP, ${NAMES} names over ${TABLE_HOSTS} hosts (ms)`,
      unit: 'ms',
      better: 'lower',
      bars: SERVERS.flatMap((s) => [
        { label: `${s} p50`, value: median(a.samples[s]) },
        { label: `${s} p99`, value: p99(a.samples[s]) },
      ]),
      lines: [],
    },
    {
      title: "macnet's DNS answer time / dnsmasq's (median of the per-round ratios of medians, whisker: quartiles)",
      unit: '×',
      better: 'lower',
      bars: [{ label: 'macnet / dnsmasq', value: median(rr), range: [percentile(rr, 25), percentile(rr, 75)] }],
      lines: [{ value: 1, label: 'parity', kind: 'reference' }],
    },
    {
      title: 'across two hosts on etcd (ms after the docker command returned)',
      unit: 'ms',
      better: 'lower',
      bars: [
        { label: 'run → resolves p50', value: median(b.resolve), pass: median(b.resolve) < TARGET_MS },
        { label: 'run → resolves p99', value: resolveP99, pass: resolveP99 < TARGET_MS },
        {
          label: 'rm -f → gone p50',
          value: Math.max(0, median(b.gone)),
          text: `${fmtMs(median(b.gone))} ms (before rm returned if negative)`,
        },
        { label: 'rm -f → gone p99', value: Math.max(0, p99(b.gone)), text: `${fmtMs(p99(b.gone))} ms` },
      ],
      lines: [{ value: TARGET_MS, label: 'target: resolves within 1 s', kind: 'target' }],
    },
  ];
  return {
    what:
      `(a) ${NAMES.toLocaleString('en')} containers over ${TABLE_HOSTS} hosts (every fourth with an alias: ` +
      `${a.table.names.length.toLocaleString('en')} names, bare and <name>.<host>) served by macnet's DNS server ` +
      '(src/dns/server.ts and its Names table, the code the daemon runs, in a process of its own) and by dnsmasq ' +
      'from a hosts file of the same names, both in one namespace on one veth; a client in another namespace sends ' +
      `one query at a time (90 % A of a random name, 10 % PTR of a random address), ${QUERIES_PER_ROUND} per ` +
      `server per round, the servers in balanced order, after ${WARMUP_QUERIES} warm-up queries each. (b) two lab ` +
      'hosts on one etcd, each with dockerd and a macnet daemon (DNS on its host-access address), as ' +
      'test/docker/names.test.ts builds them; per round a container is run and then removed (`docker rm -f`) on ' +
      `host 1 while a client in host 2's network namespace (the host side, not a container: Docker's resolver ` +
      `is not in the path) asks host 2's macnet DNS (${HOST_ADDR[1]}) for its name every ${POLL_EVERY_MS} ms.`,
    methods: {
      macnet: 'macnet DNS (src/dns/server.ts), Node, answering from the Names table in memory',
      dnsmasq: `dnsmasq --no-resolv --no-hosts --addn-hosts=FILE --local-ttl=${TTL_S} (C, answering the hosts file from memory)`,
    },
    baseline: 'dnsmasq',
    roundUnit: `${QUERIES_PER_ROUND} queries per DNS server, and one container run and removed across hosts`,
    rounds,
    series,
    targets: [
      {
        what: '`docker run` returned → the name resolves on the other host (p99)',
        pass: resolveP99 < TARGET_MS,
        detail: `${fmtMs(resolveP99)} ms (p50 ${fmtMs(median(b.resolve))}, max ${fmtMs(Math.max(...b.resolve))}), target under ${TARGET_MS} ms`,
      },
    ],
    tables: [
      {
        title: 'p50 and p99 (nearest rank)',
        header: ['op', 'method', 'n', 'p50 ms', 'p99 ms', 'max ms'],
        rows: series.map((s) => [s.op, s.method, ...stat(s.samplesMs)]),
      },
      {
        title:
          "Where the time goes: the docker commands on host 1, and its dockerd's network events (their timeNano) " +
          'after the command returned',
        header: ['event', 'n', 'p50 ms', 'p99 ms', 'max ms'],
        rows: [
          ['`docker run -d` itself (the CLI, from its start to its exit)', ...stat(b.runCli)],
          ['`docker rm -f` itself', ...stat(b.rmCli)],
          ['connect, after `docker run -d` returned', ...stat(b.connect)],
          ['disconnect, after `docker rm -f` returned', ...stat(b.disconnect)],
        ],
      },
    ],
    plot: panels,
    notes: [
      `DNS answer: the ratio of macnet's median to dnsmasq's within each round is ${fmtRatio(median(rr))} ` +
        `(quartiles ${fmtRatio(percentile(rr, 25))} to ${fmtRatio(percentile(rr, 75))}, ${rr.length} rounds); ` +
        `over all samples macnet's p50 is ${ratio(median(m), median(d)).toFixed(2)}× dnsmasq's and its p99 ` +
        `${ratio(p99(m), p99(d)).toFixed(2)}×; p90 of macnet ${fmtMs(percentile(m, 90))} ms. ${a.failed} queries ` +
        'got no answer within 1 s or an empty one (not counted).',
      'Why dnsmasq is the yardstick: it answers a hosts file from memory, the same work as macnet (a table lookup, ' +
        "no forwarding), and is what people run for local names. Docker's embedded resolver (127.0.0.11) cannot " +
        'answer 1,000 names without 1,000 containers on one host, and answers from inside dockerd over an iptables ' +
        'redirect, so it would time a different path.',
      `Load average (1/5/15 min): ${loadStart} at the start, ${loadA!} after part (a), ${loadEnd} at the end, on ` +
        `${os.cpus().length} cores; other work on the machine shows in the p99s.`,
      '"resolves": when host 2\'s client received the first reply holding an address for the name. "gone": when ' +
        "the first query was sent whose reply no longer held the container's address, every earlier query " +
        'answered; negative means the record had gone before `docker rm -f` returned. A name that is not ours is ' +
        "forwarded to the host's resolvers, which the lab cannot reach: such a query is answered SERVFAIL after " +
        '2 s, which is why "gone" counts from the sending, not the reply.',
      `TTL of macnet's answers: ${TTL_S} s. Nothing caches on the path measured in (b); a container asking through ` +
        "Docker's resolver and a caching client can hold an answer up to the TTL longer.",
    ],
  };
}

export const names: Figure = {
  id: 'names',
  title: "names across hosts: macnet's DNS vs dnsmasq, and docker run / rm to resolving on another host",
  defaultRounds: 30,
  quickRounds: 3,
  run: ({ rounds, log }) => namesFigure(rounds, log),
};
