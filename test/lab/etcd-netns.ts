// Test files that start etcd members of their own run inside a network namespace of their own: the file registers
// one test that re-runs the file under nsenter with the namespace and the members' addresses (on its lo) in the
// environment (NETNS_ENV, ADDRS_ENV of ./etcd.ts), and kills whatever is left in the namespace afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { ADDRS_ENV, NETNS_ENV } from './etcd';
import { TestNetns } from './netns';
import { run, sh } from './sh';

/** True inside the namespace (run the tests); outside, registers the test that runs `file` there. */
export function inOwnNetns(label: string, file: string, addrs: readonly string[], limitMs = 5 * 60_000): boolean {
  if (process.env[NETNS_ENV] !== undefined) return true;
  test(`${label}, run inside a network namespace of their own`, async () => {
    const ns = await TestNetns.create(label.split(' ')[0]!.toLowerCase());
    try {
      for (const a of addrs) await sh('ip', '-n', ns.name, 'addr', 'add', `${a}/32`, 'dev', 'lo');
      await sh('ip', '-n', ns.name, 'link', 'set', 'lo', 'up');
      const result = await new Promise<number | string>((resolve) => {
        const child = spawn(
          'nsenter',
          [`--net=${ns.path}`, process.execPath, '--enable-source-maps', '--test-reporter=spec', file],
          { stdio: 'inherit', env: { ...process.env, [NETNS_ENV]: ns.name, [ADDRS_ENV]: addrs.join(',') } },
        );
        const limit = setTimeout(() => child.kill('SIGKILL'), limitMs);
        child.on('exit', (code, signal) => {
          clearTimeout(limit);
          resolve(code ?? signal ?? 'unknown');
        });
      });
      assert.equal(result, 0, 'a test inside the namespace failed: see its output above');
    } finally {
      const pids = (await run('ip', ['netns', 'pids', ns.name])).stdout.split(/\s+/).filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await ns.delete();
    }
  });
  return false;
}
