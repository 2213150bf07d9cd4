// Figure "lan": what the LAN-aware IPAM (issue 5) costs when it cannot hide its work. Part 1, cold probe: a
// RequestAddress that finds the pool's warm set empty waits one probe window (300 ms by default); measured
// through the real daemon with raw plugin calls, against a warm allocation, a daemon with --no-probe, and a LAN
// device answering the first candidates. Part 2, DHCP lease time: acquire() from a probe-like macvlan against a
// real dnsmasq, with its default ping check and with --no-ping. (Probing on vs off in `docker run` is the
// docker-run figure.)
import { randomBytes } from 'node:crypto';
import { ETH_P_IP, Kernel, type PacketSocket } from '../src/kernel';
import { acquire, release } from '../src/dhcp';
import { Dnsmasq, dnsmasqMissing } from '../test/dhcp/dnsmasq';
import { Daemon } from '../test/lab/daemon';
import { Lab } from '../test/lab/lab';
import type { TestNetns } from '../test/lab/netns';
import { balancedOrder, elapsedMs } from './docker-lab';
import {
  type ExtraTable,
  type Figure,
  type PlotPanel,
  type RichFigureResult,
  type Series,
  type Target,
  fmtMs,
  median,
  p90,
  p99,
  percentile,
  ratio,
  summarize,
} from './stats';

// ---- Part 1: cold probe ----

/** The daemon's default probe window (`macnet daemon --help`); the probing daemon runs with the default. */
const WINDOW_MS = 300;
/** The issue's bound for a cold allocation, with 100 ms for the HTTP call, the SQLite commit and scheduling. */
const COLD_TARGET_MS = WINDOW_MS + 100;
/** Candidates the allocator probes in one window (src/ipam/allocator.ts BATCH). */
const BATCH = 4;
/**
 * Between the cold allocation and the next one: the background refill that the cold allocation starts takes one
 * window; 500 ms leaves it time to finish, as a container started a moment after another would find it.
 */
const WARM_GAP_MS = 500;
/** Untimed rounds first: JIT, the daemons' first SQLite statements, the probe link's sockets. */
const WARMUP_ROUNDS = 1;

type ProbeMethod = 'probe' | 'probe, LAN device on 2 of 4' | 'probe, LAN device on 4 of 4' | 'no-probe';
const COLD_METHODS: readonly ProbeMethod[] = [
  'probe',
  'probe, LAN device on 2 of 4',
  'probe, LAN device on 4 of 4',
  'no-probe',
];
/** How many of the first candidates (.2, .3, ...) the LAN device holds for each method. */
const DEVICE_HOLDS: Record<ProbeMethod, number> = {
  probe: 0,
  'probe, LAN device on 2 of 4': 2,
  'probe, LAN device on 4 of 4': BATCH,
  'no-probe': 0,
};
const OP_COLD = 'RequestAddress, warm set empty (first on a new network)';
const OP_NEXT = `next RequestAddress, ${WARM_GAP_MS} ms later`;

/**
 * A fresh /27 per network, never reused within a run: 198.18.64.0/18 holds 512 of them, disjoint from the lab
 * LAN's 198.18.15.0/24 (the anchor networks) and the daemons' default pools (198.18.128.0/17). ARP does not care
 * that the hosts' own addresses are in another subnet: a probe is a broadcast on the LAN segment.
 */
