#!/usr/bin/env node
// The command behind `npm run test:unit`: the tests that need no root, no network namespace, no lab and no daemon
// (pure logic, codecs, the SQLite store in a temporary directory, the lint and catalogue checks). They run in
// seconds as any user. It runs the compiled tests in dist/ and writes nothing in the checkout, so build first
// (`npm run build`, as the checkout's owner; `npm ci` builds too).
//
// The rule: a test is a unit test when its path is in UNIT below (a directory takes every test file in it). Add a
// test here only if it passes as an unprivileged user (`runuser -u nobody -- npm run test:unit`).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const UNIT = [
  'test/types',
  'test/errors',
  'test/lint',
  'test/kernel/nl',
  'test/kernel/native.test.ts',
  'test/ipam',
  'test/store',
  'test/names',
  'test/dhcp/packets.test.ts',
  'test/dhcp/keeper.test.ts',
  'test/drivers/config.test.ts',
  'test/drivers/kinds.test.ts',
  'test/drivers/inventory.test.ts',
  'test/drivers/uninstall.test.ts',
  'test/probe/packets.test.ts',
  'test/probe/prober.test.ts',
  'test/probe/sweep.test.ts',
  'test/cli/scan.test.ts',
  'test/cli/store-options.test.ts',
  'test/docker/request.test.ts',
  'test/runner',
  'test/log',
  'test/docker/replies.test.ts',
  'test/doctor/sysctls.test.ts',
];

const root = path.join(__dirname, '..');

function walk(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : e.name.endsWith('.test.ts') ? [p] : [];
  });
}

const sources = UNIT.flatMap((u) => {
  const p = path.join(root, u);
  if (!fs.existsSync(p)) throw new Error(`test/run-unit.js lists ${u}, which does not exist`);
  return fs.statSync(p).isDirectory() ? walk(p) : [p];
});
const compiled = sources.map((s) => path.join(root, 'dist', path.relative(root, s)).replace(/\.ts$/, '.js'));
const missing = compiled.filter((c) => !fs.existsSync(c));
if (missing.length) {
  console.error(`not built: ${missing.map((m) => path.relative(root, m)).join(', ')}; run \`npm run build\` first`);
  process.exit(1);
}
const stale = sources.filter((s, i) => fs.statSync(s).mtimeMs > fs.statSync(compiled[i]).mtimeMs);
if (stale.length) {
  const names = stale.map((s) => path.relative(root, s)).join(', ');
  console.error(`warning: ${names} changed after the last build; \`npm run build\` to test the change`);
}

const r = spawnSync(process.execPath, ['--enable-source-maps', '--test', ...compiled], { stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
