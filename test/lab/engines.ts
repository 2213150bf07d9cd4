// The Docker engines the lab runs: "system", Debian 12's docker.io (20.10) from /usr, and "current", the newest
// docker.io of Debian's unstable suite that runs on this machine (28.x or later), unpacked into a cache that the
// tests manage.
//
// The current engine is fetched with a private apt configuration and unpacked with dpkg-deb -x (apt.ts): nothing
// is installed over the system's packages. It runs with the system's runc. The cache is not
// under /tmp or /run: the VM guest mounts tmpfs over those.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { aptUnpack } from './apt';

export type EngineId = 'system' | 'current';
export const ENGINE_IDS: readonly EngineId[] = ['system', 'current'];

export interface Engine {
  readonly id: EngineId;
  /** The daemon's version as `dockerd --version` prints it, without Debian's suffix: "28.5.2". */
  readonly version: string;
  /** "docker 28.5.2": what test names and reports carry. */
  readonly label: string;
  readonly dockerd: string;
  /** The CLI of the same release (flags such as --ipv4=false and --gw-priority need a current CLI). */
  readonly cli: string;
  /** Directories dockerd must find containerd and its shim in, ahead of PATH (empty for the system engine). */
  readonly path: readonly string[];
  /** Where it came from: "Debian 12 docker.io 20.10.24+dfsg1-1+deb12u1", "Debian sid docker.io 28.5.2+dfsg4-5". */
  readonly source: string;
  /** When the cache fetched it (current engine only), for the daily re-check. */
  readonly fetchedAt?: number;
}

export const ENGINE_CACHE = process.env['MACNET_ENGINE_CACHE'] ?? '/var/cache/macnet-test/engines';
/** Suites tried in order: the newest first; trixie (26.1) only when unstable's engine does not run here. */
const SUITES = [
  { suite: 'sid', min: 28 },
  { suite: 'trixie', min: 26 },
] as const;
/** How long a fetched engine is used before the suite is asked again for a newer one ("the suite moves on"). */
const REFRESH_MS = 24 * 3600 * 1000;
const PACKAGES = ['docker.io', 'docker-cli', 'containerd'];

const versionOf = (out: string) => /version v?(\d+\.\d+\.\d+)/.exec(out)?.[1];

function runs(file: string, ...args: string[]): string | undefined {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
  } catch {
    return undefined;
  }
}

/** Debian 12's engine, or why it is not usable. */
export function systemEngine(): Engine | string {
  const dockerd = ['/usr/sbin/dockerd', '/usr/bin/dockerd'].find((f) => fs.existsSync(f));
  if (!dockerd || !fs.existsSync('/usr/bin/docker')) return 'docker.io is not installed (apt-get install docker.io)';
  for (const bin of ['containerd', 'runc']) {
    if (!['/usr/bin', '/usr/sbin', '/bin', '/sbin'].some((d) => fs.existsSync(path.join(d, bin)))) {
      return `${bin} is not installed (apt-get install docker.io)`;
    }
  }
  const version = versionOf(runs(dockerd, '--version') ?? '');
  if (!version) return `${dockerd} --version did not run`;
  const pkg = runs('dpkg-query', '-W', '-f=${Version}', 'docker.io')?.trim();
  return Object.freeze({
    id: 'system',
    version,
    label: `docker ${version}`,
    dockerd,
    cli: '/usr/bin/docker',
    path: [],
    source: `system docker.io ${pkg ?? version}`,
  } satisfies Engine);
}

interface CacheRecord {
  suite: string;
  packages: Record<string, string>;
  fetchedAt: number;
  version: string;
}

function fromCache(dir: string): Engine | string {
  let rec: CacheRecord;
  try {
    rec = JSON.parse(fs.readFileSync(path.join(dir, 'engine.json'), 'utf8')) as CacheRecord;
  } catch {
    return `no engine in ${dir}`;
  }
  const root = path.join(dir, 'root');
  const e: Engine = {
    id: 'current',
    version: rec.version,
    label: `docker ${rec.version}`,
    dockerd: path.join(root, 'usr/sbin/dockerd'),
    cli: path.join(root, 'usr/bin/docker'),
    path: [path.join(root, 'usr/bin'), path.join(root, 'usr/sbin')],
    source: `Debian ${rec.suite} ${Object.entries(rec.packages)
      .map(([p, v]) => `${p} ${v}`)
      .join(', ')}`,
    fetchedAt: rec.fetchedAt,
  };
  return checkRuns(e) ?? Object.freeze(e);
}

