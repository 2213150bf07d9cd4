// The lab: a simulated LAN inside network namespaces, optionally with a real dockerd per simulated host (safety:
// only 198.18.0.0/15 and 2001:db8::/32, only links of its own). Nothing is created in the root network namespace.
//
// Everything a lab creates is tagged with the creating pid, so that a later run can remove what a crashed
// run left: namespaces "mnt-<pid>-lab<k>-..." (netns.ts), /tmp/macnet-lab-<pid>-<k> (data, exec roots,
// sockets, plugin dirs; every dockerd, containerd and shim has this path on its command line),
// /run/macnet-lab-<pid>-<k> (the persistent mount namespaces) and cgroups "macnet-lab-<pid>-<k>-h<i>"
// (the containers' cgroup parent, which finds container processes even after their shim is gone).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Engine, engine as selectedEngine, engineEnv } from './engines';
import { TestNetns, sweepStaleNetns } from './netns';
import { ipJson, run, type RunResult, sh } from './sh';

export interface LabOptions {
  hosts: number;
  docker?: boolean;
  ipv6?: boolean;
  /** The Docker engine every host runs (test/lab/engines.ts); default: MACNET_ENGINE's (test/run.js sets it). */
  engine?: Engine;
}

export const LAN = {
  subnet4: '198.18.15.0/24',
  subnet6: '2001:db8:15::/64',
  router4: '198.18.15.1',
  router6: '2001:db8:15::1',
};
/** Applets linked in busybox:local; `true` too, because `docker run IMAGE true` execs it without a shell. */
export const BUSYBOX_APPLETS = ['sh', 'ping', 'ip', 'cat', 'sleep', 'nslookup', 'wget', 'arping', 'udhcpc', 'true'];

const TAG = 'macnet-lab-';
const TMP = '/tmp'; // not os.tmpdir(): unix socket paths under it must stay short (108 bytes)
const CGROUP_ROOT = '/sys/fs/cgroup';
/** Mount points inside each host's mount namespace, over directories that must exist in the root's /run. */
const PRIVATE_RUN_DIRS = ['/run/docker', '/run/containerd'];
/** Lists the /run directories labs had to create, so the last lab (also of a later run) can remove them. */
const CREATED_DIRS_FILE = `/run/${TAG}created-dirs`;

/**
 * A random MAC for a simulated machine (a host's eth0, a LAN device), first octet 02: the kernel's own random
 * MACs may begin with 0a or 0e, macnet's signatures for containers and probe links, and `macnet scan` or the
 * LAN check would then take the machine for another host's macnet (1 lab in 32 did).
 */
export function labMac(): string {
  return [
    '02',
    ...Array.from({ length: 5 }, () =>
      Math.floor(Math.random() * 256)
        .toString(16)
        .padStart(2, '0'),
    ),
  ].join(':');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Whether `p` settled within `ms`; the timer is cleared so that it does not keep the process alive. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<boolean>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true), t]);
  } finally {
    clearTimeout(timer);
  }
}
const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function alive(pid: number): boolean {
  try {
    // A zombie is gone for our purposes: it holds no namespaces or mounts any more.
    return !/^\d+ \(.*\) Z/s.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** First executable named `name` in PATH (and the sbin directories, which a non-login PATH may lack). */
export function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'];
  return dirs
    .filter(Boolean)
    .map((d) => path.join(d, name))
    .find((p) => {
      try {
        fs.accessSync(p, fs.constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
}

/** Why docker labs cannot run here with the selected engine (MACNET_ENGINE), or undefined when they can. */
export function dockerMissing(): string | undefined {
  if (!which('busybox')) return 'busybox is not installed (apt-get install busybox-static)';
  const e = selectedEngine();
  return typeof e === 'string' ? e : undefined;
}

/** True if the ELF file has no program interpreter, i.e. runs in an image without a libc. */
function isStaticElf(file: string): boolean {
  const b = fs.readFileSync(file);
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) return false; // ELF64 only (amd64/arm64 machines)
  const phoff = Number(b.readBigUInt64LE(0x20)),
    phentsize = b.readUInt16LE(0x36),
    phnum = b.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) if (b.readUInt32LE(phoff + i * phentsize) === 3 /* PT_INTERP */) return false;
  return true;
}

function mountPoints(mountinfo = '/proc/self/mountinfo'): string[] {
  // Field 5 is the mount point, with spaces etc. escaped as \040; our paths have none.
  return fs
    .readFileSync(mountinfo, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '');
}

/** Unmounts deepest first, so a mount on top of another goes before the one beneath. */
function umountAllSync(targets: string[]): void {
  for (const t of [...new Set(targets)].sort((a, b) => b.length - a.length)) {
    try {
      execFileSync('umount', [t], { stdio: 'ignore' });
    } catch {
      try {
        execFileSync('umount', ['-l', t], { stdio: 'ignore' });
      } catch {
        /* not mounted */
      }
    }
  }
}

function cgroupDirs(name: string): string[] {
  let subs: string[] = [];
  try {
    subs = fs.readdirSync(CGROUP_ROOT);
  } catch {
    /* no cgroupfs */
  }
  return [path.join(CGROUP_ROOT, name), ...subs.map((s) => path.join(CGROUP_ROOT, s, name))].filter((d) =>
    fs.existsSync(d),
  );
}

/** A cgroup directory and its descendants, deepest first (the order rmdir needs). */
function cgroupTree(dir: string): string[] {
  let kids: string[] = [];
  try {
    kids = fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => path.join(dir, e.name));
  } catch {
    /* gone */
  }
  return [...kids.flatMap(cgroupTree), dir];
}

/** Pids whose command line names `needle` (dockerd, its containerd, shims: they all carry the lab dir). */
function pidsMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(needle)) out.push(Number(p));
    } catch {
      /* exited */
    }
  }
  return out;
}

