// ipvlan and 802.1q end to end with a real dockerd (issue 17), under the stock Debian kernel in the VM
// (test/lab/vm.ts), where both link kinds exist. The VM boots once per engine: test/run.js runs this Docker test
// file once per engine with MACNET_ENGINE set, which goes into the guest; the guest builds the lab of
// test/lab/lab.ts (two hosts, a dockerd of that engine and a macnet daemon each) and runs the scenarios of
// test/vm/docker-guest/ with node's TAP reporter. Here each expectation is a test of its own, mirroring the guest
// test of the same id: a failure, a skip or a missing test in the guest fails it, with the guest's words.
//
// The guest: 2048 MiB (two dockerd + containerd pairs, their shims and containers, two macnet daemons, all on
// tmpfs), one vCPU under TCG, the host's root as its root (switch_root, so that nsenter --mount works), overlay
// loaded for dockerd's overlay2 storage driver.
import { before } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { selectedEngineId } from '../lab/engines';
import { ENGINE, test } from '../lab/engine-test';
import { flatten, parseTap, type TapTest } from '../lab/tap';
import { runInVm, vmAvailable, type VmResult } from '../lab/vm';
import { EXPECTATIONS, type ExpectationId, guestTestName } from './docker-guest/expectations';

const GUEST = path.join(__dirname, 'docker-guest', 'main.js');
const MEMORY_MIB = 2048;
/** Why the suite cannot run here (then every test skips with it; CI refuses such a skip). */
const MISSING = (() => {
  const vm = vmAvailable();
  if (!vm.ok) return vm.reason;
  return typeof ENGINE === 'string' ? ENGINE : undefined;
})();

let run: { r: VmResult; tests: TapTest[]; summary: Record<string, number> } | undefined;
let runError: unknown;

before(
  async () => {
    if (MISSING) return;
    try {
      const r = await runInVm({
        command: [process.execPath, '--enable-source-maps', '--test-reporter=tap', GUEST],
        env: { MACNET_IN_VM: '1', MACNET_ENGINE: selectedEngineId() },
        modules: ['overlay'],
        memoryMiB: MEMORY_MIB,
        realRoot: true,
        timeoutMs: 20 * 60_000,
      });
      const { tests, summary } = parseTap(r.stdout);
      run = { r, tests: flatten(tests), summary };
    } catch (e) {
      runError = e;
    }
  },
  { timeout: 25 * 60_000 },
);

/** The end of the guest's stderr (the lab's and daemons' complaints), for a failure message. */
const stderrTail = (r: VmResult) => r.stderr.split('\n').slice(-60).join('\n');

function guestRun(): NonNullable<typeof run> {
  if (!run) throw new Error(`the VM run failed: ${(runError as Error | undefined)?.message ?? 'no result'}`);
  return run;
}

for (const id of Object.keys(EXPECTATIONS) as ExpectationId[]) {
  test(`in the VM: ${guestTestName(id)}`, async (t) => {
    if (MISSING) return t.skip(MISSING);
    const { r, tests } = guestRun();
    const gt = tests.find((x) => x.name === guestTestName(id));
    assert.ok(gt, `the guest did not run this test (exit ${r.exitCode}); its stderr:\n${stderrTail(r)}`);
    t.diagnostic(gt.diagnostic.trim());
    assert.ok(gt.ok, `failed in the VM:\n${gt.diagnostic}\n--- the guest's stderr (tail) ---\n${stderrTail(r)}`);
    assert.equal(gt.directive, undefined, `${gt.directive?.kind} in the VM: ${gt.directive?.reason}`);
  });
}

test('in the VM: the guest ran exactly these tests, none failed or skipped; boot and suite times', async (t) => {
  if (MISSING) return t.skip(MISSING);
  const { r, tests, summary } = guestRun();
  t.diagnostic(
    `engine ${selectedEngineId()}: boot ${(r.timing.bootMs / 1000).toFixed(1)} s, guest suite ` +
      `${(r.timing.commandMs / 1000).toFixed(1)} s, total ${(r.timing.totalMs / 1000).toFixed(1)} s, ` +
      `guest memory ${MEMORY_MIB} MiB`,
  );
  let ok = false;
  try {
    assert.deepEqual(
      tests.map((x) => x.name).sort(),
      (Object.keys(EXPECTATIONS) as ExpectationId[]).map(guestTestName).sort(),
      'the guest tests are the expectations, one each',
    );
    assert.equal(r.exitCode, 0, `the guest's node exited ${r.exitCode}`);
    assert.deepEqual([summary.fail, summary.cancelled ?? 0, summary.skipped, summary.todo ?? 0], [0, 0, 0, 0]);
    ok = true;
  } finally {
    if (!ok) t.diagnostic(`--- the guest's TAP output ---\n${r.stdout}\n--- the guest's stderr ---\n${r.stderr}`);
  }
});
