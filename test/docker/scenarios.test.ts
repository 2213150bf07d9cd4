// Docker's own macvlan and ipvlan integration scenarios (moby integration/network/{macvlan,ipvlan}) ported to
// `-d macnet --ipam-driver macnet`, against a real dockerd (Debian's 20.10) and a real macnet daemon in one lab
// host. The IPAM, point-to-point and DNS scenarios: scenarios-ipam.test.ts.
//
// Docker's scenarios use a dummy master (dm-dummy0) and vlan sub-interfaces of it. This machine's kernel has
// neither dummy nor 802.1q vlan: plain parents here are veth links made inside the host namespace (a "second
// NIC" whose peer is a port of the LAN switch, or a lone pair that reaches nothing); the vlan versions run where
// the kernel has vlan and skip here once macnet (or ip) has shown that it has not.
//
// Each file shares one lab; after every test the containers and networks go and the host must have exactly its
// own links again (no endpoint link mn<11 hex>, no LAN probe link mnp<10 hex>, no dm-/di- parent, no vlan
// macnet made, no test link).
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { LAN } from '../lab/lab';
import { engineLacks, kernelLacks } from '../skip-policy';
import { ipJson, run } from '../lab/sh';
import {
  h,
  made,
  scenario,
  lines,
  dk,
  ok,
  create,
  mknet,
  start,
  ping,
  hostLinks,
  networks,
  settings,
  lanNic,
  loneVeth,
} from './fixture';

/**
 * Creates a macnet network on a vlan parent name.vid, which macnet creates itself. True if it exists; on a
 * kernel without 802.1q it asserts macnet's exact refusal and skips the test with that reason.
 */
async function vlanNet(t: TestContext, name: string, parent: string, ...opts: string[]): Promise<boolean> {
  const r = await create(name, '-o', `parent=${parent}`, ...opts);
  if (r.code === 0) return true;
  const base = parent.split('.')[0]!;
  assert.match(
    r.stderr.trim(),
    new RegExp(
      `^Error response from daemon: remote: KERNEL_FEATURE_MISSING: create vlan "${parent.replace('.', '\\.')}" on parent "${base}": KERNEL_FEATURE_MISSING: vlan \\(this kernel has no "vlan" link type; EOPNOTSUPP: Unknown device type\\)$`,
    ),
  );
  assert.deepEqual(await networks(), [], 'the refused network does not exist');
  t.skip(
    kernelLacks(
      '802.1q vlan',
      '(network create: KERNEL_FEATURE_MISSING); test/vm/docker-in-vm.test.ts runs vlan parents with a real dockerd under a stock kernel in the VM (vlan-lifecycle, vlan-isolation, vlan-mtu)',
    ),
  );
  return false;
}

async function restartDockerd(): Promise<void> {
  const child = h.dockerd!;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    await exited;
  }
  await h.startDockerd();
}

scenario(
  "Persistence: networks survive a restart of dockerd (this host's dockerd, the macnet daemon keeps running)",
  async () => {
    await loneVeth('par0');
    await mknet('persist', '-o', 'parent=par0');
    await mknet('persist-noparent');
    const implicit = (await hostLinks()).filter((n) => n.startsWith('dm-'));
    assert.equal(implicit.length, 1, 'the network without parent has its dm- parent');
    // A container that runs across the restart: dockerd stops it, deletes its endpoint at start, and starts
    // it again on demand, so macnet must still know the network then.
    await start('keeper', 'persist', '--stop-timeout', '1'); // sleep as pid 1 ignores SIGTERM
    await restartDockerd();
    assert.deepEqual(await networks(), ['persist', 'persist-noparent']);
    assert.deepEqual(
      (await hostLinks()).filter((n) => /^dm-|^mn[0-9a-f]{11}$/.test(n)),
      implicit,
      'the dm- parent is still there; no endpoint link is left over',
    );
    await ok('start', 'keeper');
    assert.match(await ok('exec', 'keeper', 'ip', '-o', '-4', 'addr', 'show', 'eth0'), /inet 198\.18\.128\.\d+\/24/);
    for (const n of ['persist', 'persist-noparent']) await ok('run', '--rm', '--net', n, 'busybox:local', 'true');
  },
);

