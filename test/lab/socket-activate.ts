// systemd's socket activation without systemd as PID 1: `systemd-socket-activate` (from Debian's systemd package)
// listens on a lab host's /run/docker/plugins/macnet.sock, as macnet.socket does, and at the first connection
// execs `macnet daemon` with the socket as fd 3 (LISTEN_FDS=1, LISTEN_PID). Unlike systemd it holds the socket
// only until the daemon exits; each start() is one activation.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type LabHost, which } from './lab';

const MAIN = path.join(__dirname, '..', '..', '..', 'bin', 'macnet');
const running = new Set<ChildProcess>();

export const ACTIVATOR = 'systemd-socket-activate';

/** Why socket activation cannot be tested here, or undefined. */
export function activatorMissing(): string | undefined {
  return which(ACTIVATOR) ? undefined : `${ACTIVATOR} is not installed (apt-get install systemd)`;
}

export interface ActivatorOptions {
  stateDir: string;
  /** The daemon starts this long after the first connection ("macnet starts late" at boot). */
  delayMs?: number;
}

export class SocketActivated {
  private logs: string[] = [];
  private exit: Promise<number | string | null>;

  private constructor(
    readonly host: LabHost,
    private readonly child: ChildProcess,
  ) {
    child.stderr!.on('data', (b: Buffer) => this.logs.push(b.toString()));
    this.exit = new Promise((r) => child.once('exit', (code, sig) => r(code ?? sig)));
  }

  /** The socket as the host's dockerd sees it (the host's plugin dir, seen from the root mount namespace). */
  get socket(): string {
    return path.join(this.host.pluginDir, 'macnet.sock');
  }

  /** Starts listening in the host's network and mount namespaces; resolves once the socket exists. */
  static async start(host: LabHost, o: ActivatorOptions): Promise<SocketActivated> {
    const daemon = [
      process.execPath,
      MAIN,
      'daemon',
      '--state-dir',
      o.stateDir,
      '--log-level',
      'debug',
      '--default-address-pool',
      'base=198.18.128.0/17,size=24',
    ];
    // sh execs the daemon in its own process, so LISTEN_PID (this pid) stays right after the delay.
    const cmd = o.delayMs ? ['sh', '-c', `sleep ${o.delayMs / 1000}; exec "$@"`, 'sh', ...daemon] : daemon;
    const child = spawn(
      'nsenter',
      [
        `--net=${host.ns.path}`,
        `--mount=${host.mountNs}`,
        which(ACTIVATOR)!,
        '-l',
        '/run/docker/plugins/macnet.sock',
        ...cmd,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    running.add(child);
    child.once('exit', () => running.delete(child));
    const a = new SocketActivated(host, child);
    for (const until = Date.now() + 10_000; !a.text().includes('Listening on');) {
      if (child.exitCode !== null || Date.now() > until) throw new Error(`${ACTIVATOR} did not listen: ${a.text()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return a;
  }

  /** Whether the activator (or the daemon it became) has exited. */
  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  text(): string {
    return this.logs.join('');
  }

  /** The daemon's JSON log lines (the activator's own lines are plain text). */
  logLines(): Record<string, unknown>[] {
    return this.text()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** Whether the daemon has been started (the activator execs it at the first connection). */
  activated(): boolean {
    return this.text().includes('Execing ');
  }

  ready(): Record<string, unknown> | undefined {
    return this.logLines().find((l) => l.msg === 'ready');
  }

  async waitReady(timeoutMs = 20_000): Promise<Record<string, unknown>> {
    for (const until = Date.now() + timeoutMs; ;) {
      const r = this.ready();
      if (r) return r;
      if (this.child.exitCode !== null || Date.now() > until) throw new Error(`daemon not ready: ${this.text()}`);
      await new Promise((res) => setTimeout(res, 20));
    }
  }

  /** Signals the process (the activator, or the daemon it became) and resolves with its exit code or signal. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<number | string | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exit;
  }
}

process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

/** A fresh state dir for an activated daemon, under /tmp with this process's tag; the caller removes it. */
export function tempStateDir(label: string): string {
  return fs.mkdtempSync(path.join('/tmp', `mnt-${process.pid}-${label}-`));
}
