// The command as a user runs it from the checkout: bin/macnet.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { run } from '../lab/sh';
import { TestNetns } from '../lab/netns';
import { parseDaemonArgs } from '../../src/cli/daemon';

const bin = path.join(__dirname, '..', '..', '..', 'bin', 'macnet');
const pkg = require(path.join(__dirname, '..', '..', '..', 'package.json')) as { version: string };

test('--version prints the package version; --help lists the commands', async () => {
  const v = await run(bin, ['--version']);
  assert.equal(v.code, 0);
  assert.equal(v.stdout.trim(), pkg.version);
  const h = await run(bin, ['--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /Usage: macnet <command>/);
  assert.match(h.stdout, /links \[--netns PATH\]/);
});

test('an unknown command or option is refused with the valid ones named', async () => {
  const r = await run(bin, ['linkz']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command "linkz"; valid commands: links, daemon/);
  const o = await run(bin, ['links', '--netnz', 'x']);
  assert.equal(o.code, 2);
  assert.equal(o.stderr, "macnet: INVALID_ARGUMENT: links: unknown option '--netnz' (macnet links --help)\n");
});

test('links --netns shows kind data from the kernel; a missing namespace is NETNS_NOT_FOUND', async () => {
  const ns = await TestNetns.create('cli');
  try {
    assert.equal((await run('ip', ['-n', ns.name, 'link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1'])).code, 0);
    assert.equal(
      (await run('ip', ['-n', ns.name, 'link', 'add', 'mv0', 'link', 'p0', 'type', 'macvlan', 'mode', 'private'])).code,
      0,
    );
    const r = await run(bin, ['links', '--netns', ns.path]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /: mv0 macvlan mode private parent p0 mac [0-9a-f:]{17} mtu 1500 down/);
    const j = await run(bin, ['links', '--netns', ns.path, '--json']);
    const links = JSON.parse(j.stdout) as { name: string; data?: { mode: string } }[];
    assert.equal(links.find((l) => l.name === 'mv0')?.data?.mode, 'private');
  } finally {
    await ns.delete();
  }
  const missing = await run(bin, ['links', '--netns', '/run/netns/mnt-none']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^macnet: NETNS_NOT_FOUND: open network namespace \/run\/netns\/mnt-none/);
});

test('daemon: a bad option value is refused naming the option, the value and the valid range, before anything starts (exit 2)', async () => {
  for (const [args, expect] of [
    [
      ['--reclaim-after', '10'],
      /OPTION_INVALID: --reclaim-after "10" is not valid: give seconds from 35 to 86400, or 0 to never give such addresses back/,
    ],
    [['--reclaim-after', '1m'], /OPTION_INVALID: --reclaim-after "1m" is not valid/],
    [['--probe-window', '5'], /OPTION_INVALID: --probe-window "5" is not valid: give milliseconds from 10 to 10000/],
    [['--state-dir', 'rel'], /OPTION_INVALID: --state-dir "rel" is not valid: give an absolute path/],
    [['--netns-dir', 'netns'], /OPTION_INVALID: --netns-dir "netns" is not valid: give an absolute path/],
    [
      ['--proc-sys-net', '/dev/null/x'],
      /OPTION_INVALID: --proc-sys-net "\/dev\/null\/x" is not valid: \/dev\/null is not/,
    ],
  ] as const) {
    const r = await run(bin, ['daemon', '--plugin-dir', '/nonexistent-macnet-test', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, expect);
    assert.match(r.stderr, /^macnet: OPTION_INVALID: .* \(macnet daemon --help\)\n$/);
  }
  const h = await run(bin, ['daemon', '--help']);
  assert.match(h.stdout, /--reclaim-after SECONDS/);
});

test('every command has --help (also as `macnet help COMMAND`), on stdout with exit 0', async () => {
  for (const [cmd, usage] of [
    ['links', 'Usage: macnet links [--netns PATH] [--json]'],
    ['daemon', 'Usage: macnet daemon [options]'],
    ['scan', 'Usage: macnet scan NETWORK'],
    ['doctor', 'Usage: macnet doctor [--parent IF | --network NET] [--json]'],
    ['install-units', 'Usage: macnet install-units [--prefix DIR] [--force]'],
    ['store', 'Usage: macnet store migrate --to etcd'],
    ['uninstall', 'Usage: macnet uninstall [--purge]'],
  ] as const) {
    for (const args of [
      [cmd, '--help'],
      [cmd, '-h'],
      ['help', cmd],
      [cmd, '--json', '--help'],
    ]) {
      const r = await run(bin, args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.ok(r.stdout.startsWith(usage), `${args.join(' ')}: ${r.stdout.slice(0, 80)}`);
      assert.equal(r.stderr, '');
    }
  }
  const h = await run(bin, ['--help']);
  for (const cmd of ['links', 'daemon', 'scan', 'doctor', 'install-units', 'store', 'uninstall'])
    assert.match(h.stdout, new RegExp(`\\n  ${cmd} `));
  assert.match(h.stdout, /Exit status: 0 done; 1 refused or failed/);
});

test('argument errors: `macnet: CODE: message (macnet COMMAND --help)` on stderr, exit 2; nothing else printed', async () => {
  const cases: [string[], RegExp][] = [
    [[], /^macnet [0-9.]+: containers directly on the physical LAN[^]*\nUsage: macnet <command>/],
    [
      ['linkz'],
      /^macnet: INVALID_ARGUMENT: unknown command "linkz"; valid commands: links, daemon, scan, doctor, install-units, store, uninstall, help \(macnet --help\)\n$/,
    ],
    [['help', 'linkz'], /^macnet: INVALID_ARGUMENT: unknown command "linkz"; .* \(macnet --help\)\n$/],
    [
      ['scan'],
      /^macnet: INVALID_ARGUMENT: scan takes one NETWORK \(a name, id or id prefix\), got 0 \(macnet scan --help\)\n$/,
    ],
    [
      ['scan', 'lan', '--docker-host', 'tcp://x:2375'],
      /^macnet: OPTION_INVALID: --docker-host "tcp:\/\/x:2375" is not valid: .* \(macnet scan --help\)\n$/,
    ],
    [
      ['links', '--netns'],
      /^macnet: INVALID_ARGUMENT: links: option '--netns <value>' argument missing \(macnet links --help\)\n$/,
    ],
    [['links', 'extra'], /^macnet: INVALID_ARGUMENT: links: unexpected argument 'extra' \(macnet links --help\)\n$/],
    [
      ['install-units', '--prefix', 'units'],
      /^macnet: OPTION_INVALID: --prefix "units" is not valid: give an absolute path \(macnet install-units --help\)\n$/,
    ],
    [
      ['uninstall', '--purge=yes'],
      /^macnet: INVALID_ARGUMENT: uninstall: option '--purge' does not take an argument \(macnet uninstall --help\)\n$/,
    ],
    [
      ['daemon', '--log-level', 'loud'],
      /^macnet: OPTION_INVALID: --log-level "loud" is not valid: use one of debug, info, warn, error \(any case\) \(macnet daemon --help\)\n$/,
    ],
    [
      ['daemon', '--dns-host-label', 'node_1'],
      /^macnet: OPTION_INVALID: --dns-host-label "node_1" is not valid: give a DNS label: .* \(macnet daemon --help\)\n$/,
    ],
    [
      ['daemon', '--docker-host', 'tcp://10.0.0.1:2375'],
      /^macnet: OPTION_INVALID: --docker-host "tcp:\/\/10.0.0.1:2375" is not valid: give a unix socket .* \(macnet daemon --help\)\n$/,
    ],
  ];
  for (const [args, expect] of cases) {
    const r = await run(bin, args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, expect, args.join(' '));
    assert.equal(r.stdout, '', args.join(' '));
  }
});

test('a path that cannot be a directory is a clean OPTION_INVALID, no stack trace, nothing created', async () => {
  for (const [args, option] of [
    [['daemon', '--state-dir', '/dev/null/x'], 'state-dir'],
    [['daemon', '--plugin-dir', '/dev/null/x/y'], 'plugin-dir'],
    [['uninstall', '--state-dir', '/dev/null/x'], 'state-dir'],
    [['install-units', '--prefix', '/dev/null/units'], 'prefix'],
  ] as const) {
    const r = await run(bin, [...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(
      r.stderr,
      new RegExp(
        `^macnet: OPTION_INVALID: --${option} "[^"]+" is not valid: /dev/null is not a directory; give a directory's path \\(macnet ${args[0]} --help\\)\n$`,
      ),
    );
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
});

test('a state dir under /proc is refused at once (mkdir recursive loops there), OPTION_INVALID with the errno', async () => {
  const r = await run(bin, ['daemon', '--state-dir', '/proc/macnet-test/x', '--plugin-dir', '/proc/macnet-test/p']);
  assert.equal(r.code, 1, r.stderr);
  const line = JSON.parse(r.stderr.trim().split('\n').at(-1)!) as Record<string, unknown>;
  assert.equal(line.msg, 'not started');
  assert.equal(line.code, 'OPTION_INVALID');
  assert.match(String(line.error), /--state-dir "\/proc\/macnet-test\/x": cannot create it \(ENOENT\)/);
});

test("daemon: --netns-dir and --proc-sys-net (the managed plugin's view of the host) are taken as given", () => {
  const o = parseDaemonArgs(['--netns-dir', '/run/docker-exec-root/netns', '--proc-sys-net', '/run/proc-sys-net']);
  assert.equal(o.netnsDir, '/run/docker-exec-root/netns');
  assert.equal(o.procSysNet, '/run/proc-sys-net');
  const d = parseDaemonArgs([]);
  assert.equal(d.netnsDir, undefined);
  assert.equal(d.procSysNet, undefined);
});

test('--log-level takes any case', () => {
  for (const given of ['DEBUG', 'Warn', 'error', 'INFO']) {
    assert.equal(parseDaemonArgs(['--log-level', given]).logLevel, given.toLowerCase());
  }
});