scenario("Persistence with a vlan parent: macnet's parent.60 survives a dockerd restart", async (t) => {
  await loneVeth('par0');
  if (!(await vlanNet(t, 'persist-vlan', 'par0.60'))) return;
  await restartDockerd();
  assert.deepEqual(await networks(), ['persist-vlan']);
  assert.ok((await hostLinks()).includes('par0.60'));
});

scenario('Subinterface (plain parent): removing the network keeps the parent the user made', async () => {
  await loneVeth('par0');
  const [before] = await ipJson<{ ifindex: number; operstate: string }[]>(h.ns.name, 'link', 'show', 'par0');
  await mknet('sub', '-o', 'parent=par0');
  await ok('network', 'rm', 'sub');
  assert.deepEqual(await networks(), []);
  const [now] = await ipJson<{ ifindex: number; operstate: string }[]>(h.ns.name, 'link', 'show', 'par0');
  assert.deepEqual([now!.ifindex, now!.operstate], [before!.ifindex, before!.operstate], 'the same link, untouched');
});

scenario("Subinterface (vlan): a user-made vlan parent survives the network's removal", async (t) => {
  await loneVeth('par0');
  const r = await run('ip', [
    '-n',
    h.ns.name,
    'link',
    'add',
    'link',
    'par0',
    'name',
    'par0.20',
    'type',
    'vlan',
    'id',
    '20',
  ]);
  if (r.code !== 0) {
    assert.match(r.stderr, /Unknown device type|not supported/i);
    return t.skip(
      kernelLacks(
        '802.1q vlan',
        `(ip link add ... type vlan: ${r.stderr.trim()}); test/vm/docker-in-vm.test.ts runs vlan parents with a real dockerd under a stock kernel in the VM (vlan-lifecycle, vlan-isolation, vlan-mtu)`,
      ),
    );
  }
  made.unshift('par0.20');
  await mknet('sub', '-o', 'parent=par0.20');
  await ok('network', 'rm', 'sub');
  assert.ok((await hostLinks()).includes('par0.20'), "the user's vlan link stays");
});

for (const order of ['OverlapParent', 'OverlapDeleteCreatedSecond'] as const) {
  scenario(
    `${order} (vlan): two networks share the vlan parent macnet made; it goes with the last of them`,
    async (t) => {
      await loneVeth('par0');
      if (!(await vlanNet(t, 'first', 'par0.40'))) return;
      await mknet('second', '-o', 'parent=par0.40');
      const [gone, last] = order === 'OverlapParent' ? ['second', 'first'] : ['first', 'second'];
      await ok('network', 'rm', gone);
      assert.ok((await hostLinks()).includes('par0.40'), `par0.40 stays while ${last} uses it`);
      await ok('network', 'rm', last);
      const links = await hostLinks();
      assert.ok(!links.includes('par0.40'), 'removed with the last network');
      assert.ok(links.includes('par0'), 'the base link stays');
    },
  );
}

scenario('OverlapKeepExistingParent: two networks on one existing parent; removing both keeps it', async () => {
  await loneVeth('par0');
  await mknet('first', '-o', 'parent=par0');
  await mknet('second', '-o', 'parent=par0');
  await ok('network', 'rm', 'second');
  await ok('network', 'rm', 'first');
  assert.ok((await hostLinks()).includes('par0'));
});

scenario(
  'OverlapParentPassthruFirst: a passthru network takes its parent; a second network there is refused',
  async () => {
    await lanNic('nic1');
    await mknet(
      'pt',
      '-o',
      'parent=nic1',
      '-o',
      'macvlan_mode=passthru',
      '--subnet',
      LAN.subnet4,
      '--gateway',
      LAN.router4,
      '--ip-range',
      '198.18.15.64/28',
    );
    const r = await create('pt-overlap', '-o', 'parent=nic1');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /PARENT_IN_USE: macvlan network [0-9a-f]{12} already uses parent "nic1" in passthru mode/);
    // The passthru container is the LAN port's only user: it reaches the router through it.
    await start('c1', 'pt');
    await ping('c1', LAN.router4);
    await ok('rm', '-f', 'c1');
    await ok('network', 'rm', 'pt');
    assert.deepEqual(await networks(), []);
    assert.ok((await hostLinks()).includes('nic1'), "the user's parent stays");
  },
);

