// One simulated host of the lab (lab.ts): a namespace whose eth0 is a port of the LAN switch, optionally with its
// own dockerd in a private mount namespace, stopped and cleaned without residue.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Engine, engineEnv } from './engines';
import {
  PRIVATE_RUN_DIRS,
  TAG,
  killAndWaitSync,
  mountPoints,
  pidsMentioning,
  pidsRootedIn,
  sleep,
  within,
} from './leftovers';
import type { Lab } from './lab';
import type { TestNetns } from './netns';
import { run, type RunResult, sh } from './sh';

/** The simulated LAN's addresses: its subnets and its router. */
export const LAN = {
  subnet4: '198.18.15.0/24',
  subnet6: '2001:db8:15::/64',
  router4: '198.18.15.1',
  router6: '2001:db8:15::1',
};

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
