#!/usr/bin/env node
// The test command behind `npm test`: runs every compiled test file once, one file at a time (they share the
// machine's kernel and the VM), with the residue check last. `npm test -- test/kernel` runs a subset. Before anything runs it records the machine's
// state so that the residue check can assert nothing was left behind.
'use strict';
const { spawnSync, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const dist = path.join(root, 'dist', 'test');

function walk(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : e.name.endsWith('.test.js') ? [p] : [];
  });
}

const snapshot = require(path.join(dist, 'lab', 'residue.js')).snapshot;
const baselineFile = path.join(root, 'dist', 'residue-baseline.json');
fs.writeFileSync(baselineFile, JSON.stringify(snapshot()));

// node --test sorts the files it is given by path; the zz- name keeps the residue check last.
const residueTest = path.join(dist, 'zz-residue.test.js');
const filters = process.argv.slice(2).map((f) => f.replace(/^test\//, '').replace(/\.ts$/, ''));
const files = walk(dist)
  .filter((f) => f !== residueTest)
  .filter((f) => filters.length === 0 || filters.some((x) => path.relative(dist, f).startsWith(x)));
files.push(residueTest);

const r = spawnSync(process.execPath, ['--enable-source-maps', '--test', '--test-concurrency=1', '--test-timeout=900000', ...files], {
  stdio: 'inherit',
  env: { ...process.env, MACNET_RESIDUE_BASELINE: baselineFile },
});
process.exit(r.status === null ? 1 : r.status);
