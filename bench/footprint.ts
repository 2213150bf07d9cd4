// Figure "footprint": what the macnet daemon costs the host. Resident memory idle and with 1,000 endpoints on
// one network (made through raw plugin calls, the sequence dockerd sends), and the time from spawning the
// daemon to its first answer to Plugin.Activate, against a minimal Node HTTP server on a unix socket (the
// floor for any plugin written in Node). Targets: at most 80 MB with 1,000 endpoints, at most 300 ms to ready.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Kernel } from '../src/kernel';
import { Daemon, pluginCall } from '../test/lab/daemon';
import { Lab } from '../test/lab/lab';
import { balancedOrder } from './docker-lab';
import {
  type ExtraTable,
  type Figure,
  type RichFigureResult,
  type Series,
  type Target,
  median,
  ratio,
  summarize,
} from './stats';

const ENDPOINTS = 1000;
/** Endpoints that also Join: each Join creates a macvlan link in the daemon's namespace. */
const JOINED = 100;
const SUBNET = '198.18.16.0/22';
const GATEWAY = '198.18.16.1';
const RSS_TARGET_MB = 80;
const READY_TARGET_MS = 300;
/** Seconds to let the process settle (timers, lazy frees) before reading its RSS. */
const SETTLE_MS = 2000;
const POLL_MS = 2;
const MAIN = path.join(__dirname, '..', '..', 'bin', 'macnet');

/**
 * With LAN probing (on by default since the LAN-aware IPAM), every cold dynamic allocation waits one probe
 * window, and allocations on a subnet are serialized: 1,000 endpoints would take 1,000 windows (5 min at the
 * default 300 ms). The figure is about memory, which the window's length does not change, so the daemon that
 * holds the 1,000 endpoints probes with the shortest window it accepts. Empty when the daemon has no such option.
 */
function shortProbeArgs(): string[] {
  const help = execFileSync(process.execPath, [MAIN, 'daemon', '--help'], { encoding: 'utf8' });
  return /--probe-window/.test(help) ? ['--probe-window', '10'] : [];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MB = (kib: number) => (kib * 1024) / 1e6;

/** VmRSS and VmHWM (peak) of a process, in KiB as the kernel reports them. */
function memory(pid: number): { rssKiB: number; hwmKiB: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status);
    if (!m) throw new Error(`no ${name} in /proc/${pid}/status`);
    return Number(m[1]);
  };
  return { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM') };
}

/** The median of five RSS readings 200 ms apart, after SETTLE_MS. */
async function settledRss(pid: number): Promise<{ rssKiB: number; hwmKiB: number }> {
  await sleep(SETTLE_MS);
  const reads: number[] = [];
  for (let i = 0; i < 5; i++) {
    reads.push(memory(pid).rssKiB);
    await sleep(200);
  }
  return { rssKiB: median(reads), hwmKiB: memory(pid).hwmKiB };
}

/** The daemon process itself: nsenter execs node without forking, so the harness's pid must be node's. */
function checkIsNode(pid: number): void {
  const exe = fs.readlinkSync(`/proc/${pid}/exe`);
  if (path.basename(exe) !== path.basename(process.execPath))
    throw new Error(`footprint: pid ${pid} is ${exe}, not node: RSS would be measured on the wrong process`);
}

