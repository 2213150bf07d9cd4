// The compiled kernel tests, run again under a stock Debian kernel in a VM (test/lab/vm.ts), where dummy,
// 802.1q vlan and ipvlan exist. MACNET_REQUIRE_KINDS turns a missing kind into a failure there, so this test
// insists on: exit code 0, no failure, no skip, and passing tests that name dummy, vlan and ipvlan.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { flatten, parseTap, type TapTest } from '../lab/tap';
import { projectRoot, runInVm, vmAvailable } from '../lab/vm';

const REQUIRED_KINDS = ['dummy', 'vlan', 'ipvlan'];
// How a test's name shows it exercises a kind: whole words, so "ipvlan" or "macvlan" does not count as "vlan".
const MENTIONS: Record<string, RegExp> = { dummy: /\bdumm(y|ies)\b/i, vlan: /\bvlans?\b/i, ipvlan: /\bipvlans?\b/i };

/**
 * dist/test/kernel/**\/*.test.js relative to the project root, without the pure codec tests under nl/, plus
 * the network driver's kernel tests (vlan parents, dummy parents, ipvlan networks and ipvlan host access need
 * this kernel too), and doctor's link-kind checks (every kind reported working, the ipvlan parent case).
 */
function kernelTestFiles(): string[] {
  // For developing this harness against scratch tests: a comma-separated list replaces the discovery.
  if (process.env.MACNET_VM_TEST_FILES) return process.env.MACNET_VM_TEST_FILES.split(',').filter(Boolean);
  const base = path.join(projectRoot, 'dist', 'test', 'kernel');
  const walk = (dir: string): string[] =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) return p === path.join(base, 'nl') ? [] : walk(p);
      return e.name.endsWith('.test.js') ? [path.relative(projectRoot, p)] : [];
    });
  // The driver's kernel tests: vlan/dummy parents and ipvlan networks, and host access on ipvlan.
  const drivers = [
    ...['driver.test.js', 'host-access.test.js', 'lan-ipvlan.test.js'].map((f) =>
      path.join('dist', 'test', 'drivers', f),
    ),
    // In this same boot rather than one of its own: a boot costs about a minute under TCG.
    path.join('dist', 'test', 'doctor', 'live-kernel.test.js'),
  ];
  return [
    ...(fs.existsSync(base) ? walk(base).sort() : []),
    ...drivers.filter((d) => fs.existsSync(path.join(projectRoot, d))),
  ];
}

const passed = (t: TapTest) => t.ok && !t.directive;

/** Mirrors a VM test as a subtest here, so a failure or a skip over there is a failure by name here. */
async function report(t: TestContext, vt: TapTest): Promise<void> {
  await t.test(vt.name, async (st) => {
    for (const c of vt.children) await report(st, c);
    assert.ok(vt.ok, `failed in the VM:\n${vt.diagnostic}`);
    assert.ok(!vt.directive, `${vt.directive?.kind} in the VM: ${vt.directive?.reason}`);
  });
}

test('kernel and driver tests pass under a stock kernel in a VM, dummy, vlan and ipvlan included', async (t) => {
  const avail = vmAvailable();
  if (!avail.ok) {
    t.skip(avail.reason);
    return;
  }
  const files = kernelTestFiles();
  assert.ok(files.length > 0, 'no compiled kernel tests under dist/test/kernel: run `npx tsc -p .` first');
  const r = await runInVm({
    // The host's own node binary: the guest runs the host's files. One file at a time, as test/run.js does on the
    // host: the files share the guest's kernel.
    command: [process.execPath, '--test', '--test-reporter=tap', '--test-concurrency=1', ...files],
    env: { MACNET_IN_VM: '1', MACNET_REQUIRE_KINDS: REQUIRED_KINDS.join(',') },
    timeoutMs: 10 * 60_000,
  });
  t.diagnostic(`VM run: boot ${r.timing.bootMs} ms, tests ${r.timing.commandMs} ms, total ${r.timing.totalMs} ms`);
  const { tests, summary } = parseTap(r.stdout);
  const all = flatten(tests);
  let ok = false;
  try {
    for (const vt of tests) await report(t, vt);
    assert.ok(tests.length > 0, 'the VM run reported no tests');
    assert.equal(r.exitCode, 0, `node --test exited ${r.exitCode} in the VM`);
    assert.equal(summary.fail, 0, 'failed tests in the VM');
    assert.equal(summary.cancelled ?? 0, 0, 'cancelled tests in the VM');
    assert.equal(
      summary.skipped,
      0,
      `skipped tests in the VM: ${all
        .filter((x) => x.directive)
        .map((x) => x.name)
        .join('; ')}`,
    );
    for (const kind of REQUIRED_KINDS) {
      const named = all.filter((x) => MENTIONS[kind]!.test(x.name));
      assert.ok(named.length > 0, `no VM test names the ${kind} link kind`);
      assert.ok(
        named.every(passed),
        `not all ${kind} tests passed: ${named
          .filter((x) => !passed(x))
          .map((x) => x.name)
          .join('; ')}`,
      );
    }
    ok = all.every(passed);
  } finally {
    if (!ok)
      process.stderr.write(`--- the VM's TAP output ---\n${r.stdout}\n--- the VM's stderr ---\n${r.stderr}\n---\n`);
  }
});