/**
 * Pids whose root directory lies under `dir`: a Docker managed plugin's process names nothing of the lab on its
 * command line, but its root is its rootfs under the host's data root.
 */
function pidsRootedIn(dir: string): number[] {
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (fs.readlinkSync(`/proc/${p}/root`).startsWith(dir)) out.push(Number(p));
    } catch {
      /* exited, or a kernel thread */
    }
  }
  return out;
}

function killAndWaitSync(pids: number[], timeoutMs = 5000): void {
  for (const pid of pids)
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  const until = Date.now() + timeoutMs;
  while (pids.some(alive) && Date.now() < until) sleepSync(20);
}

/**
 * Synchronously removes what lab `id` ("<pid>-<k>") left outside namespaces: processes, container processes,
 * mounts, directories, cgroups. Used at exit, for stale labs of dead pids, and as destroy()'s last step.
 */
function removeLabResidueSync(id: string): void {
  const dir = path.join(TMP, TAG + id),
    runDir = path.join('/run', TAG + id);
  const cgroups = fs.existsSync(CGROUP_ROOT)
    ? fs
        .readdirSync(CGROUP_ROOT)
        .flatMap((s) => {
          try {
            return fs.readdirSync(path.join(CGROUP_ROOT, s));
          } catch {
            return [];
          }
        })
        .filter((n) => n.startsWith(`${TAG}${id}-`))
    : [];
  const cgroupNames = [...new Set(cgroups)];
  const inCgroups = cgroupNames
    .flatMap(cgroupDirs)
    .flatMap(cgroupTree)
    .flatMap((d) => {
      try {
        return fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
      } catch {
        return [];
      }
    });
  killAndWaitSync([...pidsMentioning(`${dir}/`), ...pidsRootedIn(`${dir}/`), ...inCgroups]);
  // The mount namespace files first, then the private bind mount that holds them.
  umountAllSync(mountPoints().filter((m) => m === runDir || m.startsWith(`${runDir}/`) || m.startsWith(`${dir}/`)));
  fs.rmSync(dir, { recursive: true, force: true });
  try {
    fs.rmSync(runDir, { recursive: true, force: true });
  } catch {
    /* still mounted: reported by residue */
  }
  for (const d of cgroupNames.flatMap(cgroupDirs).flatMap(cgroupTree))
    try {
      fs.rmdirSync(d);
    } catch {
      /* busy */
    }
}

/** Ids of labs (of any process) whose run or tmp directories exist, with their creating pid. */
function labIds(): { id: string; pid: number }[] {
  const ids = new Map<string, number>();
  for (const root of [TMP, '/run']) {
    for (const n of fs.readdirSync(root)) {
      const m = new RegExp(`^${TAG}((\\d+)-\\d+)$`).exec(n);
      if (m) ids.set(m[1]!, Number(m[2]));
    }
  }
  return [...ids].map(([id, pid]) => ({ id, pid }));
}