scenario('OverlapParentPassthruSecond: passthru on a parent another network uses is refused', async () => {
  await loneVeth('par0');
  await mknet('br', '-o', 'parent=par0');
  const r = await create('pt', '-o', 'parent=par0', '-o', 'macvlan_mode=passthru');
  assert.notEqual(r.code, 0);
  assert.match(
    r.stderr,
    /PARENT_IN_USE: cannot use macvlan_mode passthru: macvlan network [0-9a-f]{12} already uses parent "par0"; passthru needs a parent of its own/,
  );
  assert.deepEqual(await networks(), ['br']);
  await ok('network', 'rm', 'br');
  assert.ok((await hostLinks()).includes('par0'));
});

scenario('NilParent: without a parent, macnet makes dm-<id>; containers on it ping each other', async () => {
  const id = await mknet('nil');
  assert.ok((await hostLinks()).includes(`dm-${id.slice(0, 12)}`));
  await start('c1', 'nil');
  await start('c2', 'nil');
  await ping('c2', 'c1');
  await ping('c2', (await settings('c1', 'nil')).IPAddress);
});

scenario('InternalMode: an internal network reaches no external address; its containers reach each other', async () => {
  await lanNic('nic1');
  // Docker's scenario (no parent, --internal), then the same with a parent on the LAN and a subnet beside it.
  await mknet('int', '--internal');
  await mknet('int-parent', '--internal', '-o', 'parent=nic1', '--subnet', '198.18.161.0/24');
  for (const n of ['int', 'int-parent']) {
    await start(`${n}-1`, n);
    await start(`${n}-2`, n);
    const r = await dk('exec', `${n}-1`, 'ping', '-c', '1', '-W', '1', LAN.router4);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /Network is unreachable/, `${n}: external address`);
    assert.doesNotMatch(await ok('exec', `${n}-1`, 'ip', 'route'), /default/);
    await ping(`${n}-2`, `${n}-1`);
  }
});

/** Docker's MultiSubnet scenario: two v4 subnets and two v6 /64s, the second of each with a gateway given. */
async function multiSubnet(driver: string, network: string, parent: string[]): Promise<Record<string, string>> {
  const ipam = driver === 'macnet' ? ['--ipam-driver', 'macnet'] : [];
  await ok(
    'network',
    'create',
    '-d',
    driver,
    ...ipam,
    ...parent,
    '--ipv6',
    '--subnet',
    '198.18.100.0/24',
    '--subnet',
    '198.18.102.0/24',
    '--gateway',
    '198.18.102.254',
    '--subnet',
    '2001:db8:abc2::/64',
    '--subnet',
    '2001:db8:abc4::/64',
    '--gateway',
    '2001:db8:abc4::254',
    network,
  );
  const ctrs = [
    ['100.20', 'abc2::20'],
    ['100.21', 'abc2::21'],
    ['102.20', 'abc4::20'],
    ['102.21', 'abc4::21'],
  ];
  for (const [i, [v4, v6]] of ctrs.entries())
    await start(`${network}-${i + 1}`, network, '--ip', `198.18.${v4}`, '--ip6', `2001:db8:${v6}`);
  const gw: Record<string, string> = {};
  for (const [from, to] of [
    [2, 1],
    [4, 3],
  ] as const) {
    const s = await settings(`${network}-${to}`, network);
    assert.equal(s.IPAddress, `198.18.${ctrs[to - 1]![0]}`);
    assert.equal(s.GlobalIPv6Address, `2001:db8:${ctrs[to - 1]![1]}`);
    Object.assign(gw, { [`c${to} v4`]: s.Gateway, [`c${to} v6`]: s.IPv6Gateway });
    await ping(`${network}-${from}`, s.IPAddress);
    await ping(`${network}-${from}`, s.GlobalIPv6Address, '-6');
  }
  return gw;
}

