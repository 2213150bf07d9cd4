// Fetching Debian packages without installing them: a private apt configuration (sources list, lists and
// archives under a work dir; nothing under /etc/apt, so no later `apt-get install` can pull from that suite)
// and `dpkg-deb -x` into <work>/root. Used for the current Docker engine (engines.ts) and compose v2 (compose.ts).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Downloads `packages` from Debian `suite` and unpacks them into `<work>/root`; `work` is emptied first and keeps
 * only root/ afterwards (lists and .deb files are tens of MB that nothing reads again). Returns each package's
 * version. Throws with apt's last words.
 */
export function aptUnpack(work: string, suite: string, packages: readonly string[]): Record<string, string> {
  fs.rmSync(work, { recursive: true, force: true });
  for (const d of ['lists/partial', 'archives/partial']) fs.mkdirSync(path.join(work, d), { recursive: true });
  fs.writeFileSync(
    path.join(work, 'sources.list'),
    `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian ${suite} main\n`,
  );
  const apt = [
    '-o',
    `Dir::Etc::SourceList=${work}/sources.list`,
    '-o',
    'Dir::Etc::SourceParts=/dev/null',
    '-o',
    `Dir::State::Lists=${work}/lists`,
    '-o',
    `Dir::Cache::Archives=${work}/archives`,
    '-o',
    `Dir::Cache=${work}`,
    // The download is unsandboxed (root writes into a root-owned dir); say so instead of warning at every fetch.
    '-o',
    'APT::Sandbox::User=root',
    '-qq',
  ];
  const ex = (cmd: string, args: string[], cwd?: string) =>
    execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 });
  try {
    ex('apt-get', [...apt, 'update']);
    ex('apt-get', [...apt, 'download', ...packages], work);
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    const why = (err.stderr ?? err.message).trim().split('\n').slice(-3).join(' ');
    throw new Error(`apt-get from Debian ${suite}: ${why}`, { cause: e });
  }
  const versions: Record<string, string> = {};
  for (const deb of fs.readdirSync(work).filter((f) => f.endsWith('.deb'))) {
    ex('dpkg-deb', ['-x', path.join(work, deb), path.join(work, 'root')]);
    const [name, version] = deb.split('_');
    versions[name!] = decodeURIComponent(version ?? '');
  }
  for (const f of fs.readdirSync(work))
    if (f !== 'root') fs.rmSync(path.join(work, f), { recursive: true, force: true });
  return versions;
}