/** Removes /run/docker etc. that labs created, once no lab of a live process needs them as mount points. */
function removeCreatedDirsIfUnused(): void {
  if (labIds().some((l) => alive(l.pid))) return;
  let dirs: string[];
  try {
    dirs = fs.readFileSync(CREATED_DIRS_FILE, 'utf8').split('\n').filter(Boolean);
  } catch {
    return;
  }
  for (const d of dirs.sort((a, b) => b.length - a.length))
    try {
      fs.rmdirSync(d);
    } catch {
      /* in use or not empty */
    }
  fs.rmSync(CREATED_DIRS_FILE, { force: true });
}

function ensureRunDir(dir: string): void {
  if (fs.existsSync(dir)) return;
  fs.mkdirSync(dir, { recursive: true });
  fs.appendFileSync(CREATED_DIRS_FILE, `${dir}\n`);
}

/** Removes leftovers of labs whose creating process is gone. */
export async function sweepStaleLabs(): Promise<string[]> {
  const stale = labIds()
    .filter((l) => !alive(l.pid))
    .map((l) => l.id);
  for (const id of stale) removeLabResidueSync(id);
  // Cgroups can outlive the directories (a crash between the two removals).
  const orphanCgroups = fs.existsSync(CGROUP_ROOT)
    ? fs.readdirSync(CGROUP_ROOT).flatMap((s) => {
        try {
          return fs.readdirSync(path.join(CGROUP_ROOT, s));
        } catch {
          return [];
        }
      })
    : [];
  for (const n of new Set(orphanCgroups)) {
    const m = new RegExp(`^${TAG}((\\d+)-\\d+)-`).exec(n);
    if (m && !alive(Number(m[2])) && !stale.includes(m[1]!)) {
      removeLabResidueSync(m[1]!);
      stale.push(m[1]!);
    }
  }
  await sweepStaleNetns();
  removeCreatedDirsIfUnused();
  return stale;
}

/** What remains of labs of `pid` (default: this process) outside namespaces; all empty after destroy(). */
export function labResidue(pid = process.pid): {
  dirs: string[];
  mounts: string[];
  processes: number[];
  cgroups: string[];
} {
  const mine = labIds()
    .filter((l) => l.pid === pid)
    .map((l) => l.id);
  const prefix = `${TAG}${pid}-`;
  return {
    dirs: mine.flatMap((id) => [path.join(TMP, TAG + id), path.join('/run', TAG + id)]).filter((d) => fs.existsSync(d)),
    mounts: mountPoints().filter((m) => m.includes(`/${prefix}`)),
    processes: pidsMentioning(`${TMP}/${prefix}`),
    cgroups: fs.existsSync(CGROUP_ROOT)
      ? fs.readdirSync(CGROUP_ROOT).flatMap((s) => {
          try {
            return fs
              .readdirSync(path.join(CGROUP_ROOT, s))
              .filter((n) => n.startsWith(prefix))
              .map((n) => path.join(CGROUP_ROOT, s, n));
          } catch {
            return [];
          }
        })
      : [],
  };
}

/** One simulated host: a namespace whose eth0 is a port of the LAN switch, optionally with its own dockerd. */
export class LabHost {
  readonly name: string;
  readonly ipv4: string;
  readonly ipv6: string | undefined;
  mac = '';
  /** Docker labs: the host's directory, its persistent mount namespace, and where its plugins put sockets. */
  readonly dir: string;
  readonly mountNs: string;
  readonly pluginDir: string;
  readonly dockerSocket: string;
  readonly daemonJson: string;
  dockerd: ChildProcess | undefined;
  /** The engine this host runs; `useEngine` swaps it (an upgrade: the next startDockerd runs the new one). */
  engine!: Engine;
  private dockerdExited: Promise<void> = Promise.resolve();