scenario(
  'MultiSubnetWithParent: static --ip/--ip6 in each subnet, pings, gateways as given (as the built-in driver)',
  async (t) => {
    await loneVeth('par0');
    // The baseline first: this engine's built-in macvlan on the same parent (it refuses to share one).
    const builtin = await multiSubnet('macvlan', 'builtin', ['-o', 'parent=par0']);
    await ok('rm', '-f', 'builtin-1', 'builtin-2', 'builtin-3', 'builtin-4');
    await ok('network', 'rm', 'builtin');
    const macnet = await multiSubnet('macnet', 'mn', ['-o', 'parent=par0']);
    t.diagnostic(`gateways: built-in ${JSON.stringify(builtin)}, macnet ${JSON.stringify(macnet)}`);
    assert.equal(macnet['c3 v4'], '198.18.102.254', 'the given v4 gateway');
    assert.equal(macnet['c3 v6'], '2001:db8:abc4::254', 'the given v6 gateway');
    // Without a given gateway, engines before v28 always have IPAM allocate one (the subnet's first address) and
    // the built-in driver uses it; v28+ skips it (GwAllocChecker). macnet must do what this engine's built-in does.
    assert.deepEqual(macnet, builtin);
  },
);

scenario('MultiSubnetNoParent: the same without a parent: no gateway at all (an internal network)', async () => {
  const gw = await multiSubnet('macnet', 'mn', []);
  assert.deepEqual(gw, { 'c1 v4': '', 'c1 v6': '', 'c3 v4': '', 'c3 v6': '' });
});

scenario("Addressing: v4 and v6 default routes as this engine's built-in macvlan driver sets them", async (t) => {
  await loneVeth('par0');
  const routes: Record<string, string[]> = {};
  for (const driver of ['macvlan', 'macnet']) {
    const ipam = driver === 'macnet' ? ['--ipam-driver', 'macnet'] : [];
    await ok(
      'network',
      'create',
      '-d',
      driver,
      ...ipam,
      '-o',
      'parent=par0',
      '-o',
      'macvlan_mode=bridge',
      '--ipv6',
      '--subnet',
      '198.18.130.0/24',
      '--subnet',
      '2001:db8:abca::/64',
      '--gateway',
      '2001:db8:abca::254',
      `dual-${driver}`,
    );
    await start(`a-${driver}`, `dual-${driver}`);
    const v4 = await ok('exec', `a-${driver}`, 'ip', 'route');
    const v6 = await ok('exec', `a-${driver}`, 'ip', '-6', 'route');
    routes[driver] = [...lines(v4), ...lines(v6)].filter((l) => l.startsWith('default'));
    assert.match(v6, /default via 2001:db8:abca::254 dev eth0/, `${driver}: the given v6 gateway`);
    await ok('rm', '-f', `a-${driver}`);
    await ok('network', 'rm', `dual-${driver}`);
  }
  t.diagnostic(`default routes: ${JSON.stringify(routes)}`);
  // 20.10 to 27: "default via 198.18.130.1" (IPAM's inferred gateway); v28+: no v4 default route.
  assert.deepEqual(routes.macnet, routes.macvlan);
});

scenario('ParentDown: a container attaches while the parent is down', async () => {
  await loneVeth('par0', false);
  await mknet('down', '-o', 'parent=par0', '--ipv6', '--subnet', '198.18.162.0/24', '--subnet', '2001:db8:162::/64');
  await start('c1', 'down');
  const a = await ok('exec', 'c1', 'ip', 'addr', 'show', 'eth0');
  assert.match(a, /inet 198\.18\.162\.\d+\/24/);
  assert.match(a, /inet6 2001:db8:162::[0-9a-f]+\/64 scope global/);
});

