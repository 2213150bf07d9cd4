// `macnet doctor` as a user runs it: the --json schema on this machine and the exit status that goes with the
// worst finding; the command-line errors (exit 2); trees made by hand under MACNET_DOCTOR_ROOT (a Wi-Fi parent
// blocks: exit 1); and the parent's kind read from a real sysfs and its default route's gateway, in a namespace
// of the test's own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { Report } from '../../src/doctor';
import { run } from '../lab/sh';
import { TestNetns } from '../lab/netns';
import { netDevice, Tree } from '../doctor/trees';

const bin = path.join(__dirname, '..', '..', '..', 'bin', 'macnet');
const SEVERITIES = ['ok', 'warn', 'blocking'];

/** Asserts the documented schema (docs/doctor.md, "--json") and returns the report. */
function schema(stdout: string): Report {
  const r = JSON.parse(stdout) as Report;
  assert.equal(r.version, 1);
  assert.equal(typeof r.host.name, 'string');
  assert.equal(typeof r.host.kernel, 'string');
  assert.equal(typeof r.environment.name, 'string');
  assert.ok(Array.isArray(r.findings) && r.findings.length > 0);
  for (const f of r.findings) {
    assert.match(f.check, /^[a-z]+(\.[a-z0-9_-]+)+$/, f.check);
    assert.ok(SEVERITIES.includes(f.severity), f.severity);
    assert.equal(typeof f.summary, 'string');
    if (f.fix !== undefined) assert.equal(typeof f.fix, 'string');
    for (const v of Object.values(f.detail ?? {}))
      assert.ok(v === null || ['string', 'number', 'boolean'].includes(typeof v));
  }
  const worst = SEVERITIES[Math.max(...r.findings.map((f) => SEVERITIES.indexOf(f.severity)))];
  assert.equal(r.worst, worst);
  return r;
}

test('doctor --json on this machine: the schema holds, and the exit status follows the worst finding', async () => {
  const j = await run(bin, ['doctor', '--json']);
  const r = schema(j.stdout);
  assert.equal(j.code, r.worst === 'blocking' ? 1 : 0, j.stderr);
  assert.equal(r.parent, undefined);
  for (const id of ['env.hypervisor', 'host.network-manager', 'host.systemd-networkd'])
    assert.ok(
      r.findings.some((f) => f.check === id),
      id,
    );
  // The text form: one line per finding, then the tally.
  const t = await run(bin, ['doctor']);
  assert.equal(t.code, j.code);
  assert.match(t.stdout, /^ok +env\.hypervisor +\S/m);
  assert.match(t.stdout, /\nhost on \S+: \d+ blocking, \d+ warn, \d+ ok; worst (ok|warn|blocking)\n$/);
});