  constructor(
    readonly lab: Lab,
    readonly index: number,
    readonly ns: TestNetns,
  ) {
    this.name = `h${index}`;
    this.ipv4 = `198.18.15.${10 + index}`;
    this.ipv6 = lab.ipv6 ? `2001:db8:15::${10 + index}` : undefined;
    this.dir = path.join(lab.dir, this.name);
    this.mountNs = path.join(lab.runDir, `${this.name}.mnt`);
    this.pluginDir = path.join(this.dir, 'plugins');
    this.dockerSocket = path.join(this.dir, 'docker.sock');
    this.daemonJson = path.join(this.dir, 'daemon.json');
    if (lab.docker) this.engine = lab.engine;
  }

  /** Runs `e` from the next startDockerd on, over this host's data root (dockerd must be stopped). */
  useEngine(e: Engine): void {
    if (this.dockerd && this.dockerd.exitCode === null && this.dockerd.signalCode === null) {
      throw new Error(`${this.name}: stop dockerd before switching it to ${e.label}`);
    }
    this.engine = e;
  }

  /** Runs a command in the host: its network namespace, and with docker also its mount namespace. */
  exec(cmd: string, ...args: string[]): Promise<RunResult> {
    if (!this.lab.docker) return this.ns.exec(cmd, ...args);
    return run('nsenter', [`--net=${this.ns.path}`, `--mount=${this.mountNs}`, cmd, ...args]);
  }

