// The README's examples as the tests run them: the fenced code blocks of one section, so that a test runs what a
// new user reads, and a change of either shows up as a failure.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { LabHost } from './lab';
import { run, type RunResult } from './sh';
import { projectRoot } from './vm';

/**
 * The fenced blocks (language, body) under the heading `heading` (exact text, any level), up to the next heading
 * of that level or higher.
 */
export function readmeBlocks(heading: string): { lang: string; body: string }[] {
  const lines = fs.readFileSync(path.join(projectRoot, 'README.md'), 'utf8').split('\n');
  const start = lines.findIndex((l) => /^#+ /.test(l) && l.replace(/^#+ /, '') === heading);
  if (start < 0) throw new Error(`README.md has no heading "${heading}"`);
  const level = /^#+/.exec(lines[start]!)![0].length;
  const blocks: { lang: string; body: string }[] = [];
  let open: { lang: string; body: string[] } | undefined;
  for (const l of lines.slice(start + 1)) {
    if (!open && /^#+ /.test(l) && /^#+/.exec(l)![0].length <= level) break;
    const fence = /^```(\S*)\s*$/.exec(l);
    if (fence && !open) open = { lang: fence[1]!, body: [] };
    else if (fence && open) {
      blocks.push({ lang: open.lang, body: open.body.join('\n') + '\n' });
      open = undefined;
    } else open?.body.push(l);
  }
  return blocks;
}

/**
 * Runs a README block as a user types it, in a lab host (its network and mount namespaces): one `sh -ex` script,
 * with the host's engine CLI as `docker` and DOCKER_HOST/DOCKER_CONFIG pointing at the host's dockerd. `cwd`:
 * where the script starts (a compose project); stdout and stderr come back joined in `out`.
 */
export async function runAsUser(
  host: LabHost,
  script: string,
  opts: { cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult & { out: string }> {
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), `mnt-${process.pid}-user-bin-`));
  try {
    fs.symlinkSync(host.engine.cli, path.join(bin, 'docker'));
    const env = {
      ...process.env,
      PATH: `${bin}:${process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`,
      DOCKER_HOST: `unix://${host.dockerSocket}`,
      DOCKER_CONFIG: path.join(host.dir, 'cli'),
    };
    const body = opts.cwd ? `cd ${opts.cwd}\n${script}` : script;
    const r = await run('nsenter', [`--net=${host.ns.path}`, `--mount=${host.mountNs}`, 'sh', '-exc', body], {
      env,
      timeoutMs: opts.timeoutMs ?? 180_000,
    });
    return { ...r, out: `${r.stdout}${r.stderr}` };
  } finally {
    fs.rmSync(bin, { recursive: true, force: true });
  }
}

/**
 * `macnet scan` as a user runs it: this checkout's bin/macnet in the host's namespaces, against its dockerd (the
 * daemon's socket is at the default /run/docker/plugins there).
 */
export function scanAsUser(host: LabHost, ...args: string[]): Promise<RunResult> {
  return run('nsenter', [
    `--net=${host.ns.path}`,
    `--mount=${host.mountNs}`,
    process.execPath,
    path.join(projectRoot, 'bin', 'macnet'),
    'scan',
    ...args,
    '--docker-host',
    `unix://${host.dockerSocket}`,
  ]);
}
