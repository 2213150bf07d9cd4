// A real `macnet daemon` process for tests and benchmarks, started inside a lab namespace, and a raw
// plugin-protocol client that speaks to its socket the way dockerd does.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_POOLS, poolOption } from '../../src/ipam/pools';

// The command users run: bin/macnet from the checkout.
const MAIN = path.join(__dirname, '..', '..', '..', 'bin', 'macnet');
const running = new Set<ChildProcess>();
/** Temp dirs of daemons not yet remove()d: an interrupted test or bench must not leave them behind. */
const liveDirs = new Set<string>();

export interface DaemonOptions {
  /** Network namespace path the daemon runs in (a lab host's). */
  netns: string;
  /**
   * Mount namespace file to run in as well (a lab host's `mountNs`): Docker's SandboxKey paths
   * (/var/run/docker/netns/...) exist only in dockerd's mount namespace, and a plugin shares it in production.
   */
  mountNs?: string;
  /** Directory for macnet.sock (a lab host's private plugin dir); default: a fresh temp dir. */
  pluginDir?: string;
  /** Default: a fresh temp dir, removed by `remove()`. Pass the same dir again to simulate a restart. */
  stateDir?: string;
  extraArgs?: string[];
  /** Extra environment (e.g. the test-only MACNET_TEST_FAULTS=1, docs/driver.md "Fatal errors"). */
  env?: Record<string, string>;
  /** Another build's bin/macnet (an older release, test/lab/v010.ts); default: this checkout's. */
  main?: string;
}

export class Daemon {
  private child: ChildProcess | undefined;
  private logs: string[] = [];
  readonly socket: string;

  private constructor(
    readonly opts: Required<Omit<DaemonOptions, 'extraArgs' | 'mountNs' | 'env' | 'main'>> & {
      extraArgs: string[];
      mountNs?: string;
      env?: Record<string, string>;
      main?: string;
    },
    private readonly ownDirs: string[],
  ) {
    this.socket = path.join(opts.pluginDir, 'macnet.sock');
  }

  static async start(o: DaemonOptions): Promise<Daemon> {
    const own: string[] = [];
    const tmp = (p: string) => {
      const d = fs.mkdtempSync(path.join(os.tmpdir(), `mnt-${process.pid}-${p}-`));
      own.push(d);
      liveDirs.add(d);
      return d;
    };
    const d = new Daemon(
      {
        netns: o.netns,
        ...(o.mountNs && { mountNs: o.mountNs }),
        pluginDir: o.pluginDir ?? tmp('plugins'),
        stateDir: o.stateDir ?? tmp('state'),
        extraArgs: o.extraArgs ?? [],
        ...(o.env && { env: o.env }),
        ...(o.main && { main: o.main }),
      },
      own,
    );
    await d.restart();
    return d;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Every line written to stderr so far, as written (a line that is not JSON shows here, not in logLines). */
  rawLines(): string[] {
    return this.logs
      .join('')
      .split('\n')
      .filter((l) => l !== '');
  }

  /** Exit code (or signal) once the process has exited by itself; undefined while it runs. */
  exited(): Promise<number | string | null> {
    const c = this.child;
    if (!c) return Promise.resolve(null);
    if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve(c.exitCode ?? c.signalCode);
    return new Promise((r) => c.once('exit', (code, sig) => r(code ?? sig)));
  }

  /** All log lines so far, parsed. */
  logLines(): Record<string, unknown>[] {
    return this.logs
      .join('')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** Starts (again) with the same dirs; resolves when the daemon logs "ready". */
  async restart(): Promise<void> {
    if (this.child) throw new Error('daemon still running');
    const args = [
      `--net=${this.opts.netns}`,
      ...(this.opts.mountNs ? [`--mount=${this.opts.mountNs}`] : []),
      process.execPath,
      this.opts.main ?? MAIN,
      'daemon',
      '--plugin-dir',
      this.opts.pluginDir,
      '--state-dir',
      this.opts.stateDir,
      '--log-level',
      'debug',
      ...DEFAULT_POOLS.flatMap((p) => ['--default-address-pool', poolOption(p)]),
      ...this.opts.extraArgs,
    ];
    const env = { ...process.env, ...this.opts.env };
    const child = spawn('nsenter', args, { stdio: ['ignore', 'ignore', 'pipe'], env });
    const from = this.logs.length; // an earlier run's "ready" must not count
    this.child = child;
    running.add(child);
    child.on('exit', () => running.delete(child));
    child.stderr!.on('data', (b: Buffer) => this.logs.push(b.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`daemon not ready in 10 s:\n${this.logs.join('')}`)), 10_000);
      const check = () => {
        if (this.logs.slice(from).join('').includes('"msg":"ready"')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stderr!.on('data', check);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`daemon exited with ${code} before ready:\n${this.logs.join('')}`));
      });
    });
  }

  /** SIGTERM (graceful) or SIGKILL; resolves with the exit code or signal once the process is gone. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<number | string | null> {
    const c = this.child;
    if (!c) return null;
    this.child = undefined;
    if (c.exitCode !== null || c.signalCode !== null) return c.exitCode ?? c.signalCode;
    const done = new Promise<number | string | null>((r) => c.once('exit', (code, sig) => r(code ?? sig)));
    c.kill(signal);
    return done;
  }

  /** Stops and removes the temp dirs this object created. Idempotent. */
  async remove(): Promise<void> {
    await this.stop('SIGKILL');
    for (const d of this.ownDirs.splice(0)) {
      fs.rmSync(d, { recursive: true, force: true });
      liveDirs.delete(d);
    }
  }

  call(method: string, body: unknown = {}): Promise<{ status: number; body: Record<string, unknown> }> {
    return pluginCall(this.socket, method, body);
  }
}

/** One plugin call as dockerd makes it: POST /<method> with a JSON body. */
export function pluginCall(
  socketPath: string,
  method: string,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath,
        path: `/${method}`,
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          Accept: 'application/vnd.docker.plugins.v1.2+json',
          'Content-Length': Buffer.byteLength(text),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const raw = Buffer.concat(chunks).toString();
          resolve({ status: res.statusCode ?? 0, body: raw ? (JSON.parse(raw) as Record<string, unknown>) : {} });
        });
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
  for (const d of liveDirs) fs.rmSync(d, { recursive: true, force: true });
});