  /** The docker CLI against this host's dockerd; never throws on a non-zero exit. */
  docker(...args: string[]): Promise<RunResult> {
    if (!this.lab.docker) throw new Error(`lab host ${this.name} has no dockerd: create the lab with docker: true`);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DOCKER_HOST: `unix://${this.dockerSocket}`,
      DOCKER_CONFIG: path.join(this.dir, 'cli'),
    };
    for (const k of ['DOCKER_CONTEXT', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH', 'DOCKER_API_VERSION']) delete env[k];
    return run(this.engine.cli, args, { env, timeoutMs: 120_000 });
  }

  /** A persistent mount namespace where /run/docker/plugins is this host's plugin dir (lab.md recipe). */
  async setUpMountNs(): Promise<void> {
    for (const d of ['data', 'exec', 'plugins', 'cli']) fs.mkdirSync(path.join(this.dir, d), { recursive: true });
    fs.writeFileSync(this.mountNs, '');
    await sh('unshare', `--mount=${this.mountNs}`, '--propagation', 'private', 'true');
    // Private tmpfs over /run/docker (plugin sockets, libnetwork state) and /run/containerd (so that dockerd
    // starts its own containerd instead of a system one, and shim sockets stay per host).
    const script = [
      ...PRIVATE_RUN_DIRS.map((d) => `mount -t tmpfs -o mode=0711,size=16m ${TAG}${this.lab.id} ${d}`),
      'mkdir /run/docker/plugins',
      `mount --bind ${this.pluginDir} /run/docker/plugins`,
    ].join(' && ');
    await sh('nsenter', `--mount=${this.mountNs}`, 'sh', '-ec', script);
  }

  async startDockerd(): Promise<void> {
    const log = fs.openSync(path.join(this.dir, 'dockerd.log'), 'a');
    const args = [
      `--net=${this.ns.path}`,
      `--mount=${this.mountNs}`,
      this.engine.dockerd,
      '--config-file',
      this.daemonJson,
      '--data-root',
      path.join(this.dir, 'data'),
      '--exec-root',
      path.join(this.dir, 'exec'),
      '-H',
      `unix://${this.dockerSocket}`,
      '--pidfile',
      path.join(this.dir, 'docker.pid'),
      '--cgroup-parent',
      `/${TAG}${this.lab.id}-${this.name}`,
      // A network created without --subnet must still stay inside the benchmark range.
      '--default-address-pool',
      'base=198.19.0.0/16,size=24',
      '--bridge=none',
      '--iptables=false',
      '--ip6tables=false',
      '--ip-forward=false',
      '--ip-masq=false',
    ];
    // nsenter execs dockerd without forking, so the child's pid is dockerd's. Detached: a Ctrl-C in the
    // terminal reaches only the test process, whose exit handler then stops dockerd in order.
    // TMPDIR: containerd inherits it and writes goroutine dumps there on SIGUSR1 (dockerd 20.10 sends one
    // before killing a containerd that fails its health check); without it, stray
    // /tmp/containerd.<pid>.stacks.log files appeared during a 4-host benchmark here.
    fs.mkdirSync(path.join(this.dir, 'tmp'), { recursive: true });
    // PATH: dockerd starts the containerd of its own release, which starts that release's shim.
    const env = { ...engineEnv(this.engine), TMPDIR: path.join(this.dir, 'tmp') };
    const child = spawn('nsenter', args, { detached: true, stdio: ['ignore', log, log], env });
    fs.closeSync(log);
    child.unref();
    this.dockerd = child;
    this.dockerdExited = new Promise((resolve) => child.once('exit', () => resolve()));
    const until = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`dockerd of ${this.name} exited: ${this.logTail()}`);
      const r = await this.docker('info', '--format', '{{.ServerVersion}}');
      if (r.code === 0 && r.stdout.trim()) return;
      if (Date.now() > until)
        throw new Error(
          `dockerd of ${this.name} did not answer docker info in 60 s: ${r.stderr.trim()} ${this.logTail()}`,
        );
      await sleep(50);
    }
  }

  logTail(): string {
    try {
      return fs.readFileSync(path.join(this.dir, 'dockerd.log'), 'utf8').trim().split('\n').slice(-5).join('\n');
    } catch {
      return '';
    }
  }

  /** Graceful part of the teardown: containers, dockerd, containerd and shims, then the mounts in the namespace. */
  async stopDocker(errors: unknown[]): Promise<void> {
    const child = this.dockerd;
    if (child && child.exitCode === null && child.signalCode === null) {
      // Removing (SIGKILL) containers first: on SIGTERM dockerd would give each one 10 s to stop.
      const ids = (await this.docker('ps', '-aq')).stdout.split('\n').filter(Boolean);
      if (ids.length) {
        const r = await this.docker('rm', '-f', ...ids);
        if (r.code !== 0) errors.push(new Error(`${this.name}: docker rm -f: ${r.stderr.trim()}`));
      }
      child.kill('SIGTERM');
      if (!(await within(this.dockerdExited, 15_000))) {
        errors.push(new Error(`dockerd of ${this.name} ignored SIGTERM for 15 s; killed`));
        child.kill('SIGKILL');
        await within(this.dockerdExited, 5000);
      }
    }
    // containerd normally exits with dockerd; shims, their containers and managed plugins may not.
    killAndWaitSync([...pidsMentioning(`${this.dir}/`), ...pidsRootedIn(`${this.dir}/`)]);
    if (fs.existsSync(this.mountNs) && mountPoints().includes(this.mountNs)) {
      const inner = await run('nsenter', [`--mount=${this.mountNs}`, 'cat', '/proc/self/mountinfo']);
      const targets = inner.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(' ')[4] ?? '')
        .filter((m) => PRIVATE_RUN_DIRS.some((d) => m === d || m.startsWith(`${d}/`)) || m.startsWith(`${this.dir}/`))
        .sort((a, b) => b.length - a.length);
      if (targets.length) {
        const r = await run('nsenter', [`--mount=${this.mountNs}`, 'umount', ...targets]);
        if (r.code !== 0) await run('nsenter', [`--mount=${this.mountNs}`, 'umount', '-l', ...targets]);
      }
      const r = await run('umount', [this.mountNs]);
      if (r.code !== 0) errors.push(new Error(`${this.name}: umount ${this.mountNs}: ${r.stderr.trim()}`));
    }
  }
}

const active = new Set<Lab>();
let labCounter = 0;
let sweeping: Promise<unknown> | undefined;

export class Lab {
  readonly id: string;
  readonly dir: string;
  readonly runDir: string;
  readonly hosts: LabHost[] = [];
  lan!: TestNetns;
  /** Milliseconds Lab.create and destroy() took. */
  createMs = 0;
  destroyMs = 0;
  private readonly extraNetns: TestNetns[] = [];
  private destroying: Promise<void> | undefined;

  private constructor(
    readonly docker: boolean,
    readonly ipv6: boolean,
    private readonly engineChoice?: Engine,
  ) {
    this.id = `${process.pid}-${++labCounter}`;
    this.dir = path.join(TMP, TAG + this.id);
    this.runDir = path.join('/run', TAG + this.id);
  }

