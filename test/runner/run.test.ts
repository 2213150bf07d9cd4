// test/run.js end to end on planted test files (MACNET_TEST_DIST): in CI a skip for an unlisted reason fails the
// run although every test passed, and the run prints the skip under its reason; an allowed skip passes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const RUN = path.join(__dirname, '..', '..', '..', 'test', 'run.js');

function runPlanted(body: string, ci: boolean): { status: number | null; out: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'macnet-planted-'));
  try {
    fs.writeFileSync(
      path.join(dir, 'planted.test.js'),
      `'use strict';\nconst { test } = require('node:test');\n${body}\n`,
    );
    // Without NODE_TEST_CONTEXT: node --test would see itself nested in this test and run nothing.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    const r = spawnSync(process.execPath, [RUN], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...env, MACNET_TEST_DIST: dir, MACNET_ENGINES: 'system', CI: ci ? 'true' : 'false' },
    });
    return { status: r.status, out: r.stdout + r.stderr };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('CI=true: an unlisted skip fails the run and is printed under NOT ALLOWED; outside CI it is only printed', () => {
  const body = "test('passes', () => {});\ntest('skips', (t) => t.skip('the moon is in the wrong phase'));";
  const ci = runPlanted(body, true);
  assert.equal(ci.status, 1, ci.out);
  assert.match(ci.out, /# {3}NOT ALLOWED \(1; covered by a reason missing from test\/skip-policy\.ts\)/);
  assert.match(
    ci.out,
    /# FAILED: 1 skips with a reason test\/skip-policy\.ts does not allow \(CI=true\): "skips": the moon is in the wrong phase/,
  );
  assert.equal(runPlanted(body, false).status, 0);
});

test('CI=true: a skip for a listed reason passes', () => {
  const r = runPlanted("test('ipvlan', (t) => t.skip('this kernel has no ipvlan (EOPNOTSUPP)'));", true);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /# {3}kernel-lacks-kind \(1; covered by test\/vm/);
});
