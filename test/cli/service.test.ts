// macnet as a service, without systemd as PID 1 (issue 15): the units `macnet install-units` writes pass
// `systemd-analyze verify`; the daemon takes a socket only when it is passed to it (LISTEN_PID), refuses a
// LISTEN_FDS that names no socket, and refuses to start without its capabilities, naming them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { Daemon, pluginCall } from '../lab/daemon';
import { TestNetns } from '../lab/netns';
import { run, sh } from '../lab/sh';

const ROOT = path.join(__dirname, '..', '..', '..');
const bin = path.join(ROOT, 'bin', 'macnet');
let dir: string;

before(() => {
  dir = fs.mkdtempSync(path.join('/tmp', `mnt-${process.pid}-service-`));
});
after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('install-units writes units that systemd-analyze verify accepts, with absolute paths; refuses to overwrite changed ones without --force', async () => {
  const units = path.join(dir, 'units');
  const r = await run(bin, ['install-units', '--prefix', units]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /wrote .*macnet\.socket\nwrote .*macnet\.service\nnext, as root: systemctl daemon-reload && systemctl enable --now macnet\.socket macnet\.service/,
  );
  const service = fs.readFileSync(path.join(units, 'macnet.service'), 'utf8');
  assert.ok(service.includes(`\nExecStart=${process.execPath} ${fs.realpathSync(bin)} daemon\n`), service);
  const socket = fs.readFileSync(path.join(units, 'macnet.socket'), 'utf8');
  assert.match(socket, /^ListenStream=\/run\/docker\/plugins\/macnet\.sock$/m);
  assert.match(socket, /^SocketMode=0600$/m);

  const v = await run('systemd-analyze', [
    'verify',
    '--man=no',
    path.join(units, 'macnet.socket'),
    path.join(units, 'macnet.service'),
  ]);
  assert.equal(v.code, 0, `systemd-analyze verify: ${v.stderr}`);
  assert.equal(v.stderr.trim(), '', 'no warning either');

  assert.equal((await run(bin, ['install-units', '--prefix', units])).code, 0, 'the same units again: fine');
  fs.appendFileSync(path.join(units, 'macnet.service'), 'Environment=X=1\n');
  const changed = await run(bin, ['install-units', '--prefix', units]);
  assert.equal(changed.code, 1);
  assert.match(
    changed.stderr,
    /^macnet: OPTION_INVALID: .*macnet\.service exists with other content: give --force to replace/,
  );
  assert.equal((await run(bin, ['install-units', '--prefix', units, '--force'])).code, 0);
  assert.equal(fs.readFileSync(path.join(units, 'macnet.service'), 'utf8'), service);
  const h = await run(bin, ['install-units', '--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /Usage: macnet install-units \[--prefix DIR\]/);
});

/** Runs `macnet daemon` with `env`, optionally through `sh -c` (so that LISTEN_PID can name the daemon's own pid). */
function daemon(args: string[], env: NodeJS.ProcessEnv, wrap?: string) {
  const argv = [process.execPath, bin, 'daemon', ...args];
  const child = wrap
    ? spawn('sh', ['-c', `${wrap}; exec "$@"`, 'sh', ...argv], { stdio: ['ignore', 'ignore', 'pipe', 'ignore'], env })
    : spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env });
  let log = '';
  child.stderr!.on('data', (b: Buffer) => {
    log += b.toString();
  });
  const exit = new Promise<number | string | null>((r) => child.once('exit', (c, s) => r(c ?? s)));
  return { child, exit, log: () => log };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (const end = Date.now() + 10_000; !cond();) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('LISTEN_FDS for another process is ignored: the daemon makes its own socket, and removes it at exit', async (t) => {
  const plugins = path.join(dir, 'own-plugins');
  const d = daemon(['--plugin-dir', plugins, '--state-dir', path.join(dir, 'own-state')], {
    ...process.env,
    LISTEN_FDS: '1',
    LISTEN_PID: '1',
  });
  try {
    await until(() => d.log().includes('"msg":"ready"'), 'ready');
    const ready = JSON.parse(
      d
        .log()
        .split('\n')
        .find((l) => l.includes('"msg":"ready"'))!,
    ) as Record<string, unknown>;
    t.diagnostic(JSON.stringify(ready));
    assert.equal(ready.activation, undefined);
    assert.equal(ready.socket, path.join(plugins, 'macnet.sock'));
    assert.deepEqual((await pluginCall(path.join(plugins, 'macnet.sock'), 'Plugin.Activate', {})).body, {
      Implements: ['NetworkDriver', 'IpamDriver'],
    });
    d.child.kill('SIGTERM');
    assert.equal(await d.exit, 0);
    assert.equal(fs.existsSync(path.join(plugins, 'macnet.sock')), false, 'its own socket is removed');
  } finally {
    d.child.kill('SIGKILL');
  }
});

test('LISTEN_FDS for this process with no socket at fd 3: refused with INVALID_ARGUMENT before anything starts', async () => {
  // fd 3 is /dev/null here (stdio 'ignore'); LISTEN_PID is the shell's pid, which exec keeps for the daemon.
  const d = daemon(
    ['--plugin-dir', path.join(dir, 'bad-plugins'), '--state-dir', path.join(dir, 'bad-state')],
    process.env,
    'export LISTEN_FDS=1 LISTEN_PID=$$',
  );
  assert.equal(await d.exit, 1, d.log());
  assert.match(
    d.log(),
    /"code":"INVALID_ARGUMENT","error":"INVALID_ARGUMENT: LISTEN_FDS=1 for this process, but fd 3 is not a socket/,
  );
  assert.doesNotMatch(d.log(), /"msg":"ready"/);
  assert.equal(fs.existsSync(path.join(dir, 'bad-plugins')), false);
});

test('without CAP_NET_ADMIN, CAP_SYS_ADMIN or CAP_NET_RAW the daemon refuses, naming the missing ones, and never says ready', async () => {
  const cases: [string[], string][] = [
    [['--bounding-set=-net_raw,-sys_admin'], 'CAP_NET_RAW, CAP_SYS_ADMIN'],
    [['--bounding-set=-net_admin'], 'CAP_NET_ADMIN'],
    [['--reuid=65534', '--regid=65534', '--clear-groups'], 'CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN'],
  ];
  for (const [how, missing] of cases) {
    const state = path.join(dir, 'priv-state'),
      plugins = path.join(dir, 'priv-plugins');
    // As root a capability survives exec through the inheritable and ambient sets too: clear them.
    const r = await run('setpriv', [
      '--inh-caps=-all',
      '--ambient-caps=-all',
      ...how,
      process.execPath,
      bin,
      'daemon',
      '--plugin-dir',
      plugins,
      '--state-dir',
      state,
    ]);
    assert.equal(r.code, 1, `${how.join(' ')}: ${r.stderr}`);
    const line = JSON.parse(r.stderr.trim().split('\n').at(-1)!) as Record<string, unknown>;
    assert.equal(line.msg, 'not started');
    assert.equal(line.code, 'PRIVILEGES_MISSING');
    assert.match(
      String(line.error),
      new RegExp(`^PRIVILEGES_MISSING: macnet daemon needs ${missing} and runs without (it|them)`),
    );
    assert.doesNotMatch(r.stderr, /"msg":"ready"/);
    assert.equal(fs.existsSync(state) || fs.existsSync(plugins), false, 'nothing was created');
  }
});

test("the daemon migrates v0.1.0's state at start (the fixture), and refuses a newer state with STATE_TOO_NEW, untouched", async () => {
  const ns = await TestNetns.create('schema');
  try {
    await sh('ip', '-n', ns.name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'lan0');
    for (const l of ['eth0', 'lan0']) await sh('ip', '-n', ns.name, 'link', 'set', l, 'up');
    const state = path.join(dir, 'schema-state');
    fs.mkdirSync(state, { mode: 0o700 });
    fs.copyFileSync(path.join(ROOT, 'test', 'fixtures', 'v0.1.0', 'state.db'), path.join(state, 'state.db'));
    const d = await Daemon.start({ netns: ns.path, stateDir: state });
    try {
      const m = d.logLines().find((l) => l.msg === 'state migrated');
      assert.deepEqual([m?.from, m?.to], [0, 2], JSON.stringify(m));
      const pools = (
        await d.call('IpamDriver.RequestAddress', {
          PoolID: 'LocalDefault/198.18.21.0/24/198.18.21.128/25',
          Address: '198.18.21.128',
          Options: {},
        })
      ).body;
      assert.match(String(pools.Error), /^IPAM_ADDRESS_IN_USE: /, "v0.1.0's allocation holds");
    } finally {
      await d.stop();
      await d.remove();
    }
    const db = new Database(path.join(state, 'state.db'));
    db.prepare("UPDATE kv SET value = '3' WHERE key = 'meta/schema'").run();
    db.close();
    const before = fs.readFileSync(path.join(state, 'state.db'));
    const r = await run('nsenter', [
      `--net=${ns.path}`,
      process.execPath,
      bin,
      'daemon',
      '--state-dir',
      state,
      '--plugin-dir',
      path.join(dir, 'schema-plugins'),
    ]);
    assert.equal(r.code, 1, r.stderr);
    const line = JSON.parse(r.stderr.trim().split('\n').at(-1)!) as Record<string, unknown>;
    assert.equal(line.msg, 'not started');
    assert.match(
      String(line.error),
      new RegExp(
        `^STATE_TOO_NEW: ${state}/state.db: the state was written by a newer macnet \\(key layout version 3; this macnet knows up to 2\\): nothing was changed`,
      ),
    );
    assert.deepEqual(fs.readFileSync(path.join(state, 'state.db')), before, 'the database is untouched');
    assert.doesNotMatch(r.stderr, /"msg":"ready"/);
  } finally {
    await ns.delete();
  }
});
