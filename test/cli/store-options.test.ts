// The daemon's store options (src/cli/store-open.ts): each bad value refused with OPTION_INVALID naming the option,
// the value and what is valid, before the daemon touches anything; the password never from the command line.
// A unit test: files in a temp dir, no daemon, no etcd (the Docker-level test is test/docker/cluster.test.ts).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseDaemonArgs } from '../../src/cli/daemon';
import { ETCD_PASSWORD_ENV, openStore, parseStoreOptions } from '../../src/cli/store-open';
import { hostId } from '../../src/cli/state-dir';
import { SqliteStore } from '../../src/store/sqlite';
import { isMacnetError } from '../../src/errors';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'macnet-store-options-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text = 'x\n', mode = 0o600) => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text, { mode });
  return f;
};
const ca = file('ca.crt');
const cert = file('client.crt');
const key = file('client.key');
const pw = file('password', 'secret\nignored second line\n');
const emptyPw = file('empty-password', '\n');
const E = ['--store', 'etcd', '--etcd-endpoints'];

/** The OPTION_INVALID that parsing `argv` throws: its option, value and message. */
function refusal(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const saved = process.env[ETCD_PASSWORD_ENV];
  delete process.env[ETCD_PASSWORD_ENV];
  Object.assign(process.env, env);
  try {
    parseDaemonArgs(argv);
  } catch (e) {
    assert.ok(isMacnetError(e), String(e));
    assert.equal(e.code, 'OPTION_INVALID', e.message);
    return { option: e.details['option'], value: e.details['value'], message: e.message };
  } finally {
    if (saved === undefined) delete process.env[ETCD_PASSWORD_ENV];
    else process.env[ETCD_PASSWORD_ENV] = saved;
  }
  assert.fail(`accepted: ${argv.join(' ')}`);
}

test('default: sqlite; --store etcd with endpoints, TLS files, user and prefix', () => {
  assert.deepEqual(parseDaemonArgs([]).store, { kind: 'sqlite' });
  assert.deepEqual(parseDaemonArgs(['--store', 'sqlite']).store, { kind: 'sqlite' });
  assert.deepEqual(parseDaemonArgs([...E, 'http://198.18.0.1:2379, http://198.18.0.2:2379']).store, {
    kind: 'etcd',
    lostHostGraceMs: 300_000,
    etcd: { endpoints: ['http://198.18.0.1:2379', 'http://198.18.0.2:2379'], prefix: 'macnet/' },
  });
  const full = parseDaemonArgs([
    ...E,
    'https://etcd1.lan:2379,https://[2001:db8::1]:2379',
    '--etcd-cacert',
    ca,
    '--etcd-cert',
    cert,
    '--etcd-key',
    key,
    '--etcd-user',
    'macnet',
    '--etcd-password-file',
    pw,
    '--etcd-prefix',
    'lab/macnet/',
  ]).store;
  assert.deepEqual(full, {
    kind: 'etcd',
    lostHostGraceMs: 300_000,
    etcd: {
      endpoints: ['https://etcd1.lan:2379', 'https://[2001:db8::1]:2379'],
      prefix: 'lab/macnet/',
      tls: { ca, cert, key },
      auth: { user: 'macnet', password: 'secret' },
    },
  });
});

test('the password comes from the file or from the environment, never from the command line', () => {
  const fromEnv = parseStoreOptions(
    { store: 'etcd', 'etcd-endpoints': 'http://198.18.0.1:2379', 'etcd-user': 'macnet' },
    { [ETCD_PASSWORD_ENV]: 'from-env' },
  );
  assert.deepEqual(fromEnv.kind === 'etcd' && fromEnv.etcd.auth, { user: 'macnet', password: 'from-env' });
  assert.throws(() => parseDaemonArgs([...E, 'http://a:2379', '--etcd-password', 'x']), {
    code: 'INVALID_ARGUMENT',
    message: "daemon: unknown option '--etcd-password'",
  });
});

