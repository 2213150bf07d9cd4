// The managed plugin in the lab: scripts/build-plugin.js run as a user runs it, inside a lab host (its network
// and mount namespaces, against its dockerd), and a real image registry (Debian's docker-registry, distribution
// 2.8) in a namespace of the lab's LAN, for `docker plugin push` and `docker plugin upgrade`.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Lab, type LabHost, which } from './lab';
import { run, type RunResult, sh } from './sh';

export const BUILD_SCRIPT = path.join(__dirname, '..', '..', '..', 'scripts', 'build-plugin.js');
export const REGISTRY = 'docker-registry';
const running = new Set<ChildProcess>();

/** Why the plugin's registry cannot run here, or undefined. */
export function registryMissing(): string | undefined {
  return which(REGISTRY) ? undefined : `${REGISTRY} is not installed (apt-get install docker-registry)`;
}

/** `node scripts/build-plugin.js ARGS` in the host, with its dockerd as DOCKER_HOST and its engine's CLI first. */
export function buildPlugin(host: LabHost, ...args: string[]): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DOCKER_HOST: `unix://${host.dockerSocket}`,
    DOCKER_CONFIG: path.join(host.dir, 'cli'),
    PATH: [path.dirname(host.engine.cli), process.env['PATH'] ?? '/usr/bin:/bin'].join(':'),
  };
  return run('nsenter', [`--net=${host.ns.path}`, `--mount=${host.mountNs}`, process.execPath, BUILD_SCRIPT, ...args], {
    env,
    timeoutMs: 300_000,
  });
}

/**
 * Makes the host's directory a shared mount in its mount namespace, as / is on a systemd host: a managed plugin
 * gets its mounts from dockerd's namespace as rslave copies, and sees the network namespaces dockerd mounts later
 * (under <exec-root>/netns) only through a shared mount. The lab's namespaces are private (lab.ts); this one is
 * shared only with mount namespaces made from it (the plugin's), never with the root's. dockerd must not run.
 */
export async function shareHostDir(host: LabHost): Promise<void> {
  await sh(
    'nsenter',
    `--mount=${host.mountNs}`,
    'sh',
    '-ec',
    `mount --rbind ${host.dir} ${host.dir}
mount --make-rshared ${host.dir}`,
  );
}

/** A docker-registry serving plain HTTP on `address`:5000 inside `netns` (a lab LAN device), storing in the lab. */
export class Registry {
  private logs: string[] = [];

  private constructor(
    private readonly child: ChildProcess,
    readonly address: string,
  ) {
    child.stderr!.on('data', (b: Buffer) => this.logs.push(b.toString()));
    child.stdout!.on('data', (b: Buffer) => this.logs.push(b.toString()));
  }

  /** host:port, for image references and dockerd's insecure-registries. */
  get endpoint(): string {
    return `${this.address}:5000`;
  }

  static async start(lab: Lab, netnsPath: string, address: string): Promise<Registry> {
    const dir = path.join(lab.dir, 'registry');
    fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
    const config = path.join(dir, 'config.yml');
    fs.writeFileSync(
      config,
      [
        'version: 0.1',
        'log:',
        '  level: info',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${path.join(dir, 'data')}`,
        'http:',
        `  addr: ${address}:5000`,
        '',
      ].join('\n'),
    );
    // The config path names the lab dir, so a lab teardown after a crash finds and ends this process too.
    const child = spawn('nsenter', [`--net=${netnsPath}`, which(REGISTRY)!, 'serve', config], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    child.once('exit', () => running.delete(child));
    const r = new Registry(child, address);
    for (const until = Date.now() + 20_000; !r.text().includes('listening on');) {
      if (child.exitCode !== null || Date.now() > until) throw new Error(`${REGISTRY} did not listen: ${r.text()}`);
      await new Promise((res) => setTimeout(res, 50));
    }
    return r;
  }

  text(): string {
    return this.logs.join('');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const done = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGKILL');
    await done;
  }
}

process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

/** The host's dockerd log from byte `from` on (a managed plugin's output lands there, tagged plugin=<id>). */
export function dockerdLog(host: LabHost, from = 0): string {
  try {
    return fs.readFileSync(path.join(host.dir, 'dockerd.log')).subarray(from).toString();
  } catch {
    return '';
  }
}

export const dockerdLogSize = (host: LabHost): number => {
  try {
    return fs.statSync(path.join(host.dir, 'dockerd.log')).size;
  } catch {
    return 0;
  }
};