  static async create(opts: LabOptions): Promise<Lab> {
    const t0 = performance.now();
    if (!Number.isInteger(opts.hosts) || opts.hosts < 1 || opts.hosts > 89)
      throw new RangeError('hosts: 1 to 89 (addresses .11 to .99)');
    if (opts.docker && dockerMissing()) throw new Error(`docker lab: ${dockerMissing()}`);
    await (sweeping ??= sweepStaleLabs()); // once per process; concurrent creates wait for the same sweep
    const lab = new Lab(!!opts.docker, !!opts.ipv6, opts.engine);
    // A directory of ours that exists already was left by an earlier process that had our pid.
    removeLabResidueSync(lab.id);
    active.add(lab);
    try {
      await lab.buildLan(opts.hosts);
      if (lab.docker) await lab.buildDocker();
    } catch (e) {
      await lab.destroy().catch(() => undefined);
      throw e;
    }
    lab.createMs = performance.now() - t0;
    return lab;
  }

  /** The engine new hosts run (docker labs only). */
  get engine(): Engine {
    if (this.engineChoice) return this.engineChoice;
    const e = selectedEngine();
    if (typeof e === 'string') throw new Error(`docker lab: ${e}`);
    return e;
  }

  /** A further namespace (a "container") removed with the lab. */
  async newNetns(label: string): Promise<TestNetns> {
    const ns = await TestNetns.create(`lab${this.id.split('-')[1]}-${label}`);
    this.extraNetns.push(ns);
    return ns;
  }

  /**
   * A LAN device: a namespace whose eth0 (MAC from labMac) is a veth into the LAN switch through port `port`,
   * removed with the lab. The caller gives it its addresses and brings eth0 up.
   */
  async lanDevice(label: string, port: string): Promise<TestNetns> {
    const ns = await this.newNetns(label);
    await this.routerExec(
      'ip',
      'link',
      'add',
      port,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'address',
      labMac(),
      'netns',
      ns.name,
    );
    await this.routerExec('ip', 'link', 'set', port, 'master', 'sw0', 'up');
    return ns;
  }

  /** Runs a command on the LAN's router (the namespace holding sw0). */
  routerExec(cmd: string, ...args: string[]): Promise<RunResult> {
    return this.lan.exec(cmd, ...args);
  }

  private async buildLan(n: number): Promise<void> {
    const k = this.id.split('-')[1];
    this.lan = await TestNetns.create(`lab${k}-lan`);
    const made = await Promise.allSettled(Array.from({ length: n }, (_, i) => TestNetns.create(`lab${k}-h${i + 1}`)));
    made.forEach((m, i) => {
      if (m.status === 'fulfilled') this.hosts.push(new LabHost(this, i + 1, m.value));
    });
    const failed = made.find((m): m is PromiseRejectedResult => m.status === 'rejected');
    if (failed) throw failed.reason;
    // Both veth ends are created in the LAN namespace; the host end moves (renamed eth0) into the host's.
    // One `ip -batch` per namespace: spawning ip costs 3 to 4 ms a call.
    const lan = [
      'link add sw0 type bridge mcast_snooping 0', // no querier on this LAN: snooping could drop ND traffic
      `addr add ${LAN.router4}/24 dev sw0`,
      ...(this.ipv6 ? [`addr add ${LAN.router6}/64 dev sw0 nodad`] : []),
      'link set sw0 up',
      ...this.hosts.flatMap((h) => [
        `link add p${h.index} type veth peer name ${h.name} address ${labMac()}`,
        `link set p${h.index} master sw0 up`,
        `link set ${h.name} netns ${h.ns.name} name eth0`,
      ]),
    ];
    await this.batch(this.lan.name, lan);
    await Promise.all(
      this.hosts.map(async (h) => {
        await this.batch(h.ns.name, [
          `addr add ${h.ipv4}/24 dev eth0`,
          ...(h.ipv6 ? [`addr add ${h.ipv6}/64 dev eth0 nodad`] : []),
          'link set eth0 up',
          `route add default via ${LAN.router4}`,
          ...(this.ipv6 ? [`route add default via ${LAN.router6}`] : []),
        ]);
        h.mac = (await ipJson<{ address: string }[]>(h.ns.name, 'link', 'show', 'eth0'))[0]!.address;
      }),
    );
  }

  private async batch(ns: string, cmds: string[]): Promise<void> {
    const r = await run('ip', ['-n', ns, '-batch', '-'], { input: cmds.join('\n') + '\n' });
    if (r.code !== 0) throw new Error(`ip -n ${ns} -batch failed: ${r.stderr.trim()}`);
  }