test('doctor command-line errors exit 2 naming the option; an unreachable Docker for --network exits 1', async () => {
  const h = await run(bin, ['doctor', '--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /^Usage: macnet doctor \[--parent IF \| --network NET\] \[--json\]/);
  assert.match((await run(bin, ['--help'])).stdout, /doctor \[--parent IF \| --network NET\] \[--json\]/);
  const cases: [string[], string][] = [
    [['--bogus'], "macnet: INVALID_ARGUMENT: doctor: unknown option '--bogus' (macnet doctor --help)"],
    [
      ['--parent'],
      "macnet: INVALID_ARGUMENT: doctor: option '--parent <value>' argument missing (macnet doctor --help)",
    ],
    [
      ['--parent', 'a/b'],
      'macnet: OPTION_INVALID: --parent "a/b" is not valid: give an interface name of 1 to 15 bytes without ' +
        "spaces, NUL, '/' or ':' (macnet doctor --help)",
    ],
    [
      ['--parent', 'x'.repeat(16)],
      `macnet: OPTION_INVALID: --parent "${'x'.repeat(16)}" is not valid: give an interface name of 1 to 15 bytes ` +
        "without spaces, NUL, '/' or ':' (macnet doctor --help)",
    ],
    [
      ['--parent', 'eth0', '--network', 'lan'],
      'macnet: INVALID_ARGUMENT: doctor: give --parent or --network, not both (a network names its own parent) ' +
        '(macnet doctor --help)',
    ],
    [
      ['--network', 'lan', '--docker-host', 'tcp://198.18.0.1:2375'],
      'macnet: OPTION_INVALID: --docker-host "tcp://198.18.0.1:2375" is not valid: give a unix socket as ' +
        'unix:///path (tcp is not supported) (macnet doctor --help)',
    ],
    [['--json', 'extra'], "macnet: INVALID_ARGUMENT: doctor: unexpected argument 'extra' (macnet doctor --help)"],
  ];
  for (const [args, stderr] of cases) {
    const r = await run(bin, ['doctor', ...args]);
    assert.deepEqual([r.code, r.stderr.trim(), r.stdout], [2, stderr, ''], args.join(' '));
  }
  const docker = await run(bin, ['doctor', '--network', 'lan', '--docker-host', 'unix:///nonexistent/docker.sock']);
  assert.equal(docker.code, 1);
  assert.match(
    docker.stderr,
    /^macnet: DOCKER_UNREACHABLE: doctor: cannot look up network "lan" through the Docker Engine API at unix:\/\/\/nonexistent\/docker\.sock \(connect ENOENT/,
  );
});

test('MACNET_DOCTOR_ROOT: a Wi-Fi parent blocks (exit 1); VMware and a running NetworkManager warn', async () => {
  const t = Tree.make({
    ...netDevice('wlan0', { uevent: 'DEVTYPE=wlan\n', extra: { phy80211: '->../../ieee80211/phy0' } }),
    'sys/class/dmi/id/sys_vendor': 'VMware, Inc.\n',
    'sys/class/dmi/id/product_name': 'VMware Virtual Platform\n',
    'proc/4242/comm': 'NetworkManager\n',
    'etc/NetworkManager/NetworkManager.conf': '[main]\nplugins=keyfile\n',
  });
  try {
    const env = { ...process.env, MACNET_DOCTOR_ROOT: t.root };
    const wifi = await run(bin, ['doctor', '--parent', 'wlan0', '--json'], { env });
    assert.equal(wifi.code, 1, wifi.stderr);
    const r = schema(wifi.stdout);
    assert.equal(r.parent, 'wlan0');
    assert.deepEqual(r.environment.name, 'vmware');
    const by = (id: string) => r.findings.find((f) => f.check === id);
    assert.deepEqual(
      ['env.hypervisor', 'parent.kind', 'parent.mtu', 'host.network-manager', 'host.systemd-networkd'].map(
        (id) => by(id)?.severity,
      ),
      ['warn', 'blocking', 'ok', 'warn', 'ok'],
    );
    assert.equal(r.worst, 'blocking');
    const text = await run(bin, ['doctor', '--parent', 'wlan0'], { env });
    assert.equal(text.code, 1);
    assert.match(text.stdout, /^blocking parent\.kind +wlan0 is a wireless \(802\.11\) device: /m);
    assert.match(text.stdout, /^ +fix: use a wired parent, or -o kind=ipvlan/m);
  } finally {
    t.remove();
  }
});

test("the parent's kind from the kernel's own sysfs: a bridge, a veth, a macvlan on it, a missing link", async () => {
  const ns = await TestNetns.create('doctor');
  try {
    for (const cmd of [
      ['link', 'add', 'br0', 'type', 'bridge'],
      ['link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1'],
      ['link', 'add', 'mv0', 'link', 'v0', 'type', 'macvlan', 'mode', 'bridge'],
      ['link', 'set', 'v1', 'mtu', '1200'],
      ['link', 'set', 'v0', 'up'],
      ['link', 'set', 'v1', 'up'],
      ['addr', 'add', '198.18.16.2/24', 'dev', 'v0'],
      ['route', 'add', 'default', 'via', '198.18.16.1', 'dev', 'v0'],
    ])
      assert.equal((await run('ip', ['-n', ns.name, ...cmd])).code, 0, cmd.join(' '));
    // `ip netns exec` mounts the namespace's own sysfs, as a host's /sys is its root namespace's.
    const kind = async (parent: string) => {
      const r = await run('ip', [
        'netns',
        'exec',
        ns.name,
        process.execPath,
        bin,
        'doctor',
        '--parent',
        parent,
        '--json',
      ]);
      const rep = schema(r.stdout);
      const f = (id: string) => rep.findings.find((x) => x.check === id);
      return [
        f('parent.kind')?.detail?.kind,
        f('parent.kind')?.severity,
        f('parent.mtu')?.severity,
        r.code,
        rep.gateway,
        rep.findings.filter((x) => x.severity === 'blocking' && x.check.startsWith('parent.')).map((x) => x.check),
        rep.findings,
      ] as const;
    };
    assert.deepEqual((await kind('br0')).slice(0, 3), ['bridge', 'ok', 'ok']);
    // The parent's default route gives the gateway the LAN checks ask.
    const v0 = await kind('v0');
    assert.deepEqual([...v0.slice(0, 3), v0[4]], ['veth', 'ok', 'ok', '198.18.16.1']);
    assert.deepEqual((await kind('v1')).slice(0, 3), ['veth', 'ok', 'warn']);
    assert.deepEqual((await kind('mv0')).slice(0, 3), ['stacked', 'ok', 'ok']);
    // One cause, one blocking finding: parent.exists blocks for a missing link; kind and MTU stand down (ok,
    // "not judged"), also for name.vid whose base is missing too.
    for (const missing of ['nope0', 'nope0.50']) {
      const m = await kind(missing);
      assert.deepEqual(m.slice(0, 6), [null, 'ok', 'ok', 1, undefined, ['parent.exists']], missing);
      for (const id of ['parent.kind', 'parent.mtu']) {
        const f = m[6].find((x) => x.check === id)!;
        assert.equal(
          f.summary,
          `not judged: ${missing} does not exist (no /sys/class/net/${missing}); parent.exists reports it`,
        );
        assert.equal(f.detail?.standsDownFor, 'parent.exists');
      }
    }
    // v0.50 is not there yet, but v0 is: no missing parent; v0 is judged (exists, up, carrier, kind, MTU).
    const vlan = await kind('v0.50');
    assert.deepEqual(vlan.slice(0, 6), ['veth', 'ok', 'ok', 0, undefined, []]);
    const exists = vlan[6].find((x) => x.check === 'parent.exists')!;
    assert.equal(exists.severity, 'ok');
    assert.match(
      exists.summary,
      /^parent v0\.50 is not there yet: macnet creates it as vlan 50 on v0, which exists \(veth, MTU 1500/,
    );
    assert.deepEqual(
      vlan[6].filter((x) => /^parent\.(up|carrier|passthru|ipvlan)$/.test(x.check)).map((x) => x.severity),
      ['ok', 'ok', 'ok', 'ok'],
    );
  } finally {
    await ns.delete();
  }
});
