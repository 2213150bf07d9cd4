// The two docker compose generations the compose tests run: v1, Debian 12's python docker-compose 1.29 (installed
// by .ci/run), and v2, the Go CLI plugin of Debian unstable, fetched and unpacked beside the current engine
// (apt.ts; nothing installed) and offered to the docker CLI through a lab host's DOCKER_CONFIG/cli-plugins, so
// that `docker compose ...` runs as users type it.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { aptUnpack } from './apt';
import { ENGINE_CACHE } from './engines';

export interface Compose {
  /** "compose 2.40.3", "compose 1.29.2". */
  readonly label: string;
  /** The command and leading arguments that stand for `docker compose` / `docker-compose`. */
  readonly argv: readonly string[];
}

const REFRESH_MS = 24 * 3600 * 1000;
const V2_DIR = path.join(ENGINE_CACHE, 'compose-v2');
const V2_PLUGIN = 'usr/libexec/docker/cli-plugins/docker-compose';

function version(file: string, ...args: string[]): string | undefined {
  try {
    const out = execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
    return /(\d+\.\d+\.\d+)/.exec(out)?.[1];
  } catch {
    return undefined;
  }
}

/** Debian 12's docker-compose 1.29, or why it is missing. */
export function composeV1(): Compose | string {
  const bin = '/usr/bin/docker-compose';
  const v = fs.existsSync(bin) ? version(bin, 'version', '--short') : undefined;
  if (!v) return 'docker-compose (v1) is not installed (apt-get install docker-compose)';
  return { label: `compose ${v}`, argv: [bin] };
}

/**
 * Debian unstable's compose v2 plugin binary, fetched into the engine cache when missing or a day old (a cached
 * copy is used when the refresh fails), or why it cannot be had (the test then fails: this is not a skip).
 */
export function ensureComposeV2(): { plugin: string; version: string } | string {
  const plugin = path.join(V2_DIR, 'root', V2_PLUGIN);
  const stamp = path.join(V2_DIR, 'fetched');
  const fresh = fs.existsSync(stamp) && Date.now() - fs.statSync(stamp).mtimeMs < REFRESH_MS;
  let why = '';
  if (!fresh) {
    const work = `${V2_DIR}.fetch`;
    try {
      aptUnpack(work, 'sid', ['docker-compose']);
      fs.writeFileSync(path.join(work, 'fetched'), '');
      fs.rmSync(V2_DIR, { recursive: true, force: true });
      fs.renameSync(work, V2_DIR);
    } catch (e) {
      fs.rmSync(work, { recursive: true, force: true });
      why = (e as Error).message;
    }
  }
  const v = fs.existsSync(plugin) ? version(plugin, 'version', '--short') : undefined;
  if (!v) return `no compose v2: ${why || `${plugin} does not run`}`;
  return { plugin, version: v };
}

/** Offers compose v2 to the docker CLI of a lab host whose DOCKER_CONFIG is `configDir`: `docker compose` works. */
export function composeV2For(configDir: string, plugin: string, v: string, cli: string): Compose {
  const dir = path.join(configDir, 'cli-plugins');
  fs.mkdirSync(dir, { recursive: true });
  fs.rmSync(path.join(dir, 'docker-compose'), { force: true });
  fs.symlinkSync(plugin, path.join(dir, 'docker-compose'));
  return { label: `compose ${v}`, argv: [cli, 'compose'] };
}
