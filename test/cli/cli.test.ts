// The command as a user runs it from the checkout: bin/macnet.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { run } from '../lab/sh';
import { TestNetns } from '../lab/netns';

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
  assert.match(o.stderr, /Unknown option '--netnz'/);
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

test('daemon: a bad option value is refused naming the option, the value and the valid range, before anything starts', async () => {
  for (const [args, expect] of [
    [
      ['--reclaim-after', '10'],
      /OPTION_INVALID: --reclaim-after "10" is not valid: give seconds from 35 to 86400, or 0 to never give such addresses back/,
    ],
    [['--reclaim-after', '1m'], /OPTION_INVALID: --reclaim-after "1m" is not valid/],
    [['--probe-window', '5'], /OPTION_INVALID: --probe-window "5" is not valid: give milliseconds from 10 to 10000/],
    [['--state-dir', 'rel'], /OPTION_INVALID: --state-dir "rel" is not valid: give an absolute path/],
  ] as const) {
    const r = await run(bin, ['daemon', '--plugin-dir', '/nonexistent-macnet-test', ...args]);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, expect);
  }
  const h = await run(bin, ['daemon', '--help']);
  assert.match(h.stdout, /--reclaim-after SECONDS/);
});
