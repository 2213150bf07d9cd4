// What the network-manager checks share: the links macnet makes in the host's namespace (as samples to match
// configuration against), shell-style globs, key files (NetworkManager.conf and systemd's .network are both
// "[Section] key=value"), and whether a daemon runs (by its /proc/PID/comm).
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * One link of each family macnet makes in the host's namespace, named as macnet names them: probe links
 * (src/lan/probe-links.ts, mnp + 10 hex), host-access links (src/drivers/host-access.ts, mnh + 10 hex) and
 * endpoint links before Docker moves them into the container (src/drivers/endpoint.ts, mn + 11 hex). Their kind
 * is the network's (macvlan or ipvlan), so both are tried. test/doctor/managers.test.ts checks the names
 * against those modules' patterns.
 */
export const MACNET_LINKS: readonly { readonly family: string; readonly name: string }[] = [
  { family: 'probe', name: 'mnp0123456789' },
  { family: 'host-access', name: 'mnh0123456789' },
  { family: 'endpoint', name: 'mn0123456789a' },
];
export const MACNET_LINK_KINDS: readonly string[] = ['macvlan', 'ipvlan'];
/** The one glob that covers every name above: what the fixes write. */
export const MACNET_GLOB = 'mn*';

/** fnmatch(3) without flags: `*`, `?`, `[...]` with `!` or `^` negation; a backslash quotes. */
export function glob(pattern: string, name: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '\\' && i + 1 < pattern.length) re += escape(pattern[++i]!);
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        let set = pattern.slice(i + 1, end);
        if (set.startsWith('!') || set.startsWith('^')) set = `^${set.slice(1)}`;
        re += `[${set.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += escape(c);
  }
  try {
    return new RegExp(`${re}$`).test(name);
  } catch {
    return false;
  }
}

const escape = (c: string) => c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

export interface KeyFileEntry {
  readonly section: string;
  readonly key: string;
  /** '=' sets, '+=' appends to a list, '-=' removes from it (NetworkManager's extension). */
  readonly op: '=' | '+=' | '-=';
  readonly value: string;
  /** Which section block of the file (0 for the first header): two [device] headers are two sections. */
  readonly block: number;
}

/** The entries of a key file in order; comments (#, ;) and lines outside a section are skipped. */
export function parseKeyFile(text: string): KeyFileEntry[] {
  const out: KeyFileEntry[] = [];
  let section = '';
  let block = -1;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const head = /^\[(.+)\]$/.exec(line);
    if (head) {
      section = head[1]!.trim();
      block++;
      continue;
    }
    const kv = /^([^=]+?)\s*([+-]?=)\s*(.*)$/.exec(line);
    if (!kv || section === '') continue;
    out.push({ section, key: kv[1]!.trim(), op: kv[2] as KeyFileEntry['op'], value: kv[3]!.trim(), block });
  }
  return out;
}

/** The text of a file, undefined when it cannot be read; a link to /dev/null (a masked file) reads as ''. */
export function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** The names in a directory that end in `suffix`, sorted as systemd and NetworkManager sort them (bytewise). */
export function listDir(dir: string, suffix: string): string[] {
  try {
    return fs
      .readdirSync(dir)
      .filter((n) => n.endsWith(suffix))
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  } catch {
    return [];
  }
}

/**
 * The files of one kind across directories given in rising priority, each name once: a file in a later directory
 * shadows the same name in an earlier one (systemd's /usr/lib < /run < /etc, NetworkManager's conf.d likewise).
 * Sorted by name; each with the path that won.
 */
export function layered(dirs: readonly string[], suffix: string): { name: string; file: string }[] {
  const byName = new Map<string, string>();
  for (const d of dirs) for (const n of listDir(d, suffix)) byName.set(n, path.join(d, n));
  return [...byName.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, file]) => ({ name, file }));
}

/** The pid of a running process whose comm is `comm` (the kernel cuts comm at 15 bytes), or undefined. */
export function findProcess(procRoot: string, comm: string, pidFile?: string): number | undefined {
  const cut = comm.slice(0, 15);
  const isIt = (pid: string) => readText(path.join(procRoot, pid, 'comm'))?.trim() === cut;
  const fromFile = pidFile === undefined ? undefined : readText(pidFile)?.trim();
  if (fromFile && /^\d+$/.test(fromFile) && isIt(fromFile)) return Number(fromFile);
  let pids: string[];
  try {
    pids = fs.readdirSync(procRoot).filter((n) => /^\d+$/.test(n));
  } catch {
    return undefined;
  }
  const pid = pids.find(isIt);
  return pid === undefined ? undefined : Number(pid);
}
