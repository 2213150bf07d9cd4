#!/usr/bin/env node
// The test command behind `npm test`: runs every compiled test file once, one file at a time (they share the
// machine's kernel and the VM), and every Docker test file (one that imports test/lab/engine-test) once more per
// further engine, with the residue check last. `npm test -- test/kernel` runs a subset.
//
// Engines (test/lab/engines.ts): "system" is Debian 12's docker.io; "current" is the newest docker.io of Debian
// unstable that runs here, fetched into a cache first. MACNET_ENGINES=system,current (the default) chooses them;
// the first runs with the other files. An engine asked for that cannot be had fails the run with the reason.
//
// After the passes it prints the counts per engine, the skips by reason and the time of each pass. In CI
// (CI=true) a skip whose reason test/skip-policy.ts does not list fails the run. MACNET_TEST_DIST runs the
// files of another compiled tree (the runner's own test plants files there).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const distRoot = path.join(root, 'dist');
const dist = process.env.MACNET_TEST_DIST ?? path.join(distRoot, 'test');
const ci = process.env.CI === 'true';

function walk(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : e.name.endsWith('.test.js') ? [p] : [];
  });
}

const { snapshot } = require(path.join(distRoot, 'test', 'lab', 'residue.js'));
const engines = require(path.join(distRoot, 'test', 'lab', 'engines.js'));
const { summarize } = require(path.join(distRoot, 'test', 'runner', 'summary.js'));
const reporter = path.join(distRoot, 'test', 'runner', 'reporter.js');

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'macnet-test-run-'));
const baselineFile = path.join(work, 'residue-baseline.json');
fs.writeFileSync(baselineFile, JSON.stringify(snapshot()));

// node --test sorts the files it is given by path; the zz- name keeps the residue check last.
const residueTest = path.join(dist, 'zz-residue.test.js');
const filters = process.argv.slice(2).map((f) => f.replace(/^test\//, '').replace(/\.ts$/, ''));
const files = walk(dist)
  .filter((f) => f !== residueTest)
  .filter((f) => filters.length === 0 || filters.some((x) => path.relative(dist, f).startsWith(x)));
// A Docker test file imports test/lab/engine-test, itself or through a module of its own directory (a fixture).
const requiresEngineTest = (src) => /require\("(\.\.?\/)+(lab\/)?engine-test"\)/.test(src);
const isDocker = (f) => {
  const src = fs.readFileSync(f, 'utf8');
  if (requiresEngineTest(src)) return true;
  return [...src.matchAll(/require\("\.\/([\w-]+)"\)/g)].some(([, m]) => {
    try {
      return requiresEngineTest(fs.readFileSync(path.join(path.dirname(f), `${m}.js`), 'utf8'));
    } catch {
      return false;
    }
  });
};
const docker = new Set(files.filter(isDocker)); // each file read once
const dockerFiles = files.filter((f) => docker.has(f));
const otherFiles = files.filter((f) => !docker.has(f));

const problems = [];
const timing = [];
const t0 = Date.now();
const wanted = (process.env.MACNET_ENGINES ?? 'system,current')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const ready = []; // [{ id, engine }]
for (const id of wanted) {
  if (!engines.ENGINE_IDS.includes(id)) {
    problems.push(`MACNET_ENGINES: unknown engine "${id}" (known: ${engines.ENGINE_IDS.join(', ')})`);
    continue;
  }
  if (dockerFiles.length === 0) break;
  const t = Date.now();
  const r = id === 'current' ? engines.ensureCurrentEngine() : engines.systemEngine();
  if (typeof r === 'string') {
    problems.push(`engine ${id}: ${r}`);
    console.log(`# engine ${id}: NOT AVAILABLE: ${r}`);
    continue;
  }
  const e = r.engine ?? r;
  console.log(`# engine ${id}: ${e.label} (${e.source}${r.note ? `; ${r.note}` : ''})`);
  if (id === 'current') timing.push([`fetch engine ${id}`, Date.now() - t]);
  ready.push({ id, engine: e });
}

function pass(label, passFiles, engineId) {
  if (passFiles.length === 0) return;
  const out = path.join(work, `${timing.length}.jsonl`);
  console.log(`# ---- ${label}: ${passFiles.length} files ----`);
  const t = Date.now();
  const r = spawnSync(
    process.execPath,
    [
      '--enable-source-maps',
      '--test',
      '--test-concurrency=1',
      '--test-timeout=900000',
      '--test-reporter=spec',
      '--test-reporter-destination=stdout',
      `--test-reporter=${reporter}`,
      `--test-reporter-destination=${out}`,
      ...passFiles,
    ],
    { stdio: 'inherit', env: { ...process.env, MACNET_ENGINE: engineId, MACNET_RESIDUE_BASELINE: baselineFile } },
  );
  timing.push([label, Date.now() - t]);
  if (r.status !== 0) problems.push(`${label}: node --test exited ${r.status ?? r.signal}`);
  else if (!fs.existsSync(out) || fs.readFileSync(out, 'utf8').trim() === '') problems.push(`${label}: no test ran`);
  return out;
}

const results = [];
const [first, ...others] = ready;
results.push(
  pass(
    first ? `tests, Docker tests on ${first.engine.label}` : 'tests',
    [...otherFiles, ...(first ? dockerFiles : [])],
    first?.id ?? 'system',
  ),
);
for (const o of others) results.push(pass(`Docker tests on ${o.engine.label}`, dockerFiles, o.id));
if (fs.existsSync(residueTest)) results.push(pass('residue check', [residueTest], 'system'));

const outcomes = results.filter(Boolean).flatMap((f) => {
  try {
    return fs
      .readFileSync(f, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  } catch {
    return [];
  }
});
const s = summarize(outcomes, new Map(ready.map((r) => [r.engine.label, r.engine.source])), ci);
console.log('\n# ---- summary ----');
for (const l of s.lines) console.log(`# ${l}`);
for (const [label, ms] of timing) console.log(`# time: ${label}: ${(ms / 1000).toFixed(1)} s`);
console.log(`# time: all: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
problems.push(...s.problems);
for (const p of problems) console.log(`# FAILED: ${p}`);
fs.rmSync(work, { recursive: true, force: true });
process.exit(problems.length ? 1 : 0);