scenario(
  'EndpointWithCustomIfname: --driver-opt com.docker.network.endpoint.ifname names the interface; beside the built-in driver',
  async () => {
    const IFNAME = 'com.docker.network.endpoint.ifname';
    const major = Number((await ok('version', '--format', '{{.Server.Version}}')).split('.')[0]);
    await loneVeth('par0');
    await loneVeth('par1');
    await mknet('ifn');
    await ok('network', 'create', '-d', 'macvlan', '-o', 'parent=par0', '--subnet', '198.18.165.0/24', 'ifn-builtin');
    await mknet('ifn2', '-o', 'parent=par1', '--subnet', '198.18.166.0/24');
    await start('c1', 'ifn');
    const links = async () =>
      lines(await ok('exec', 'c1', 'ip', '-o', 'link')).map((l) => /^\d+: ([^@:]+)/.exec(l)?.[1]);
    // The built-in driver takes any name from Docker 28 on; 20.10 ignores the option and numbers the link.
    await ok('network', 'connect', '--driver-opt', `${IFNAME}=foobar`, 'ifn-builtin', 'c1');
    assert.deepEqual(await links(), ['lo', 'eth0', major >= 28 ? 'foobar' : 'eth1'], 'the built-in driver');
    // Docker's plugin API carries a prefix, not a name, numbered from 0: a name ending in 0 comes out exactly, on
    // every engine (20.10 included); any other name is refused with the reason, and the container is untouched.
    const r = await dk('network', 'connect', '--driver-opt', `${IFNAME}=foobar`, 'ifn2', 'c1');
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /ENDPOINT_INVALID: --driver-opt com\.docker\.network\.endpoint\.ifname=foobar: give a Linux interface name of at most 15 bytes that ends in 0 after a letter or "-", such as lan0 or iot0/,
    );
    assert.deepEqual(
      await links(),
      ['lo', 'eth0', major >= 28 ? 'foobar' : 'eth1'],
      'nothing changed in the container',
    );
    await ok('network', 'connect', '--driver-opt', `${IFNAME}=lan0`, 'ifn2', 'c1');
    assert.deepEqual(
      await links(),
      ['lo', 'eth0', major >= 28 ? 'foobar' : 'eth1', 'lan0'],
      'macnet: the name asked for',
    );
    assert.match(await ok('exec', 'c1', 'ip', '-o', '-4', 'addr', 'show', 'lan0'), /inet 198\.18\.166\.\d+\/24/);
  },
);

scenario(
  'GwPriority: a macnet network beside a built-in macvlan one; the default route follows --gw-priority',
  async (t) => {
    const version = await ok('version', '--format', '{{.Server.Version}}');
    if (Number(version.split('.')[0]) < 28) {
      return t.skip(
        engineLacks(version, 'gateway priority (--gw-priority)', 28, 'the engine picks the default route itself'),
      );
    }
    await lanNic('nic1');
    await loneVeth('par0');
    await mknet(
      'gwa',
      '-o',
      'parent=nic1',
      '--subnet',
      LAN.subnet4,
      '--gateway',
      LAN.router4,
      '--ip-range',
      '198.18.15.192/27',
    );
    await ok(
      'network',
      'create',
      '-d',
      'macvlan',
      '-o',
      'parent=par0',
      '--subnet',
      '198.18.163.0/24',
      '--gateway',
      '198.18.163.254',
      'gwb',
    );
    // The gateway of the one default route (which ethN carries it depends on the engine's interface order).
    const defaultVia = async (ctr: string) =>
      lines(await ok('exec', ctr, 'ip', 'route'))
        .filter((l) => l.startsWith('default '))
        .map((l) => l.replace(/ dev eth\d+.*$/, ''));
    const run = (name: string, ...nets: string[]) =>
      ok('run', '-d', '--name', name, ...nets.flatMap((n) => ['--network', n]), 'busybox:local', 'sleep', '600');
    await run('c1', 'name=gwa,gw-priority=0', 'name=gwb,gw-priority=10');
    assert.deepEqual(await defaultVia('c1'), ['default via 198.18.163.254'], 'the built-in network has the priority');
    await run('c2', 'name=gwa,gw-priority=10', 'name=gwb');
    assert.deepEqual(await defaultVia('c2'), [`default via ${LAN.router4}`], 'the macnet network has the priority');
    await ping('c2', LAN.router4);
    // Connecting a network with a higher priority moves the default route to it.
    await run('c3', 'name=gwb');
    assert.deepEqual(await defaultVia('c3'), ['default via 198.18.163.254']);
    await ok('network', 'connect', '--gw-priority', '100', 'gwa', 'c3');
    assert.deepEqual(await defaultVia('c3'), [`default via ${LAN.router4}`], 'after connect --gw-priority 100');
    await ping('c3', LAN.router4);
  },
);

