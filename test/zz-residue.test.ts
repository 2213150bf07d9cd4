// Runs last: node's test runner orders files by path, hence the zz- prefix (test/run.js also lists it last).
// After the whole suite, the machine must be as the suite found it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { added, snapshot, type Snapshot } from './lab/residue';

test('the test suite left no namespace, root link, mount or process behind', async (t) => {
  const file = process.env.MACNET_RESIDUE_BASELINE;
  if (!file) {
    t.skip('no baseline: run the suite with `npm test` (test/run.js records the state before the first test)');
    return;
  }
  const before = JSON.parse(fs.readFileSync(file, 'utf8')) as Snapshot;
  // Processes end asynchronously after their test's teardown; give them a moment before judging.
  let diff = added(before, snapshot());
  for (let i = 0; i < 20 && Object.keys(diff).length; i++) {
    await new Promise((r) => setTimeout(r, 250));
    diff = added(before, snapshot());
  }
  assert.deepEqual(diff, {}, `left behind: ${JSON.stringify(diff, null, 2)}`);
});