  private async buildDocker(): Promise<void> {
    // The image: busybox-static and applet links, imported into every host (no registry is reachable).
    const busybox = fs.realpathSync(which('busybox')!);
    if (!isStaticElf(busybox)) throw new Error(`${busybox} is dynamically linked: install busybox-static`);
    const img = path.join(this.dir, 'image');
    fs.mkdirSync(path.join(img, 'bin'), { recursive: true });
    fs.copyFileSync(busybox, path.join(img, 'bin', 'busybox'));
    for (const a of BUSYBOX_APPLETS) fs.symlinkSync('busybox', path.join(img, 'bin', a));
    const tar = path.join(this.dir, 'busybox.tar');
    await sh('tar', '-C', img, '-cf', tar, '.');
    // Our own config, not /etc/docker/daemon.json. The trust key: dockerd 20.10 writes /etc/docker/key.json
    // unless told otherwise (a config-file-only setting), and each host gets its own engine ID this way.
    for (const h of this.hosts) {
      fs.mkdirSync(h.dir, { recursive: true });
      fs.writeFileSync(h.daemonJson, JSON.stringify({ 'deprecated-key-path': path.join(h.dir, 'key.json') }) + '\n');
    }

    for (const d of PRIVATE_RUN_DIRS) ensureRunDir(d);
    fs.mkdirSync(this.runDir, { recursive: true });
    // The namespace files need a private mount to live on: on a shared one, each new mount namespace would
    // get a copy of the earlier ones' files (a loop the kernel refuses).
    await sh('mount', '--bind', this.runDir, this.runDir);
    await sh('mount', '--make-private', this.runDir);
    await Promise.all(
      this.hosts.map(async (h) => {
        await h.setUpMountNs();
        await h.startDockerd();
        const r = await h.docker('import', tar, 'busybox:local');
        if (r.code !== 0) throw new Error(`${h.name}: docker import: ${r.stderr.trim()}`);
      }),
    );
  }

  /** Idempotent; continues past errors and throws one error listing them all at the end. */
  destroy(): Promise<void> {
    this.destroying ??= this.doDestroy();
    return this.destroying;
  }

  private async doDestroy(): Promise<void> {
    const t0 = performance.now();
    const errors: unknown[] = [];
    if (this.docker) {
      await Promise.all(
        this.hosts.map((h) =>
          h.stopDocker(errors).catch((e) => {
            errors.push(e);
          }),
        ),
      );
    }
    try {
      removeLabResidueSync(this.id);
    } catch (e) {
      errors.push(e);
    }
    for (const ns of [...this.extraNetns, ...this.hosts.map((h) => h.ns), ...(this.lan ? [this.lan] : [])]) {
      await ns.delete().catch((e) => {
        errors.push(e);
      });
    }
    active.delete(this);
    try {
      removeCreatedDirsIfUnused();
    } catch (e) {
      errors.push(e);
    }
    const left = labResidue();
    const mine = (s: string) => s.includes(`${TAG}${this.id}`);
    if (left.dirs.some(mine) || left.mounts.some(mine) || left.cgroups.some(mine))
      errors.push(new Error(`lab ${this.id} left ${JSON.stringify(left)}`));
    this.destroyMs = performance.now() - t0;
    if (errors.length) throw new AggregateError(errors, `lab ${this.id} teardown: ${errors.map(String).join('; ')}`);
  }

  /** Destroys every lab of this process (a test file's after hook). */
  static async destroyAll(): Promise<void> {
    await Promise.allSettled([...active].map((l) => l.destroy()));
  }
}

// Last resort when the process ends without destroy(): kill, unmount and remove synchronously. Prepended so it
// runs before netns.ts deletes the namespaces. netns.ts turns SIGINT/SIGTERM into process.exit; the same here,
// in case that module changes.
process.prependListener('exit', () => {
  for (const lab of active) {
    for (const h of lab.hosts)
      if (h.dockerd?.pid)
        try {
          process.kill(h.dockerd.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
    try {
      removeLabResidueSync(lab.id);
    } catch {
      /* best effort */
    }
  }
  active.clear();
  try {
    removeCreatedDirsIfUnused();
  } catch {
    /* best effort */
  }
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