// ---- ipvlan (moby integration/network/ipvlan) ----
// This machine's kernel has no ipvlan: each scenario first proves that (macnet refuses the network at create with
// KERNEL_FEATURE_MISSING) and skips; on a kernel with ipvlan the same code runs the whole scenario.

/**
 * Creates a macnet ipvlan network (-o ipvlan_mode=MODE selects ipvlan). False, with the test skipped, if the kernel
 * has none.
 */
async function ipvlanNet(t: TestContext, name: string, mode: 'l2' | 'l3', ...opts: string[]): Promise<boolean> {
  const r = await create(name, '-o', `ipvlan_mode=${mode}`, ...opts);
  if (r.code === 0) return true;
  assert.match(
    r.stderr.trim(),
    /^Error response from daemon: remote: KERNEL_FEATURE_MISSING: create ipvlan "mn[0-9a-f]{11}" on parent "(par0|nic1|di-[0-9a-f]{12})": KERNEL_FEATURE_MISSING: ipvlan \(this kernel has no "ipvlan" link type; EOPNOTSUPP: Unknown device type\)$/,
  );
  assert.deepEqual(await networks(), [], 'the refused network does not exist');
  t.skip(
    kernelLacks(
      'ipvlan',
      '(network create: KERNEL_FEATURE_MISSING); test/vm/docker-in-vm.test.ts runs ipvlan networks with a real dockerd under a stock kernel in the VM (ipvlan-l2, ipvlan-l3, ipvlan-l3s, ...)',
    ),
  );
  return false;
}
const engineMajor = async () => Number((await ok('version', '--format', '{{.Server.Version}}')).split('.')[0]);

scenario('ipvlan L2: containers on a LAN parent reach each other by name and the router', async (t) => {
  await lanNic('nic1');
  if (
    !(await ipvlanNet(
      t,
      'l2',
      'l2',
      '-o',
      'parent=nic1',
      '--subnet',
      LAN.subnet4,
      '--gateway',
      LAN.router4,
      '--ip-range',
      '198.18.15.160/27',
    ))
  )
    return;
  await start('c1', 'l2');
  await start('c2', 'l2');
  await ping('c2', 'c1');
  await ping('c1', LAN.router4);
  assert.match(
    await ok('exec', 'c1', 'ip', 'route'),
    new RegExp(`default via ${LAN.router4.replace(/\./g, '\\.')} dev eth0`),
  );
});

scenario('ipvlan L3: two subnets on one parent; containers in each ping across (default dev eth0)', async (t) => {
  await loneVeth('par0');
  if (
    !(await ipvlanNet(t, 'l3', 'l3', '-o', 'parent=par0', '--subnet', '198.18.220.0/24', '--subnet', '198.18.230.0/24'))
  )
    return;
  await start('c1', 'l3', '--ip', '198.18.220.10');
  await start('c2', 'l3', '--ip', '198.18.230.10');
  await ping('c2', '198.18.220.10');
  await ping('c1', 'c2');
  assert.match(await ok('exec', 'c1', 'ip', 'route'), /default dev eth0/);
});

scenario('ipvlan L3NilParent: no parent, two subnets, containers ping across by name', async (t) => {
  if (!(await ipvlanNet(t, 'l3nil', 'l3', '--subnet', '198.18.230.0/24', '--subnet', '198.18.220.0/24'))) return;
  await start('c1', 'l3nil', '--ip', '198.18.220.10');
  await start('c2', 'l3nil', '--ip', '198.18.230.10');
  await ping('c2', 'c1');
});

