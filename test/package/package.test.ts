// The package as an operator installs it (issue 15): `npm pack`, then `npm install -g` of the tarball into a scratch
// prefix, then the installed `macnet`: its version, and its daemon answering Plugin.Activate in a namespace.
// The native addon and better-sqlite3 compile at install against this Node's headers; nothing is fetched
// beyond the npm registry (its cache first, as `npm ci` does).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pluginCall } from '../lab/daemon';
import { TestNetns } from '../lab/netns';
import { run } from '../lab/sh';

const ROOT = path.join(__dirname, '..', '..', '..');
const pkg = require(path.join(ROOT, 'package.json')) as { version: string };
/** The install command the README gives operators, less the tarball. */
export const INSTALL_FLAGS = ['--build-from-source', '--allow-scripts=macnet,better-sqlite3', '--foreground-scripts'];

let dir: string;
let tarball: string;
let prefix: string;
let installLog = '';

before(async () => {
  dir = fs.mkdtempSync(path.join('/tmp', `mnt-${process.pid}-pkg-`));
  prefix = path.join(dir, 'prefix');
  // The checkout's dist/ is built already (npm test builds first): --ignore-scripts packs it as it is, instead of
  // re-compiling the tree these tests run from (`npm pack` alone runs `prepare`, which builds dist/).
  const p = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { timeoutMs: 120_000 });
  assert.equal(p.code, 0, p.stderr);
  tarball = path.join(dir, (JSON.parse(p.stdout) as { filename: string }[])[0]!.filename);
  const i = await run('npm', ['install', '-g', '--prefix', prefix, ...INSTALL_FLAGS, tarball], { timeoutMs: 600_000 });
  installLog = i.stdout + i.stderr;
  assert.equal(i.code, 0, `npm install -g: ${installLog.slice(-3000)}`);
});

after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('the tarball holds the compiled CLI, the native source, the systemd units and the docs, and no tests', async () => {
  const t = await run('tar', ['-tzf', tarball]);
  assert.equal(t.code, 0, t.stderr);
  const files = t.stdout
    .split('\n')
    .filter(Boolean)
    .map((f) => f.replace(/^package\//, ''));
  for (const f of [
    'bin/macnet',
    'dist/src/cli/main.js',
    'dist/src/cli/daemon.js',
    'native/macnet_sock.c',
    'binding.gyp',
    'scripts/build-native.js',
    'systemd/macnet.socket',
    'systemd/macnet.service',
    'README.md',
    'docs/errors.md',
  ]) {
    assert.ok(files.includes(f), `${f} is in the package`);
  }
  assert.deepEqual(
    files.filter((f) => /^(test|bench|src)\/|^dist\/(test|bench)\/|\.map$/.test(f)),
    [],
    'no tests, sources or maps',
  );
});

test("npm install -g builds the addon against this Node's headers and fetches nothing beyond the npm registry", () => {
  const nodePrefix = path.dirname(path.dirname(fs.realpathSync(process.execPath)));
  const nodedir = process.env.npm_config_nodedir || nodePrefix;
  assert.match(
    installLog,
    new RegExp(`-Dnode_root_dir=${nodedir.replace(/[/.]/g, '\\$&')}'`),
    'node-gyp used the installed Node',
  );
  // prebuild-install (better-sqlite3) downloads a binary from outside the registry unless told to build from source.
  assert.doesNotMatch(installLog, /prebuild-install (warn|info) (install|looking for)|ENOTFOUND|Downloading/i);
  assert.ok(fs.existsSync(path.join(prefix, 'lib', 'node_modules', 'macnet', 'build', 'Release', 'macnet_sock.node')));
});

test('the installed macnet: --version, and its daemon answers Plugin.Activate on its socket in a namespace', async (t) => {
  const bin = path.join(prefix, 'bin', 'macnet');
  const v = await run(bin, ['--version']);
  assert.equal(v.code, 0, v.stderr);
  assert.equal(v.stdout.trim(), pkg.version);

  const ns = await TestNetns.create('pkg');
  let child: ChildProcess | undefined;
  try {
    const plugins = path.join(dir, 'plugins');
    const args = [`--net=${ns.path}`, bin, 'daemon', '--plugin-dir', plugins, '--state-dir', path.join(dir, 'state')];
    child = spawn('nsenter', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise<number | string | null>((r) => child!.once('exit', (c, s) => r(c ?? s)));
    let log = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready in 10 s: ${log}`)), 10_000);
      child!.stderr!.on('data', (b: Buffer) => {
        log += b.toString();
        if (log.includes('"msg":"ready"')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child!.once('exit', (c) => {
        clearTimeout(timer);
        reject(new Error(`exited ${c}: ${log}`));
      });
    });
    const r = await pluginCall(path.join(plugins, 'macnet.sock'), 'Plugin.Activate', {});
    assert.deepEqual(r.body, { Implements: ['NetworkDriver', 'IpamDriver'] });
    child.kill('SIGTERM');
    assert.equal(await exited, 0, log);
    t.diagnostic(`daemon from ${bin}: ready, activated, stopped`);
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await ns.delete();
  }
});
