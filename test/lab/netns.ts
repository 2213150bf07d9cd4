// Throwaway network namespaces for tests and benchmarks, named so that a later run can tell which are
// left over from a dead process: "mnt-<pid>-<label>". Nothing here touches the root namespace's links.
import * as fs from 'node:fs';
import { run, sh } from './sh';

export const NETNS_PREFIX = 'mnt-';

const created = new Set<string>();
let counter = 0;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The names of all namespaces under /run/netns. */
export function listNetns(): string[] {
  try {
    return fs.readdirSync('/run/netns');
  } catch {
    return [];
  }
}

/** Removes namespaces left by test processes that no longer run (an interrupted earlier run). */
export async function sweepStaleNetns(): Promise<string[]> {
  const removed: string[] = [];
  for (const name of listNetns()) {
    const m = /^mnt-(\d+)-/.exec(name);
    if (m && !alive(Number(m[1]))) {
      await run('ip', ['netns', 'del', name]);
      removed.push(name);
    }
  }
  return removed;
}

export class TestNetns {
  readonly path: string;
  private constructor(readonly name: string) {
    this.path = `/run/netns/${name}`;
  }

  /** A new namespace with lo up. Registered for removal at process exit as a last resort. */
  static async create(label = 'ns'): Promise<TestNetns> {
    const name = `${NETNS_PREFIX}${process.pid}-${label}-${++counter}`;
    await sh('ip', 'netns', 'add', name);
    created.add(name);
    await sh('ip', '-n', name, 'link', 'set', 'lo', 'up');
    return new TestNetns(name);
  }

  /** Runs a command inside the namespace (no mount namespace change: unlike `ip netns exec`, keeps /sys). */
  exec(cmd: string, ...args: string[]) {
    return run('nsenter', [`--net=${this.path}`, cmd, ...args]);
  }

  /** Idempotent: links inside go with the namespace. */
  async delete(): Promise<void> {
    if (!created.has(this.name)) return;
    await run('ip', ['netns', 'del', this.name]);
    created.delete(this.name);
  }
}

/** Deletes every namespace this process created and has not deleted yet. */
export async function deleteAllNetns(): Promise<void> {
  for (const name of [...created]) {
    await run('ip', ['netns', 'del', name]);
    created.delete(name);
  }
}

// Last resort when a test file ends without its after() hook (a crash, a signal): synchronous removal.
process.on('exit', () => {
  for (const name of created) {
    try {
      require('node:child_process').execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  }
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => process.exit(130));
}
