// What the Docker-side figures (network-create, datapath) share: the docker CLI that throws on failure, the
// Engine API over a lab host's socket, and a macnet daemon per lab host the way users run it.
import * as http from 'node:http';
import { Daemon } from '../test/lab/daemon';
import type { LabHost } from '../test/lab/lab';
import { run } from '../test/lab/sh';

/** The docker CLI against the host's dockerd; throws with the CLI's stderr on a non-zero exit. */
export async function docker(host: LabHost, ...args: string[]): Promise<string> {
  const r = await host.docker(...args);
  if (r.code !== 0) throw new Error(`${host.name}: docker ${args.join(' ')}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout.trim();
}

/** One Engine API request on the host's dockerd socket, as the docker CLI makes it (no CLI process). */
export function engine(
  host: LabHost,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  const text = body === undefined ? '' : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath: host.dockerSocket,
        path,
        method,
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const raw = Buffer.concat(chunks).toString();
          let parsed: unknown = raw;
          try {
            parsed = raw ? JSON.parse(raw) : undefined;
          } catch {
            /* not JSON: keep the text */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

/**
 * `bin/macnet daemon` in the host's network namespace, its socket in the host's plugin dir (where that host's
 * dockerd discovers it). Log level info, the default users get (the harness would start it at debug).
 */
export function startMacnet(host: LabHost): Promise<Daemon> {
  return Daemon.start({ netns: host.ns.path, pluginDir: host.pluginDir, extraArgs: ['--log-level', 'info'] });
}

/** Milliseconds an awaited call took. */
export async function elapsedMs(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Runs a command in a network namespace given by path (nsenter, so /sys stays as it is); throws on failure. */
export async function inNetns(netnsPath: string, cmd: string, args: string[], input?: string): Promise<string> {
  const r = await run('nsenter', [`--net=${netnsPath}`, cmd, ...args], input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`nsenter --net=${netnsPath} ${cmd} ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

/**
 * Order of the methods in round `i`, a row of a Williams design: over n rounds (2n for an odd n) each method is
 * in each position equally often AND follows each other method equally often, so that an effect one run has on
 * the next (a previous connection still closing, conntrack, caches) falls on every method alike. A plain
 * rotation keeps the cyclic order fixed: one method would always follow the same other one.
 */
export function balancedOrder<T>(methods: readonly T[], i: number): T[] {
  const n = methods.length;
  const first: number[] = [];
  for (let k = 0, lo = 0, hi = n - 1; k < n; k++) first.push(k % 2 === 0 ? lo++ : hi--);
  // first = 0, n-1, 1, n-2, ... ; shifting it by r gives row r.
  const row = i % (n % 2 ? 2 * n : n);
  const order = first.map((x) => methods[(x + row) % n]!);
  return row >= n ? order.reverse() : order;
}