test('each bad value is OPTION_INVALID naming the option, the value and what is valid', () => {
  const cases: [string[], string, string, RegExp][] = [
    [['--store', 'mysql'], 'store', 'mysql', /use sqlite or etcd/],
    [['--etcd-endpoints', 'http://a:2379'], 'etcd-endpoints', 'http://a:2379', /need --store etcd/],
    [['--store', 'sqlite', '--etcd-prefix', 'x/'], 'etcd-prefix', 'x/', /need --store etcd/],
    [['--store', 'etcd'], 'etcd-endpoints', '', /needs the members/],
    [[...E, ' '], 'etcd-endpoints', ' ', /needs the members/],
    [[...E, 'ftp://a:2379'], 'etcd-endpoints', 'ftp://a:2379', /http:\/\/HOST:PORT or https:\/\/HOST:PORT/],
    [[...E, 'a:2379'], 'etcd-endpoints', 'a:2379', /http:\/\/HOST:PORT/],
    [[...E, 'http://a:2379/v3'], 'etcd-endpoints', 'http://a:2379/v3', /http:\/\/HOST:PORT/],
    [[...E, 'http://u:p@a:2379'], 'etcd-endpoints', 'http://u:p@a:2379', /http:\/\/HOST:PORT/],
    [[...E, 'http://a:2379,https://b:2379'], 'etcd-endpoints', 'http://a:2379,https://b:2379', /same scheme/],
    [[...E, 'https://a:2379'], 'etcd-cacert', '', /need the CA/],
    [[...E, 'http://a:2379', '--etcd-cacert', ca], 'etcd-cacert', ca, /TLS files need https/],
    [[...E, 'https://a:2379', '--etcd-cacert', ca, '--etcd-cert', cert], 'etcd-cert', cert, /--etcd-key FILE/],
    [[...E, 'https://a:2379', '--etcd-cacert', ca, '--etcd-key', key], 'etcd-key', key, /--etcd-cert FILE/],
    [[...E, 'https://a:2379', '--etcd-cacert', '/nonexistent/ca'], 'etcd-cacert', '/nonexistent/ca', /ENOENT/],
    [[...E, 'https://a:2379', '--etcd-cacert', dir], 'etcd-cacert', dir, /cannot read it/],
    [[...E, 'http://a:2379', '--etcd-user', 'macnet'], 'etcd-user', 'macnet', new RegExp(ETCD_PASSWORD_ENV)],
    [[...E, 'http://a:2379', '--etcd-password-file', pw], 'etcd-password-file', pw, /--etcd-user USER/],
    [
      [...E, 'http://a:2379', '--etcd-user', 'm', '--etcd-password-file', '/nonexistent/pw'],
      'etcd-password-file',
      '/nonexistent/pw',
      /ENOENT/,
    ],
    [
      [...E, 'http://a:2379', '--etcd-user', 'm', '--etcd-password-file', emptyPw],
      'etcd-password-file',
      emptyPw,
      /first line is empty/,
    ],
    [[...E, 'http://a:2379', '--etcd-user', 'a b', '--etcd-password-file', pw], 'etcd-user', 'a b', /without spaces/],
    [[...E, 'http://a:2379', '--etcd-prefix', 'macnet'], 'etcd-prefix', 'macnet', /ending in \//],
    [[...E, 'http://a:2379', '--etcd-prefix', '/macnet/'], 'etcd-prefix', '/macnet/', /not starting with it/],
  ];
  for (const [argv, option, value, valid] of cases) {
    const r = refusal(argv);
    assert.deepEqual([r.option, r.value], [option, value], `${argv.join(' ')}: ${r.message}`);
    assert.ok(r.message.startsWith(`--${option} ${JSON.stringify(value)} is not valid: `), r.message);
    assert.match(r.message, valid, argv.join(' '));
  }
});

test('the host id is made once, kept in the state dir, and a damaged one is refused rather than replaced', () => {
  const state = fs.mkdtempSync(path.join(dir, 'state-'));
  const id = hostId(state);
  assert.match(id, /^[\w.-]+-[0-9a-f]{8}$/);
  assert.equal(hostId(state), id);
  fs.writeFileSync(path.join(state, 'host-id'), 'not/an id\n');
  assert.throws(() => hostId(state), /not a host id/);
});

test("a state dir still holding a single host's pools is refused on etcd before etcd is asked, naming the migration", async () => {
  const state = fs.mkdtempSync(path.join(dir, 'state-'));
  const sqlite = SqliteStore.open(path.join(state, 'state.db'));
  await sqlite.put('ipam/pools/LocalDefault/198.18.15.0_24', '{}');
  await sqlite.close();
  // Nothing listens there: were etcd asked, this would be STORE_UNAVAILABLE after the deadline instead.
  const choice = parseDaemonArgs([...E, 'http://198.18.15.99:2379']).store;
  const t0 = Date.now();
  await assert.rejects(openStore(choice, state), (e: unknown) => {
    assert.ok(isMacnetError(e) && e.code === 'STORE_ERROR', String(e));
    assert.match(e.message, /pools of 1 network\(s\).*macnet store migrate --to etcd/);
    return true;
  });
  assert.ok(Date.now() - t0 < 1000, 'refused at once');
  assert.ok(!fs.existsSync(path.join(state, 'host-id')), 'no host id made');
});