scenario(
  'ipvlan L3MultiSubnet: no gateway is reported in l3, given or not; pings in each subnet, v4 and v6',
  async (t) => {
    if (
      !(await ipvlanNet(
        t,
        'l3multi',
        'l3',
        '--ipv6',
        '--subnet',
        '198.18.10.0/24',
        '--subnet',
        '198.18.12.0/24',
        '--gateway',
        '198.18.12.254',
        '--subnet',
        '2001:db8:abc9::/64',
        '--subnet',
        '2001:db8:abc7::/64',
        '--gateway',
        '2001:db8:abc7::254',
      ))
    )
      return;
    const ctrs = [
      ['10.20', 'abc9::20'],
      ['10.21', 'abc9::21'],
      ['12.20', 'abc7::20'],
      ['12.21', 'abc7::21'],
    ];
    for (const [i, [v4, v6]] of ctrs.entries())
      await start(`c${i + 1}`, 'l3multi', '--ip', `198.18.${v4}`, '--ip6', `2001:db8:${v6}`);
    for (const [from, to] of [
      [2, 1],
      [4, 3],
    ] as const) {
      const s = await settings(`c${to}`, 'l3multi');
      assert.deepEqual([s.Gateway, s.IPv6Gateway], ['', ''], `c${to}: no gateway in l3`);
      await ping(`c${from}`, s.IPAddress);
      await ping(`c${from}`, s.GlobalIPv6Address, '-6');
    }
  },
);

scenario('ipvlan L2Gateway: l2 sets "default via <given gateway> dev eth0"', async (t) => {
  await loneVeth('par0');
  if (
    !(await ipvlanNet(
      t,
      'l2gw',
      'l2',
      '-o',
      'parent=par0',
      '--ipv6',
      '--subnet',
      '198.18.140.0/24',
      '--gateway',
      '198.18.140.254',
      '--subnet',
      '2001:db8:abcb::/64',
    ))
  )
    return;
  await start('c1', 'l2gw');
  assert.match(await ok('exec', 'c1', 'ip', 'route'), /default via 198\.18\.140\.254 dev eth0/);
  const v6 = await ok('exec', 'c1', 'ip', '-6', 'route');
  // No v6 gateway given: before v28 the engine has the IPAM infer the first address (see Addressing); v28+ none.
  if ((await engineMajor()) < 28) assert.match(v6, /default via 2001:db8:abcb::1 dev eth0/);
  else assert.doesNotMatch(v6, /default via/);
});

scenario('ipvlan L3Addressing: l3 sets "default dev eth0" for v4 and v6 and ignores the gateways', async (t) => {
  await loneVeth('par0');
  if (
    !(await ipvlanNet(
      t,
      'l3addr',
      'l3',
      '-o',
      'parent=par0',
      '--ipv6',
      '--subnet',
      '198.18.140.0/24',
      '--gateway',
      '198.18.140.254',
      '--subnet',
      '2001:db8:abcb::/64',
      '--gateway',
      '2001:db8:abcb::254',
    ))
  )
    return;
  await start('c1', 'l3addr');
  for (const fam of [[], ['-6']]) {
    const r = await ok('exec', 'c1', 'ip', ...fam, 'route');
    assert.match(r, /default dev eth0/);
    assert.doesNotMatch(r, /default via/);
  }
});

scenario('ipvlan OverlapParent: a second ipvlan network on a parent in use must fail', async (t) => {
  await loneVeth('par0');
  if (!(await ipvlanNet(t, 'first', 'l2', '-o', 'parent=par0'))) return;
  const r = await create('second', '-o', 'ipvlan_mode=l2', '-o', 'parent=par0');
  assert.notEqual(r.code, 0);
  assert.match(
    r.stderr,
    /PARENT_IN_USE: ipvlan network [0-9a-f]{12} already uses parent "par0"; ipvlan networks cannot share a parent/,
  );
  assert.deepEqual(await networks(), ['first']);
});