/** Why an unpacked engine does not run on this machine, or undefined when dockerd, containerd and the CLI do. */
function checkRuns(e: Engine): string | undefined {
  const bins: [string, string][] = [
    [e.dockerd, '--version'],
    [e.cli, '--version'],
    [path.join(e.path[0]!, 'containerd'), '--version'],
    [path.join(e.path[0]!, 'containerd-shim-runc-v2'), '-v'],
  ];
  for (const [bin, flag] of bins) if (runs(bin, flag) === undefined) return `${bin} ${flag} does not run here`;
  if (!runs('runc', '--version') && !fs.existsSync('/usr/sbin/runc'))
    return 'runc is not installed (apt-get install runc)';
  return undefined;
}

/** Downloads and unpacks one suite's engine into `dir` (replacing what was there). Throws with apt's words. */
function fetchSuite(dir: string, suite: string): void {
  const work = `${dir}.fetch`;
  const packages = aptUnpack(work, suite, PACKAGES);
  const version = versionOf(runs(path.join(work, 'root/usr/sbin/dockerd'), '--version') ?? '') ?? '';
  const rec: CacheRecord = { suite, packages, fetchedAt: Date.now(), version };
  fs.writeFileSync(path.join(work, 'engine.json'), JSON.stringify(rec, null, 2) + '\n');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(work, dir);
}

const currentDir = () => path.join(ENGINE_CACHE, 'current');

/**
 * The current engine, fetched when the cache has none or its copy is older than a day. Returns the engine and
 * what was done, or a string saying why no current engine can be had (then the run must fail, not skip).
 */
export function ensureCurrentEngine(): { engine: Engine; note: string } | string {
  const dir = currentDir();
  const cached = fromCache(dir);
  const fetchedAt = typeof cached === 'string' ? 0 : (cached.fetchedAt ?? 0);
  if (typeof cached !== 'string' && Date.now() - fetchedAt < REFRESH_MS) {
    return { engine: cached, note: `cached in ${dir} (fetched ${new Date(fetchedAt).toISOString()})` };
  }
  const why: string[] = [];
  for (const { suite, min } of SUITES) {
    try {
      fetchSuite(dir, suite);
    } catch (e) {
      why.push((e as Error).message);
      continue;
    }
    const e = fromCache(dir);
    if (typeof e === 'string') {
      why.push(`Debian ${suite}: ${e}`);
      continue;
    }
    if (Number(e.version.split('.')[0]) < min) {
      why.push(`Debian ${suite}: docker ${e.version} is older than ${min}`);
      continue;
    }
    return {
      engine: e,
      note: `fetched from Debian ${suite} into ${dir}${why.length ? ` (after: ${why.join('; ')})` : ''}`,
    };
  }
  // No network now, but a copy that ran before: use it, and say so.
  if (typeof cached !== 'string')
    return { engine: cached, note: `cached copy used; refresh failed: ${why.join('; ')}` };
  fs.rmSync(dir, { recursive: true, force: true });
  return `no current Docker engine: ${why.join('; ')}`;
}

/** The engine of this test process: MACNET_ENGINE (system | current; test/run.js sets it per pass). */
export function selectedEngineId(): EngineId {
  const v = process.env['MACNET_ENGINE'] ?? 'system';
  if (v !== 'system' && v !== 'current') throw new Error(`MACNET_ENGINE=${v}: must be system or current`);
  return v;
}

/** An engine by id, from the system or the cache (never fetched here: test/run.js fetches before the tests). */
export function engine(id: EngineId = selectedEngineId()): Engine | string {
  return id === 'system' ? systemEngine() : fromCache(currentDir());
}

/** The environment dockerd of `e` runs with: its containerd and shim first in PATH. */
export function engineEnv(e: Engine, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const sys = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  return { ...env, PATH: [...e.path, ...(env['PATH'] ?? '').split(':').filter(Boolean), ...sys].join(':') };
}