const SUBNETS = 512;
function subnetAt(k: number): { subnet: string; at: (host: number) => string } {
  if (k >= SUBNETS) throw new RangeError(`lan: more than ${SUBNETS} networks in one run`);
  const third = 64 + Math.floor(k / 8);
  const base = (k % 8) * 32;
  return { subnet: `198.18.${third}.${base}/27`, at: (host) => `198.18.${third}.${base + host}` };
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

async function call(d: Daemon, method: string, body: unknown): Promise<Record<string, unknown>> {
  const r = await d.call(method, body);
  if (r.status !== 200 || r.body.Err) throw new Error(`lan: ${method}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** The calls dockerd makes for `docker network create -d macnet --ipam-driver macnet --subnet S -o parent=eth0`. */
async function createNetwork(
  d: Daemon,
  space: string,
  subnet: string,
  gateway: string,
): Promise<{ poolId: string; nid: string }> {
  const poolId = (
    await call(d, 'IpamDriver.RequestPool', { AddressSpace: space, Pool: subnet, SubPool: '', Options: {}, V6: false })
  ).PoolID as string;
  await call(d, 'IpamDriver.RequestAddress', {
    PoolID: poolId,
    Address: gateway,
    Options: { RequestAddressType: 'com.docker.network.gateway' },
  });
  const nid = hex(32);
  await call(d, 'NetworkDriver.CreateNetwork', {
    NetworkID: nid,
    Options: { 'com.docker.network.generic': { parent: 'eth0' }, 'com.docker.network.enable_ipv6': false },
    IPv4Data: [{ AddressSpace: space, Pool: subnet, Gateway: `${gateway}/${subnet.split('/')[1]}` }],
    IPv6Data: [],
  });
  return { poolId, nid };
}

/** And `docker network rm`: addresses back, network, gateway, pool. */
async function deleteNetwork(
  d: Daemon,
  net: { poolId: string; nid: string },
  addresses: string[],
  gateway: string,
): Promise<void> {
  for (const a of addresses) await call(d, 'IpamDriver.ReleaseAddress', { PoolID: net.poolId, Address: a });
  await call(d, 'NetworkDriver.DeleteNetwork', { NetworkID: net.nid });
  await call(d, 'IpamDriver.ReleaseAddress', { PoolID: net.poolId, Address: gateway });
  await call(d, 'IpamDriver.ReleasePool', { PoolID: net.poolId });
}

/** A dynamic RequestAddress (no --ip) as dockerd sends it for a container, timed from the client. */
async function requestAddress(d: Daemon, poolId: string): Promise<{ ms: number; address: string }> {
  let address = '';
  const ms = await elapsedMs(async () => {
    address = (
      (await call(d, 'IpamDriver.RequestAddress', { PoolID: poolId, Address: '', Options: {} })).Address as string
    ).split('/')[0]!;
  });
  return { ms, address };
}

interface ColdResult {
  samples: Record<string, Record<ProbeMethod, number[]>>;
  /** Warm requests that took at least one window: the warm set was not ready yet. */
  slowWarm: number;
}

async function measureCold(rounds: number, log: (m: string) => void): Promise<ColdResult> {
  const lab = await Lab.create({ hosts: 2 });
  const daemons: Daemon[] = [];
  let device: TestNetns | undefined;
  let deviceKernel: Kernel | undefined;
  try {
    // h1: the daemon as users run it (probing on, default window, log level info); h2: the same with --no-probe.
    // Two hosts, so that each daemon has its own parent and probe link, as on two machines.
    const probing = await Daemon.start({ netns: lab.hosts[0]!.ns.path, extraArgs: ['--log-level', 'info'] });
    daemons.push(probing);
    const plain = await Daemon.start({
      netns: lab.hosts[1]!.ns.path,
      extraArgs: ['--log-level', 'info', '--no-probe'],
    });
    daemons.push(plain);
    const daemonOf = (m: ProbeMethod) => (m === 'no-probe' ? plain : probing);

    // The LAN device: a namespace with a veth port on the LAN bridge (as test/probe/lan.test.ts makes one). Its
    // addresses are set per sample; Linux answers ARP probes for any address it holds.
    device = await lab.newNetns('device');
    await lab.routerExec('ip', 'link', 'add', 'dev0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', device.name);
    await lab.routerExec('ip', 'link', 'set', 'dev0', 'master', 'sw0', 'up');
    deviceKernel = Kernel.open(device.path);
    await deviceKernel.links.setUp('eth0');

    // Per daemon, an anchor network on the LAN's own subnet for the whole run: the probe link lives as long as
    // its parent has a network, so the per-sample networks measure a cold warm set, not the probe link's creation
    // (that is a one-off per parent; one untimed allocation here creates it).
    const anchors: { d: Daemon; space: string; net: { poolId: string; nid: string }; addresses: string[] }[] = [];
    for (const d of daemons) {
      await call(d, 'Plugin.Activate', {});
      const space = (await call(d, 'IpamDriver.GetDefaultAddressSpaces', {})).LocalDefaultAddressSpace as string;
      const net = await createNetwork(d, space, '198.18.15.0/24', '198.18.15.1');
      anchors.push({ d, space, net, addresses: [(await requestAddress(d, net.poolId)).address] });
    }
    const spaceOf = (d: Daemon) => anchors.find((a) => a.d === d)!.space;

    let k = 0;
    const samples: Record<string, Record<ProbeMethod, number[]>> = {
      [OP_COLD]: { probe: [], 'probe, LAN device on 2 of 4': [], 'probe, LAN device on 4 of 4': [], 'no-probe': [] },
      [OP_NEXT]: { probe: [], 'probe, LAN device on 2 of 4': [], 'probe, LAN device on 4 of 4': [], 'no-probe': [] },
    };
    let slowWarm = 0;
    const started = Date.now();
    for (let i = -WARMUP_ROUNDS; i < rounds; i++) {
      // A balanced order (Williams design): each method in each position and after each other one equally often.
      for (const m of balancedOrder(COLD_METHODS, i + WARMUP_ROUNDS)) {
        const d = daemonOf(m);
        const s = subnetAt(k++);
        const held = Array.from({ length: DEVICE_HOLDS[m] }, (_, j) => s.at(2 + j));
        for (const a of held) await deviceKernel.addresses.add('eth0', `${a}/27`);
        const net = await createNetwork(d, spaceOf(d), s.subnet, s.at(1));
        const got: string[] = [];
        try {
          const cold = await requestAddress(d, net.poolId);
          got.push(cold.address);
          // The allocator takes the lowest free address, after the gateway: .2, .3, ... The device's addresses must be
          // skipped, else the figure would time an allocation that did not probe (or probed wrongly).
          const expected = s.at(2 + DEVICE_HOLDS[m]);
          if (cold.address !== expected)
            throw new Error(
              `lan: ${m}: got ${cold.address}, expected ${expected} (device holds ${held.join(', ') || 'nothing'})`,
            );
          // Only plain probing and no-probe get the second request: the device cases are about skipping.
          let next: { ms: number; address: string } | undefined;
          if (DEVICE_HOLDS[m] === 0) {
            await new Promise((r) => setTimeout(r, WARM_GAP_MS));
            next = await requestAddress(d, net.poolId);
            got.push(next.address);
          }
          if (i >= 0) {
            samples[OP_COLD]![m].push(cold.ms);
            if (next) samples[OP_NEXT]![m].push(next.ms);
            if (next && m === 'probe' && next.ms >= WINDOW_MS) slowWarm++;
          }
        } finally {
          await deleteNetwork(d, net, got, s.at(1));
          // Secondaries first: deleting a subnet's primary address takes its secondaries with it.
          for (const a of [...held].reverse()) await deviceKernel.addresses.delete('eth0', `${a}/27`);
        }
      }
      if (i >= 0 && ((i + 1) % 5 === 0 || i + 1 === rounds))
        log(`lan: cold probe ${i + 1}/${rounds} rounds, ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
    for (const a of anchors) await deleteNetwork(a.d, a.net, a.addresses, '198.18.15.1');
    return { samples, slowWarm };
  } finally {
    await deviceKernel?.close();
    for (const d of daemons) await d.remove();
    await lab.destroy();
  }
}

// ---- Part 2: DHCP lease time ----

type DhcpMethod = 'dnsmasq (ping check)' | 'dnsmasq --no-ping';
const RANGE = '198.18.15.100,198.18.15.199,255.255.255.0,2m';
/**
 * dnsmasq pings an address before offering it (PING_WAIT 3 s) but skips the ping when it did 6 or more in the
 * last 30 s (PING_CACHE_TIME 30 s × 0.6 / PING_WAIT: "high-load mode", dhcp.c do_icmp_ping). Back to back, every
 * 7th client on would get an unpinged offer and the figure would show dnsmasq under load, not a container start
 * on a quiet LAN. So the ping rounds go to two servers in turn, and a server sees a new client at most every
 * PING_SPACING_MS: at most 5 in any 30 s (more than 5 s apart).
 */
const PING_SERVERS = 2;
const PING_SPACING_MS = 5500;
/** A pinged acquisition below this was not pinged (for the notes: the spacing should make it zero). */
const UNPINGED_BELOW_MS = 2500;

/** A locally administered unicast MAC, first octet 0x0a like macnet's containers', fresh per round. */
function foreignMac(): string {
  const b = randomBytes(6);
  b[0] = 0x0a;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

interface DhcpLan {
  lab: Lab;
  dns: Dnsmasq;
  kernel: Kernel;
  sock: PacketSocket;
  lastStart: number;
  method: DhcpMethod;
}

/** A lab LAN with one host, dnsmasq on the LAN bridge and a probe-like macvlan on the host's eth0. */
async function dhcpLan(method: DhcpMethod, cleanup: (() => Promise<void>)[]): Promise<DhcpLan> {
  const lab = await Lab.create({ hosts: 1 });
  cleanup.push(() => lab.destroy());
  const dns = await Dnsmasq.start(lab.lan, { range: RANGE, ping: method === 'dnsmasq (ping check)' });
  cleanup.push(() => dns.stop());
  const kernel = Kernel.open(lab.hosts[0]!.ns.path);
  cleanup.push(() => kernel.close());
  // As the LAN layer's probe link: macvlan bridge on the parent, the DHCP client sending with the container's future
  // MAC as chaddr and the broadcast flag, so the server's broadcast replies reach this link.
  await kernel.links.create({ kind: 'macvlan', name: 'mnd-probe', parent: 'eth0', mode: 'bridge', up: true });
  const sock = await kernel.openPacketSocket('mnd-probe', { protocol: ETH_P_IP });
  cleanup.push(async () => sock.close());
  return { lab, dns, kernel, sock, lastStart: -Infinity, method };
}

async function timedLease(lan: DhcpLan): Promise<number> {
  const wait = lan.lastStart + PING_SPACING_MS - Date.now();
  if (lan.method === 'dnsmasq (ping check)' && wait > 0) await new Promise((r) => setTimeout(r, wait));
  lan.lastStart = Date.now();
  const mac = foreignMac();
  const t0 = process.hrtime.bigint();
  const lease = await acquire(lan.sock, {
    mac,
    clientId: Buffer.from(`01${mac.replace(/:/g, '')}`, 'hex'),
    timeoutMs: 10_000,
    where: `probe-like link mnd-probe of ${lan.lab.hosts[0]!.ns.name}`,
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  // Released from the probe link: the server acts on ciaddr and the client id (test/dhcp/client.test.ts), so
  // the range (100 addresses) never runs out however many rounds run.
  release(lan.sock, lease);
  return ms;
}

async function measureDhcp(
  rounds: number,
  log: (m: string) => void,
): Promise<{ samples: Record<DhcpMethod, number[]>; leftLeases: number }> {
  const cleanup: (() => Promise<void>)[] = [];
  try {
    const pinging: DhcpLan[] = [];
    for (let i = 0; i < PING_SERVERS; i++) pinging.push(await dhcpLan('dnsmasq (ping check)', cleanup));
    const noPing = await dhcpLan('dnsmasq --no-ping', cleanup);
    // One untimed lease per server: the first DISCOVER also pays for ARP/neighbour set-up on a fresh LAN.
    for (const lan of [...pinging, noPing]) await timedLease(lan);
    const samples: Record<DhcpMethod, number[]> = { 'dnsmasq (ping check)': [], 'dnsmasq --no-ping': [] };
    const started = Date.now();
    for (let i = 0; i < rounds; i++) {
      // Alternating: which server goes first flips every round.
      const ping = pinging[i % PING_SERVERS]!;
      for (const lan of i % 2 ? [noPing, ping] : [ping, noPing]) samples[lan.method].push(await timedLease(lan));
      if ((i + 1) % 10 === 0 || i + 1 === rounds)
        log(`lan: DHCP ${i + 1}/${rounds} rounds, ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
    // Every release must have reached its server: a lease file that keeps growing would mean the figure's
    // later rounds ran against a fuller range than its first ones. dnsmasq writes the file a moment later.
    let leftLeases = 0;
    for (let t = 0; t < 50; t++) {
      leftLeases = [...pinging, noPing].reduce((n, l) => n + l.dns.leases().length, 0);
      if (!leftLeases) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    return { samples, leftLeases };
  } finally {
    for (const c of cleanup.reverse()) await c().catch((e: unknown) => log(`lan: cleanup: ${String(e)}`));
  }
}

// ---- The figure ----

async function lanFigure(rounds: number, log: (m: string) => void): Promise<RichFigureResult> {
  // The DHCP part sets the round count (the issue asks for p99); the cold probe part gets 2/5 of it, enough for a
  // median and p90 of a quantity that varies by a few ms, and keeps the figure short.
  const coldRounds = Math.max(2, Math.round((rounds * 2) / 5));
  const skipped: string[] = [];
  const cold = await measureCold(coldRounds, log);
  const missing = dnsmasqMissing();
  let dhcp: Awaited<ReturnType<typeof measureDhcp>> | undefined;
  if (missing) skipped.push(`DHCP lease time: ${missing}`);
  else dhcp = await measureDhcp(rounds, log);

  const series: Series[] = [
    ...COLD_METHODS.map((method) => ({ op: OP_COLD, method, samplesMs: cold.samples[OP_COLD]![method] })),
    ...(['probe', 'no-probe'] as const).map((method) => ({
      op: OP_NEXT,
      method,
      samplesMs: cold.samples[OP_NEXT]![method],
    })),
    ...(dhcp
      ? (Object.entries(dhcp.samples) as [DhcpMethod, number[]][]).map(([method, samplesMs]) => ({
          op: 'DHCP acquire (DISCOVER to ACK)',
          method,
          samplesMs,
        }))
      : []),
  ];

  const c = cold.samples[OP_COLD]!;
  const coldSum = summarize(c.probe);
  const targets: Target[] = [
    {
      what: `cold RequestAddress at most window + 100 ms (probe window ${WINDOW_MS} ms, the default)`,
      pass: coldSum.p90 <= COLD_TARGET_MS,
      detail: `p90 ${fmtMs(coldSum.p90)} ms (median ${fmtMs(coldSum.median)}, max ${fmtMs(coldSum.max)}, n ${coldSum.n}), target p90 at most ${COLD_TARGET_MS} ms`,
    },
  ];
  const tables: ExtraTable[] = [];
  if (dhcp) {
    tables.push({
      title: 'DHCP acquire against dnsmasq 2.90, DISCOVER to ACK (ms)',
      header: ['server', 'n', 'p50', 'p90', 'p99', 'min', 'max'],
      rows: (Object.entries(dhcp.samples) as [DhcpMethod, number[]][]).map(([m, v]) => [
        m,
        String(v.length),
        fmtMs(median(v)),
        fmtMs(p90(v)),
        fmtMs(p99(v)),
        fmtMs(Math.min(...v)),
        fmtMs(Math.max(...v)),
      ]),
    });
  }
  const unpinged = dhcp ? dhcp.samples['dnsmasq (ping check)'].filter((x) => x < UNPINGED_BELOW_MS).length : 0;

  const plot: PlotPanel[] = [
    {
      title: 'Cold RequestAddress through the daemon (median; whisker p25 to p75)',
      unit: 'ms',
      better: 'lower',
      bars: [
        ...COLD_METHODS.map((m) => ({
          label: m === 'no-probe' ? 'no-probe (daemon --no-probe)' : m,
          value: median(c[m]),
          range: [percentile(c[m], 25), percentile(c[m], 75)] as [number, number],
          ...(m === 'probe' && { pass: coldSum.p90 <= COLD_TARGET_MS }),
        })),
        { label: `probe, next request ${WARM_GAP_MS} ms later (warm)`, value: median(cold.samples[OP_NEXT]!.probe) },
      ],
      lines: [
        { value: WINDOW_MS, label: `window ${WINDOW_MS} ms`, kind: 'reference' },
        { value: COLD_TARGET_MS, label: `target ${COLD_TARGET_MS} ms (p90, plain probe)`, kind: 'target' },
      ],
    },
  ];
  if (dhcp) {
    plot.push({
      title: 'DHCP lease from dnsmasq, DISCOVER to ACK: p50 and p99',
      unit: 'ms',
      better: 'lower',
      bars: (Object.entries(dhcp.samples) as [DhcpMethod, number[]][]).flatMap(([m, v]) => [
        { label: `${m}: p50`, value: median(v) },
        { label: `${m}: p99`, value: p99(v) },
      ]),
      lines: [],
    });
  }

  const dm = (m: ProbeMethod) => median(c[m]);
  return {
    what:
      `Part 1, cold probe: two lab hosts on one simulated LAN, each running \`bin/macnet daemon\` in its namespace ` +
      `(h1 as users run it: probing on, default window ${WINDOW_MS} ms; h2 with --no-probe), driven by raw plugin ` +
      `calls in dockerd's order (test/docker/protocol.test.ts). A sample is a fresh network: RequestPool for a /27 ` +
      `never used before in the run (198.18.64.0/18), RequestAddress for its gateway (.1), CreateNetwork on parent ` +
      `eth0, then one dynamic RequestAddress timed from the client (HTTP on the plugin socket, request to answer). ` +
      `A new pool has no warm set (the daemon fills it in the background only after a pool's first dynamic ` +
      `allocation), so that request probes its candidates (${BATCH} at a time, one window) before answering: the ` +
      `cold case, with nothing racing a background refill. For \`probe\` and \`no-probe\` a second RequestAddress ` +
      `${WARM_GAP_MS} ms later is timed too (for \`probe\` it comes from the warm set the first one started). Then ` +
      `addresses, network and pool are released. A LAN device (a namespace with a port on the LAN bridge) holds ` +
      `the first 2 or all ${BATCH} candidates (.2 up) of the sample's subnet in the two device methods; each sample ` +
      `checks that the daemon returned the first address after the device's. Each daemon keeps an anchor network ` +
      `on its parent for the whole run, so the probe link exists already (as for any network after a parent's first). ` +
      `${coldRounds} rounds, each one sample per method in a balanced order, after ${WARMUP_ROUNDS} untimed round. ` +
      `Part 2, DHCP: \`acquire()\` (src/dhcp) from a macvlan on a lab host's eth0 (as the daemon's probe link), for a ` +
      `fresh locally administered MAC (first octet 0x0a, client id 01+MAC) per lease, timed from the first ` +
      `DISCOVER to the ACK, then released. dnsmasq 2.90 (test/dhcp/dnsmasq.ts) serves on the LAN bridge of its own ` +
      `lab LAN: two LANs with the default ping check, one with --no-ping (two servers cannot share one LAN). ` +
      `${rounds} rounds, each one lease from the --no-ping server and one from a ping server (the two in turn), the ` +
      `order flipping each round, after one untimed lease per server.`,
    methods: {
      probe: `h1's daemon, probing on, default window (${WINDOW_MS} ms, 3 ARP probes); nothing on the LAN holds the candidates`,
      'probe, LAN device on 2 of 4': `as probe; the LAN device holds .2 and .3: skipped within the one window, the daemon returns .4`,
      'probe, LAN device on 4 of 4': `as probe; the LAN device holds .2 to .5, the whole first batch: a second window for .6 to .9, the daemon returns .6`,
      'no-probe': "h2's daemon, `macnet daemon --no-probe`: the allocation without looking at the LAN",
      'dnsmasq (ping check)': `dnsmasq as Debian ships it: pings a new address and offers it after 3 s without an echo; two servers on two LANs, used in turn, each seeing a new client at most every ${PING_SPACING_MS / 1000} s`,
      'dnsmasq --no-ping': 'the same dnsmasq with --no-ping on a third LAN: offers at once',
    },
    baseline: 'no-probe',
    roundUnit: `DHCP: one lease per server; the cold probe part runs ${coldRounds} rounds (2/5 of them) of one fresh network per method`,
    rounds,
    series,
    notes: [
      `Cold \`probe\` costs ${fmtMs(dm('probe') - dm('no-probe'))} ms over no-probe at the median (${ratio(dm('probe'), dm('no-probe')).toFixed(1)}×): ` +
        `the probe window itself. Skipping addresses inside the first batch costs nothing more ` +
        `(${fmtMs(dm('probe, LAN device on 2 of 4'))} ms); a whole batch held adds one window ` +
        `(${fmtMs(dm('probe, LAN device on 4 of 4'))} ms). Up to 8 batches are tried before the pool counts as exhausted.`,
      `A second request ${WARM_GAP_MS} ms after the cold one is served from the warm set: median ` +
        `${fmtMs(median(cold.samples[OP_NEXT]!.probe))} ms vs ${fmtMs(median(cold.samples[OP_NEXT]!['no-probe']))} ms without probing` +
        `${cold.slowWarm ? `; ${cold.slowWarm} of ${cold.samples[OP_NEXT]!.probe.length} still waited a window (refill not done)` : ''}. ` +
        'In `docker run` the warm path is what a container start sees (the docker-run figure, probing on vs off).',
      'The target is read on the p90 (a bound checked on every sample would fail on a single scheduling hiccup of ' +
        'the machine); the max is printed next to it.',
      ...(dhcp
        ? [
            `dnsmasq's ping check dominates a DHCP lease: p50 ${fmtMs(median(dhcp.samples['dnsmasq (ping check)']))} ms against ` +
              `${fmtMs(median(dhcp.samples['dnsmasq --no-ping']))} ms with --no-ping; the client's and the LAN's share is at most ` +
              'the --no-ping time. With the check on, every container that gets a new address waits about 3 s for it.',
            `Leases from a ping server in under ${UNPINGED_BELOW_MS} ms (offered without a ping): ${unpinged} of ${dhcp.samples['dnsmasq (ping check)'].length}. ` +
              'dnsmasq skips the ping in two cases: the address was pinged free in the last 30 s (its ping cache; a released ' +
              'address offered again to the next MAC, the likely cause of such leases here: 100 addresses, a MAC-hashed ' +
              'choice), and high load: 6 pings in the last 30 s. ' +
              'The second was seen in a one-off side experiment (not part of this suite): 10 leases back to back from one ' +
              'server took about 3 s each for the first 6, then 1 to 2 ms. The spacing of more than 5 s per server keeps it ' +
              'out of this figure, which is why the DHCP part takes about 3 s per round: shorter waits would measure a loaded server.',
            `Leases left in the servers' lease files after the run: ${dhcp.leftLeases} (each lease was released after it was timed).`,
            'p99 is by nearest rank: with fewer than 100 samples it is the largest sample.',
          ]
        : []),
    ],
    targets,
    tables,
    skipped,
    plot,
  };
}

export const lan: Figure = {
  id: 'lan',
  title: 'LAN-aware IPAM: cold probe time through the daemon; DHCP lease time against dnsmasq',
  defaultRounds: 50,
  quickRounds: 4,
  run: ({ rounds, log }) => lanFigure(rounds, log),
};