async function call(d: Daemon, method: string, body: unknown): Promise<Record<string, unknown>> {
  const r = await d.call(method, body);
  if (r.status !== 200 || r.body.Err) throw new Error(`footprint: ${method}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

/**
 * Pool, gateway and network, then `count` endpoints, the first `joined` of them joined, as dockerd does: Join
 * names a sandbox namespace that exists, then dockerd moves the link in, renames it eth0, addresses it and brings
 * it up (macnet waits for that to announce the address; a sandbox that never appears keeps it polling for 10 s).
 */
async function populate(
  d: Daemon,
  lab: Lab,
  count: number,
  joined: number,
): Promise<{ endpointMs: number[]; joinMs: number[] }> {
  const host = lab.hosts[0]!;
  await call(d, 'Plugin.Activate', {});
  await call(d, 'NetworkDriver.GetCapabilities', {});
  await call(d, 'IpamDriver.GetCapabilities', {});
  const space = (await call(d, 'IpamDriver.GetDefaultAddressSpaces', {})).LocalDefaultAddressSpace as string;
  const pool = await call(d, 'IpamDriver.RequestPool', {
    AddressSpace: space,
    Pool: SUBNET,
    SubPool: '',
    Options: {},
    V6: false,
  });
  const poolId = pool.PoolID as string;
  await call(d, 'IpamDriver.RequestAddress', {
    PoolID: poolId,
    Address: GATEWAY,
    Options: { RequestAddressType: 'com.docker.network.gateway' },
  });
  const nid = hex(32);
  await call(d, 'NetworkDriver.CreateNetwork', {
    NetworkID: nid,
    Options: { 'com.docker.network.generic': { parent: 'eth0' }, 'com.docker.network.enable_ipv6': false },
    IPv4Data: [{ AddressSpace: space, Pool: SUBNET, Gateway: `${GATEWAY}/22` }],
    IPv6Data: [],
  });
  const endpointMs: number[] = [];
  const joinMs: number[] = [];
  for (let i = 0; i < count; i++) {
    const eid = hex(32);
    const t0 = process.hrtime.bigint();
    const addr = (await call(d, 'IpamDriver.RequestAddress', { PoolID: poolId, Address: '', Options: {} }))
      .Address as string;
    await call(d, 'NetworkDriver.CreateEndpoint', {
      NetworkID: nid,
      EndpointID: eid,
      Interface: { Address: addr, AddressIPv6: '', MacAddress: '' },
      Options: {},
    });
    endpointMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (i < joined) {
      const sandbox = await lab.newNetns(`fp${i}`);
      const t1 = process.hrtime.bigint();
      const j = (await call(d, 'NetworkDriver.Join', {
        NetworkID: nid,
        EndpointID: eid,
        SandboxKey: sandbox.path,
        Options: {},
      })) as { InterfaceName: { SrcName: string } };
      joinMs.push(Number(process.hrtime.bigint() - t1) / 1e6);
      // dockerd's part, untimed.
      await Kernel.with(host.ns.path, (k) => k.links.moveTo(j.InterfaceName.SrcName, sandbox.path, 'eth0'));
      await Kernel.with(sandbox.path, async (k) => {
        await k.addresses.add('eth0', addr);
        await k.links.setUp('eth0');
      });
    }
  }
  return { endpointMs, joinMs };
}

type StartKind = 'macnet, empty state' | 'macnet, 1,000 endpoints in state' | 'node http server';

/** Spawns, polls the socket every POLL_MS with Plugin.Activate until it answers; resolves with the time. */
async function startTimed(
  netns: string,
  kind: StartKind,
  dirs: { plugin: string; state: string },
): Promise<{ ms: number; child: ChildProcess; stderr: string[] }> {
  const socket = path.join(dirs.plugin, kind === 'node http server' ? 'ref.sock' : 'macnet.sock');
  const args =
    kind === 'node http server'
      ? ['-e', "require('http').createServer((q, s) => s.end('{\"Implements\":[]}')).listen(process.argv[1])", socket]
      : [
          MAIN,
          'daemon',
          '--plugin-dir',
          dirs.plugin,
          '--state-dir',
          dirs.state,
          '--log-level',
          'info',
          '--default-address-pool',
          'base=198.18.128.0/17,size=24',
          '--default-address-pool',
          'base=2001:db8:ff00::/40,size=64',
        ];
  const stderr: string[] = [];
  const t0 = process.hrtime.bigint();
  const child = spawn('nsenter', [`--net=${netns}`, process.execPath, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (b: Buffer) => stderr.push(b.toString()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`footprint: ${kind} exited with ${child.exitCode}: ${stderr.join('')}`);
    try {
      const r = await pluginCall(socket, 'Plugin.Activate', {});
      if (r.status === 200) return { ms: Number(process.hrtime.bigint() - t0) / 1e6, child, stderr };
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`footprint: ${kind} did not answer in 10 s: ${stderr.join('')}`);
    }
    await sleep(POLL_MS);
  }
}

/** SIGTERM, then waits for 'close' (exited and its stderr read to the end). */
async function stopChild(child: ChildProcess, socket: string): Promise<void> {
  const closed = new Promise<void>((r) => child.once('close', () => r()));
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  if (child.stderr && !child.stderr.closed) await closed;
  fs.rmSync(socket, { force: true });
}

/**
 * The daemon's own "ready" log line: ms from entering runDaemon to listening (without Node's boot and module
 * loading).
 */
function selfReportedMs(stderr: string[]): number | undefined {
  const line = stderr
    .join('')
    .split('\n')
    .find((l) => l.includes('"msg":"ready"'));
  return line ? (JSON.parse(line) as { ms?: number }).ms : undefined;
}

export async function footprintFigure(starts: number, log: (m: string) => void): Promise<RichFigureResult> {
  const lab = await Lab.create({ hosts: 1 });
  const host = lab.hosts[0]!;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `mnt-${process.pid}-footprint-`));
  let d: Daemon | undefined;
  const open: { child: ChildProcess; socket: string }[] = [];
  const readyMs: Record<StartKind, number[]> = {
    'macnet, empty state': [],
    'macnet, 1,000 endpoints in state': [],
    'node http server': [],
  };
  const selfMs: number[] = [];
  let idle, loaded, restarted, calls;
  let probeArgs: string[];
  try {
    probeArgs = shortProbeArgs();
    d = await Daemon.start({ netns: host.ns.path, extraArgs: ['--log-level', 'info', ...probeArgs] });
    const pid = d.pid!;
    checkIsNode(pid);
    await call(d, 'Plugin.Activate', {});
    idle = await settledRss(pid);
    log(
      `footprint: idle RSS ${MB(idle.rssKiB).toFixed(1)} MB; creating ${ENDPOINTS.toLocaleString('en')} endpoints (${JOINED} joined)`,
    );
    calls = await populate(d, lab, ENDPOINTS, JOINED);
    loaded = await settledRss(pid);
    log(
      `footprint: RSS with ${ENDPOINTS.toLocaleString('en')} endpoints ${MB(loaded.rssKiB).toFixed(1)} MB (peak ${MB(loaded.hwmKiB).toFixed(1)} MB)`,
    );
    const stopped = await d.stop('SIGTERM');
    if (stopped !== 0) throw new Error(`footprint: daemon exited with ${stopped} on SIGTERM`);

    // Start times, the three kinds in a balanced order. The 1,000-endpoint state is the one just written.
    const kinds = Object.keys(readyMs) as StartKind[];
    for (let i = 0; i < starts; i++) {
      for (const kind of balancedOrder(kinds, i)) {
        const plugin = fs.mkdtempSync(path.join(tmp, 'p-'));
        const state =
          kind === 'macnet, 1,000 endpoints in state' ? d.opts.stateDir : fs.mkdtempSync(path.join(tmp, 's-'));
        const s = await startTimed(host.ns.path, kind, { plugin, state });
        const socket = path.join(plugin, kind === 'node http server' ? 'ref.sock' : 'macnet.sock');
        open.push({ child: s.child, socket });
        readyMs[kind].push(s.ms);
        await stopChild(s.child, socket);
        open.pop();
        if (kind === 'macnet, empty state') {
          const self = selfReportedMs(s.stderr);
          if (self !== undefined) selfMs.push(self);
        }
        if (kind !== 'node http server' && s.child.exitCode !== 0)
          throw new Error(
            `footprint: ${kind}: daemon exited with ${s.child.exitCode ?? s.child.signalCode} on SIGTERM: ${s.stderr.join('')}`,
          );
      }
      log(`footprint: ${i + 1}/${starts} start rounds`);
    }
    // The daemon restarted on the 1,000-endpoint state: what it holds when it has read that state back.
    await d.restart();
    await call(d, 'Plugin.Activate', {});
    restarted = await settledRss(d.pid!);
  } finally {
    for (const o of open) await stopChild(o.child, o.socket).catch(() => undefined);
    await d?.remove();
    fs.rmSync(tmp, { recursive: true, force: true });
    await lab.destroy();
  }

  const loadedMB = MB(loaded.rssKiB);
  const targets: Target[] = [
    {
      what: `macnet daemon RSS with ${ENDPOINTS.toLocaleString('en')} endpoints (${JOINED} joined)`,
      pass: loadedMB <= RSS_TARGET_MB,
      detail: `${loadedMB.toFixed(1)} MB (VmRSS, settled), target at most ${RSS_TARGET_MB} MB`,
    },
    ...(['macnet, empty state', 'macnet, 1,000 endpoints in state'] as const).map((k): Target => {
      const m = median(readyMs[k]);
      return {
        what: `macnet daemon spawn to first Plugin.Activate answer (${k.slice(8)}), median of ${readyMs[k].length}`,
        pass: m <= READY_TARGET_MS,
        detail: `${m.toFixed(0)} ms, target at most ${READY_TARGET_MS} ms`,
      };
    }),
  ];
  const memRow = (what: string, m: { rssKiB: number; hwmKiB: number }): string[] => [
    what,
    MB(m.rssKiB).toFixed(1),
    (m.rssKiB / 1024).toFixed(1),
    MB(m.hwmKiB).toFixed(1),
  ];
  const tables: ExtraTable[] = [
    {
      title: 'macnet daemon memory (VmRSS from /proc/<pid>/status: median of 5 readings after 2 s idle; peak: VmHWM)',
      header: ['state', 'RSS MB', 'RSS MiB', 'peak MB'],
      rows: [
        memRow('idle, just started, empty state', idle),
        memRow(`${ENDPOINTS.toLocaleString('en')} endpoints on one network, ${JOINED} joined`, loaded),
        memRow(`restarted on the state of ${ENDPOINTS.toLocaleString('en')} endpoints`, restarted),
      ],
    },
  ];
  const series: Series[] = [
    ...(Object.entries(readyMs) as [StartKind, number[]][]).map(([method, samplesMs]) => ({
      op: 'spawn to first Plugin.Activate answer',
      method,
      samplesMs,
    })),
    { op: 'RequestAddress + CreateEndpoint', method: 'macnet, empty state', samplesMs: calls.endpointMs },
    { op: 'Join (creates a macvlan link)', method: 'macnet, empty state', samplesMs: calls.joinMs },
  ];
  const floor = median(readyMs['node http server']);
  return {
    what:
      `\`bin/macnet daemon\` in a lab host's network namespace (started as users start it, log level info). Memory: ` +
      `VmRSS read idle after start, then after ${ENDPOINTS.toLocaleString('en')} endpoints were created on one network by raw plugin calls in ` +
      `dockerd's order (RequestPool ${SUBNET}, RequestAddress for the gateway, CreateNetwork on parent eth0, then per ` +
      `endpoint RequestAddress + CreateEndpoint; the first ${JOINED} also Join, each into a namespace of its own, and get ` +
      'what dockerd does next: the link moved in as eth0, addressed, up), and ' +
      `after a restart on that state. Start: ${starts} rounds, each spawning (via nsenter into the namespace) the daemon ` +
      `on an empty state dir, the daemon on the ${ENDPOINTS.toLocaleString('en')}-endpoint state, and a minimal Node HTTP server on a unix ` +
      `socket, in a balanced order (over 6 rounds each kind is in each position twice and follows each other kind twice); timed from just before spawn() to the first HTTP 200 answer to Plugin.Activate ` +
      `on the socket, polled every ${POLL_MS} ms; then SIGTERM and wait for exit.`,
    methods: {
      'macnet, empty state': `\`nsenter --net=<host ns> node bin/macnet daemon --plugin-dir <fresh> --state-dir <fresh> --log-level info\``,
      'macnet, 1,000 endpoints in state': `the same with the state dir holding the ${ENDPOINTS.toLocaleString('en')} endpoints (reconcile reads them and checks the links)`,
      'node http server':
        "`nsenter --net=<host ns> node -e \"require('http').createServer(...).listen(<socket>)\"`: Node's own start-up and one HTTP answer, the floor for a plugin in Node",
    },
    baseline: 'node http server',
    roundUnit: 'one timed start of each of the three',
    rounds: starts,
    series,
    notes: [
      ...(probeArgs.length
        ? [
            `The daemon that holds the ${ENDPOINTS.toLocaleString('en')} endpoints runs with \`${probeArgs.join(' ')}\`: with LAN ` +
              'probing on (the default), each dynamic allocation waits one probe window and allocations on a subnet are serialized, ' +
              `so at the default 300 ms the ${ENDPOINTS.toLocaleString('en')} endpoints alone would take 5 minutes. Probing stays on ` +
              '(the prober, its sockets and state are all there); only the window is short. The timed starts use the defaults.',
          ]
        : []),
      `MB here are 10^6 bytes (the kernel's kB in /proc are KiB). The targets are compared in MB, the stricter reading.`,
      `Above the Node floor (median ${floor.toFixed(0)} ms), the daemon's start costs ` +
        `${(median(readyMs['macnet, empty state']) - floor).toFixed(0)} ms on an empty state (${fmtX(ratio(median(readyMs['macnet, empty state']), floor))} the floor); ` +
        (selfMs.length
          ? `of that, the daemon's own "ready" log line (from entering runDaemon to listening: store, kernel ` +
            `handle, IPAM load, reconcile; without Node's boot and module loading) says median ${median(selfMs).toFixed(0)} ms.`
          : ''),
      `${ENDPOINTS.toLocaleString('en')} RequestAddress + CreateEndpoint pairs took ${(calls.endpointMs.reduce((a, b) => a + b, 0) / 1000).toFixed(1)} s ` +
        `(median ${summarize(calls.endpointMs).median.toFixed(2)} ms a pair, two HTTP calls and two SQLite commits).`,
    ],
    targets,
    tables,
    plot: [
      {
        title: 'macnet daemon memory (RSS)',
        unit: 'MB',
        better: 'lower',
        bars: [
          { label: 'idle', value: MB(idle.rssKiB) },
          { label: `${ENDPOINTS.toLocaleString('en')} endpoints`, value: loadedMB, pass: loadedMB <= RSS_TARGET_MB },
          { label: `restarted on ${ENDPOINTS.toLocaleString('en')}`, value: MB(restarted.rssKiB) },
        ],
        lines: [{ value: RSS_TARGET_MB, label: `target ${RSS_TARGET_MB} MB`, kind: 'target' }],
      },
      {
        title: 'Spawn to first Plugin.Activate answer (median)',
        unit: 'ms',
        better: 'lower',
        bars: (Object.entries(readyMs) as [StartKind, number[]][]).map(([k, v]) => ({
          label: k,
          value: median(v),
          ...(k !== 'node http server' && { pass: median(v) <= READY_TARGET_MS }),
        })),
        lines: [{ value: READY_TARGET_MS, label: `target ${READY_TARGET_MS} ms`, kind: 'target' }],
      },
    ],
  };
}

const fmtX = (r: number) => `${r.toFixed(2)}×`;

export const footprint: Figure = {
  id: 'footprint',
  title: 'macnet daemon footprint: RSS idle and with 1,000 endpoints, spawn to socket ready',
  defaultRounds: 12,
  quickRounds: 3,
  run: ({ rounds, log }) => footprintFigure(rounds, log),
};
