// Invalid requests, table-driven, each with the error text exactly as the user sees it: on stderr of the docker
// CLI (network create, run) or in the Err field of a raw plugin reply. After each one the host's links are
// exactly as before, the store has no new network or endpoint record, and the IPAM's pools and addresses are
// as before (dockerd released whatever it had requested before the refusal).
import { after, before } from 'node:test';
import { ENGINE, describe, test } from '../lab/engine-test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { CATALOGUE, type ErrorCode } from '../../src/errors';
import { SqliteStore } from '../../src/store/sqlite';
import { Daemon } from '../lab/daemon';
import { Lab, type LabHost, dockerMissing } from '../lab/lab';
import { run, sh } from '../lab/sh';

const IMAGE = 'busybox:local';
const MACNET = ['-d', 'macnet', '--ipam-driver', 'macnet'];
const DAEMON = 'Error response from daemon: ';
const REMOTE = `${DAEMON}remote: `;
const MAJOR = typeof ENGINE === 'string' ? 0 : Number(ENGINE.version.split('.')[0]);
/** The text for this engine: the entry of the highest major version at or below the engine's. */
const byEngine = (m: Record<number, string>) => (): string => {
  const k = Object.keys(m)
    .map(Number)
    .filter((v) => v <= MAJOR)
    .sort((a, b) => b - a)[0];
  return m[k ?? Number(Object.keys(m)[0])]!;
};
/**
 * What `docker run` prints for an error the daemon got while connecting the container: Docker 28 says where it
 * failed and adds the CLI's help hint; before, the daemon's text ended with a full stop. macnet's part is the same.
 */
const runError = (part: string) =>
  byEngine({
    20: `docker: ${DAEMON}${part}.`,
    28: `docker: ${DAEMON}failed to set up container networking: ${part}\nRun 'docker run --help' for more information`,
  });
/** A non-Ethernet link in the host namespace (a tun device: hardware type "none", 65534). */
const TUN = 'mntun0';

let lab: Lab;
let host: LabHost;
let d: Daemon;
/** Which link kinds this kernel can create (probed in a scratch namespace). */
const kernelHas: Record<'vlan' | 'ipvlan', boolean> = { vlan: false, ipvlan: false };
/** Fixture network name → id. */
const fx: Record<string, string> = {};

before(async () => {
  assert.equal(process.getuid?.(), 0, 'needs root');
  assert.equal(dockerMissing(), undefined);
  lab = await Lab.create({ hosts: 1, docker: true });
  host = lab.hosts[0]!;
  d = await Daemon.start({ netns: host.ns.path, mountNs: host.mountNs, pluginDir: host.pluginDir });
  await sh('ip', '-n', host.ns.name, 'tuntap', 'add', 'mode', 'tun', 'name', TUN);
  const probe = await lab.newNetns('probe');
  await sh('ip', '-n', probe.name, 'link', 'add', 'pa', 'type', 'veth', 'peer', 'name', 'pb');
  kernelHas.vlan =
    (await run('ip', ['-n', probe.name, 'link', 'add', 'link', 'pa', 'name', 'pa.5', 'type', 'vlan', 'id', '5']))
      .code === 0;
  kernelHas.ipvlan =
    (await run('ip', ['-n', probe.name, 'link', 'add', 'link', 'pa', 'name', 'pi', 'type', 'ipvlan', 'mode', 'l2']))
      .code === 0;
  await probe.delete();
});

after(async () => {
  try {
    await lab?.destroy();
  } finally {
    await d?.remove();
  }
});

// ---- what the user sees, and the state around it ----

/**
 * stderr as one string, without two lines that are noise here: dockerd 20.10's forwarding warning (this lab
 * disables forwarding) and the CLI's "error waiting for container: context canceled", which `docker run --rm`
 * sometimes adds after a failed start.
 */
const userError = (stderr: string): string =>
  stderr
    .split('\n')
    .filter(
      (l) =>
        l.trim() &&
        !l.startsWith('WARNING: IPv4 forwarding') &&
        !/level=error msg="error waiting for container: context canceled"/.test(l),
    )
    .join('\n')
    .trim();

async function docker(...args: string[]): Promise<string> {
  const r = await host.docker(...args);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

interface Snapshot {
  links: unknown;
  /** driver/networks, driver/endpoints, driver/parents, ipam/pools, ipam/addresses: key → value. */
  rows: Record<string, string>;
}

const WATCHED_ROWS = ['driver/networks/', 'driver/endpoints/', 'driver/parents/', 'ipam/pools/', 'ipam/addresses/'];

async function snapshot(): Promise<Snapshot> {
  const links = JSON.parse(await sh('ip', '-n', host.ns.name, '-json', 'link', 'show')) as unknown;
  const s = SqliteStore.open(path.join(d.opts.stateDir, 'state.db'));
  try {
    const rows: Record<string, string> = {};
    for (const p of WATCHED_ROWS) {
      for (const e of await s.list(p)) {
        let value = e.value;
        if (p === 'ipam/addresses/') {
          // A shared gateway counts its networks in "refs"; a record back at one reference may keep "refs":1
          // where a fresh one has none. The same state either way.
          const rec = JSON.parse(value) as { refs?: number };
          if (rec.refs === 1) delete rec.refs;
          value = JSON.stringify(rec);
        }
        rows[e.key] = value;
      }
    }
    return { links, rows };
  } finally {
    await s.close();
  }
}

// ---- the table ----

interface Case {
  name: string;
  /** Performs the invalid request; returns the error text the user sees (fails if the request succeeded). */
  act: () => Promise<string>;
  /** The exact text, or a tight pattern where the text holds a generated id. */
  expect: string | RegExp | (() => string);
  /** macnet's code, when the refusal is macnet's (undefined: the docker CLI or dockerd refuses first). */
  code?: ErrorCode;
  /** Why the case does not apply here (this kernel lacks a feature), or undefined. */
  skip?: () => string | undefined;
}

/** `docker network create -d macnet --ipam-driver macnet ARGS bad`; a network that got created is removed. */
const create =
  (...args: string[]) =>
  async (): Promise<string> => {
    const r = await host.docker('network', 'create', ...MACNET, ...args, 'bad');
    if (r.code === 0) {
      await host.docker('network', 'rm', 'bad');
      assert.fail(`docker network create ${args.join(' ')} succeeded`);
    }
    return userError(r.stderr);
  };

/** `docker run --rm --name bad-run ARGS busybox:local true`; a container it left (Created) is removed. */
const runOn =
  (...args: string[]) =>
  async (): Promise<string> => {
    const r = await host.docker('run', '--rm', '--name', 'bad-run', ...args, IMAGE, 'true');
    await host.docker('rm', '-f', 'bad-run');
    assert.notEqual(r.code, 0, `docker run ${args.join(' ')} succeeded`);
    return userError(r.stderr);
  };

/** A raw plugin call; returns its Err (which must equal Error, for IPAM replies). */
const raw = (method: string, body: unknown) => async (): Promise<string> => {
  const r = await d.call(method, body);
  assert.equal(r.status, 200);
  assert.equal(typeof r.body.Err, 'string', `${method} answered ${JSON.stringify(r.body)}`);
  assert.equal(r.body.Err, r.body.Error);
  return String(r.body.Err);
};

const S = ['--subnet', '198.18.31.0/24'];
const P = (v: string) => ['-o', `parent=${v}`];
const O = (kv: string) => ['-o', kv];

async function runCase(c: Case): Promise<void> {
  const before = await snapshot();
  const text = await c.act();
  const want = typeof c.expect === 'function' ? c.expect() : c.expect;
  if (typeof want === 'string') assert.equal(text, want);
  else assert.match(text, want);
  if (c.code) {
    assert.ok(c.code in CATALOGUE, `${c.code} is in the catalogue`);
    assert.ok(text.includes(`${c.code}: `), `the text carries the code ${c.code}`);
  }
  // dockerd releases pools and addresses before it answers the CLI; allow it a moment anyway.
  let now = await snapshot();
  for (let i = 0; i < 20 && JSON.stringify(now) !== JSON.stringify(before); i++) {
    await new Promise((r) => setTimeout(r, 100));
    now = await snapshot();
  }
  assert.deepEqual(now.links, before.links, "the host's links are exactly as before");
  const pick = (s: Snapshot, prefix: string) =>
    Object.fromEntries(Object.entries(s.rows).filter(([k]) => k.startsWith(prefix)));
  for (const p of WATCHED_ROWS) assert.deepEqual(pick(now, p), pick(before, p), `no change under ${p}`);
}

function table(cases: Case[]): void {
  for (const c of cases) {
    test(c.name, async (t) => {
      const why = c.skip?.();
      if (why) {
        t.skip(why);
        return;
      }
      await runCase(c);
    });
  }
}

// ---- network create: options, parents, IP data ----

describe('docker network create -d macnet --ipam-driver macnet: options and parents', () => {
  table([
    {
      name: 'unknown option (typo macvlan_mdoe)',
      act: create(...S, ...P('eth0'), ...O('macvlan_mdoe=bridge')),
      code: 'OPTION_UNKNOWN',
      expect: `${REMOTE}OPTION_UNKNOWN: unknown option "macvlan_mdoe": macnet knows parent, kind, macvlan_mode, ipvlan_mode, ipvlan_flag, mtu, conflict, mac, host_access, host_access_address, dns (and Docker's com.docker.network.* keys)`,
    },
    {
      name: 'bad macvlan_mode',
      act: create(...S, ...P('eth0'), ...O('macvlan_mode=foo')),
      code: 'OPTION_INVALID',
      expect: `${REMOTE}OPTION_INVALID: option macvlan_mode="foo" is not valid: use one of bridge, vepa, private, passthru ('bridge' is the default)`,
    },
    {
      name: 'bad ipvlan_mode',
      act: create(...S, ...P('eth0'), ...O('ipvlan_mode=l4')),
      code: 'OPTION_INVALID',
      expect: `${REMOTE}OPTION_INVALID: option ipvlan_mode="l4" is not valid: use one of l2, l3, l3s ('l2' is the default)`,
    },
    {
      name: 'bad ipvlan_flag',
      act: create(...S, ...P('eth0'), ...O('ipvlan_flag=x')),
      code: 'OPTION_INVALID',
      expect: `${REMOTE}OPTION_INVALID: option ipvlan_flag="x" is not valid: use one of bridge, private, vepa ('bridge' is the default)`,
    },
    {
      name: 'kind=foo',
      act: create(...S, ...P('eth0'), ...O('kind=foo')),
      code: 'OPTION_INVALID',
      expect: `${REMOTE}OPTION_INVALID: option kind="foo" is not valid: use one of macvlan, ipvlan ('macvlan' is the default)`,
    },
    {
      name: 'macvlan_mode with kind=ipvlan',
      act: create(...S, ...P('eth0'), ...O('kind=ipvlan'), ...O('macvlan_mode=bridge')),
      code: 'OPTION_INVALID',
      expect: `${REMOTE}OPTION_INVALID: option macvlan_mode="bridge" is not valid: an ipvlan network takes ipvlan_mode and ipvlan_flag, not macvlan_mode`,
    },
    {
      name: 'ipvlan_mode with kind=macvlan',
      act: create(...S, ...P('eth0'), ...O('kind=macvlan'), ...O('ipvlan_mode=l2')),
      code: 'OPTION_INVALID',
      expect: `${REMOTE}OPTION_INVALID: option kind="macvlan" is not valid: ipvlan_mode and ipvlan_flag need kind=ipvlan (or no kind)`,
    },
    {
      name: 'mtu not a number',
      act: create(...S, ...P('eth0'), ...O('mtu=abc')),
      code: 'OPTION_INVALID',
      expect: `${REMOTE}OPTION_INVALID: option mtu="abc" is not valid: use an integer from 68 to 65535, at most the parent's MTU`,
    },
    {
      name: 'mtu below the IPv4 minimum',
      act: create(...S, ...P('eth0'), ...O('mtu=20')),
      code: 'OPTION_INVALID',
      expect: `${REMOTE}OPTION_INVALID: option mtu="20" is not valid: use an integer from 68 to 65535, at most the parent's MTU`,
    },
    {
      name: "mtu above the parent's",
      act: create(...S, ...P('eth0'), ...O('mtu=9000')),
      code: 'MTU_TOO_LARGE',
      expect: `${REMOTE}MTU_TOO_LARGE: option mtu=9000 is larger than the MTU 1500 of parent "eth0"; use at most 1500`,
    },
    {
      name: 'mtu conflicting with com.docker.network.driver.mtu',
      act: create(...S, ...P('eth0'), ...O('mtu=1400'), ...O('com.docker.network.driver.mtu=1300')),
      code: 'OPTION_INVALID',
      expect: `${REMOTE}OPTION_INVALID: option com.docker.network.driver.mtu="1300" is not valid: it contradicts mtu=1400; give only one of mtu and com.docker.network.driver.mtu, or the same value to both`,
    },
    {
      name: 'parent missing',
      act: create(...S, ...P('eth7')),
      code: 'PARENT_NOT_FOUND',
      expect: `${REMOTE}PARENT_NOT_FOUND: option parent="eth7": the parent interface was not found on the host; Ethernet interfaces here: eth0`,
    },
    {
      name: 'parent lo',
      act: create(...S, ...P('lo')),
      code: 'PARENT_INVALID',
      expect: `${REMOTE}PARENT_INVALID: option parent="lo": the loopback interface is not a valid macvlan/ipvlan parent link; use an Ethernet interface`,
    },
    {
      name: 'parent not Ethernet-like (a tun device)',
      act: create(...S, ...P(TUN)),
      code: 'PARENT_INVALID',
      expect: `${REMOTE}PARENT_INVALID: option parent="${TUN}": not an Ethernet-like interface (hardware type 65534); macvlan and ipvlan need Ethernet (a NIC, bond, bridge or vlan)`,
    },
    {
      name: 'malformed name.vid: eth0.x',
      act: create(...S, ...P('eth0.x')),
      code: 'PARENT_INVALID',
      expect: `${REMOTE}PARENT_INVALID: option parent="eth0.x": required interface name format is name.vlan_id, e.g. eth0.10 for vlan 10`,
    },
    {
      name: 'malformed name.vid: eth0.1.2',
      act: create(...S, ...P('eth0.1.2')),
      code: 'PARENT_INVALID',
      expect: `${REMOTE}PARENT_INVALID: option parent="eth0.1.2": required interface name format is name.vlan_id, e.g. eth0.10 for vlan 10`,
    },
    ...[0, 4095, 5000].map((id): Case => ({
      name: `vlan id ${id}`,
      act: create(...S, ...P(`eth0.${id}`)),
      code: 'PARENT_INVALID',
      expect: `${REMOTE}PARENT_INVALID: option parent="eth0.${id}": vlan id must be between 1 and 4094, received ${id}`,
    })),
    {
      name: 'base of a vlan missing (eth9.50)',
      act: create(...S, ...P('eth9.50')),
      code: 'PARENT_NOT_FOUND',
      expect: `${REMOTE}PARENT_NOT_FOUND: option parent="eth9.50": the base interface "eth9" of vlan 50 was not found on the host; Ethernet interfaces here: eth0`,
    },
    {
      name: 'parent name over 15 characters',
      act: create(...S, ...P('enp0s31f6-uplink0')),
      code: 'OPTION_INVALID',
      expect: `${REMOTE}OPTION_INVALID: option parent="enp0s31f6-uplink0" is not a valid interface name (17 bytes): use 1 to 15 bytes (the kernel's limit) without spaces, NUL, '/' or ':'`,
    },
    {
      name: 'parent name with a space',
      act: create(...S, ...P('eth 0')),
      code: 'OPTION_INVALID',
      expect: `${REMOTE}OPTION_INVALID: option parent="eth 0" is not a valid interface name (5 bytes): use 1 to 15 bytes (the kernel's limit) without spaces, NUL, '/' or ':'`,
    },
    {
      name: 'passthru without a parent',
      act: create(...S, ...O('macvlan_mode=passthru')),
      code: 'OPTION_INVALID',
      expect: `${REMOTE}OPTION_INVALID: option macvlan_mode="passthru" is not valid: passthru needs a parent (-o parent=IFACE): it hands the whole parent to one container`,
    },
    {
      name: 'vlan parent on a kernel without 802.1q: nothing is left of the attempt',
      act: create(...S, ...P('eth0.50')),
      code: 'KERNEL_FEATURE_MISSING',
      skip: () => (kernelHas.vlan ? 'this kernel has 802.1q vlan links: the create would succeed' : undefined),
      expect: `${REMOTE}KERNEL_FEATURE_MISSING: create vlan "eth0.50" on parent "eth0": KERNEL_FEATURE_MISSING: vlan (this kernel has no "vlan" link type; EOPNOTSUPP: Unknown device type)`,
    },
    {
      name: 'ipvlan on a kernel without ipvlan',
      act: create(...S, ...P('eth0'), ...O('kind=ipvlan')),
      code: 'KERNEL_FEATURE_MISSING',
      skip: () => (kernelHas.ipvlan ? 'this kernel has ipvlan links: the create would succeed' : undefined),
      expect:
        /^Error response from daemon: remote: KERNEL_FEATURE_MISSING: create ipvlan "mn[0-9a-f]{11}" on parent "eth0": KERNEL_FEATURE_MISSING: ipvlan \(this kernel has no "ipvlan" link type; EOPNOTSUPP: Unknown device type\)$/,
    },
  ]);
});

describe('docker network create: IP data and IPAM options', () => {
  table([
    {
      name: 'ip-range outside the subnet (the docker CLI refuses it first)',
      act: create(...S, '--ip-range', '198.18.32.0/28', ...P('eth0')),
      expect: 'no matching subnet for range 198.18.32.0/28',
    },
    {
      name: 'gateway outside the subnet (the docker CLI refuses it first)',
      act: create(...S, '--gateway', '198.18.32.1', ...P('eth0')),
      expect: 'no matching subnet for gateway 198.18.32.1',
    },
    {
      name: 'aux-address outside the subnet (the docker CLI refuses it first)',
      act: create(...S, '--aux-address', 'nas=198.18.32.3', ...P('eth0')),
      expect: 'no matching subnet for aux-address 198.18.32.3',
    },
    {
      name: 'subnet malformed (dockerd refuses it first)',
      act: create('--subnet', '198.18.31.0/33', ...P('eth0')),
      expect: byEngine({
        20: `${DAEMON}Invalid subnet 198.18.31.0/33 : invalid CIDR address: 198.18.31.0/33`,
        28: `${DAEMON}invalid network config:\ninvalid subnet 198.18.31.0/33: invalid CIDR block notation`,
      }),
    },
    // Docker 28 refuses host bits itself, before the IPAM sees the subnet.
    {
      name: 'subnet with host bits set',
      act: create('--subnet', '198.18.31.5/24', ...P('eth0')),
      ...(MAJOR < 28 && { code: 'IPAM_POOL_INVALID' as const }),
      expect: byEngine({
        20: `${REMOTE}IPAM_POOL_INVALID: invalid subnet 198.18.31.5/24: it has host bits set, it should be 198.18.31.0/24`,
        28: `${DAEMON}invalid network config:\ninvalid subnet 198.18.31.5/24: it should be 198.18.31.0/24`,
      }),
    },
    {
      name: 'IPv6 subnet with host bits set (the IPv4 pool dockerd took first is released)',
      act: create('--ipv6', '--subnet', '2001:db8:31::1/64', ...P('eth0')),
      ...(MAJOR < 28 && { code: 'IPAM_POOL_INVALID' as const }),
      expect: byEngine({
        20: `${REMOTE}IPAM_POOL_INVALID: invalid subnet 2001:db8:31::1/64: it has host bits set, it should be 2001:db8:31::/64`,
        28: `${DAEMON}invalid network config:\ninvalid subnet 2001:db8:31::1/64: it should be 2001:db8:31::/64`,
      }),
    },
    {
      name: 'gateway is the network address',
      act: create(...S, '--gateway', '198.18.31.0', ...P('eth0')),
      code: 'IPAM_ADDRESS_OUT_OF_POOL',
      expect: `${DAEMON}failed to allocate gateway (198.18.31.0): remote: IPAM_ADDRESS_OUT_OF_POOL: RequestAddress: address 198.18.31.0 is the network address of 198.18.31.0/24 (pool LocalDefault/198.18.31.0/24)`,
    },
    {
      name: 'unknown --ipam-opt',
      act: create(...S, '--ipam-opt', 'foo=bar', ...P('eth0')),
      code: 'OPTION_UNKNOWN',
      expect: `${REMOTE}OPTION_UNKNOWN: RequestPool: unknown --ipam-opt "foo"; macnet's IPAM options: mode (pool | dhcp)`,
    },
  ]);
});

// ---- sharing a parent ----

describe('another network on eth0 (macvlan bridge, 198.18.16.0/24)', () => {
  before(async () => {
    fx.a = await docker('network', 'create', ...MACNET, '--subnet', '198.18.16.0/24', ...P('eth0'), 'fx-a');
  });
  after(async () => {
    await docker('network', 'rm', 'fx-a');
  });
  table([
    {
      name: 'overlapping subnet: a different subnet inside it (the IPAM refuses)',
      act: create('--subnet', '198.18.16.0/25', ...P('eth0')),
      code: 'IPAM_POOL_OVERLAP',
      expect: `${REMOTE}IPAM_POOL_OVERLAP: RequestPool: subnet 198.18.16.0/25 overlaps subnet 198.18.16.0/24, already in use in address space LocalDefault`,
    },
    {
      name: 'passthru sharing, passthru second',
      act: create(...S, ...P('eth0'), ...O('macvlan_mode=passthru')),
      code: 'PARENT_IN_USE',
      expect: () =>
        `${REMOTE}PARENT_IN_USE: cannot use macvlan_mode passthru: macvlan network ${fx.a!.slice(0, 12)} already uses parent "eth0"; passthru needs a parent of its own`,
    },
    {
      name: 'ipvlan on a parent a macvlan network uses',
      act: create(...S, ...P('eth0'), ...O('kind=ipvlan')),
      code: 'PARENT_IN_USE',
      expect: () =>
        `${REMOTE}PARENT_IN_USE: macvlan network ${fx.a!.slice(0, 12)} already uses parent "eth0"; macvlan and ipvlan cannot share a parent (the kernel allows one kind per parent)`,
    },
  ]);
});

describe('a passthru network on eth0 (198.18.17.0/24)', () => {
  before(async () => {
    fx.p = await docker(
      'network',
      'create',
      ...MACNET,
      '--subnet',
      '198.18.17.0/24',
      ...P('eth0'),
      ...O('macvlan_mode=passthru'),
      'fx-p',
    );
  });
  after(async () => {
    await docker('network', 'rm', 'fx-p');
  });
  table([
    {
      name: 'passthru sharing, passthru first: a bridge network second',
      act: create(...S, ...P('eth0')),
      code: 'PARENT_IN_USE',
      expect: () =>
        `${REMOTE}PARENT_IN_USE: macvlan network ${fx.p!.slice(0, 12)} already uses parent "eth0" in passthru mode, which takes the whole parent; use another parent or a vlan sub-interface`,
    },
    {
      name: 'passthru sharing, passthru first: a passthru network second',
      act: create(...S, ...P('eth0'), ...O('macvlan_mode=passthru')),
      code: 'PARENT_IN_USE',
      expect: () =>
        `${REMOTE}PARENT_IN_USE: macvlan network ${fx.p!.slice(0, 12)} already uses parent "eth0" in passthru mode, which takes the whole parent; use another parent or a vlan sub-interface`,
    },
  ]);
});

// ---- docker run, and raw plugin requests, with networks and containers in place ----

describe('docker run and raw plugin requests, with networks and containers in place', () => {
  before(async () => {
    fx.run = await docker(
      'network',
      'create',
      ...MACNET,
      '--subnet',
      '198.18.18.0/24',
      '--gateway',
      '198.18.18.1',
      ...P('eth0'),
      'fx-run',
    );
    await docker('run', '-d', '--name', 'holder', '--net', 'fx-run', '--ip', '198.18.18.50', IMAGE, 'sleep', '3600');
    // A /29 with a /30 ip-range: .1 is the gateway, .2 and .3 the only dynamic addresses.
    fx.small = await docker(
      'network',
      'create',
      ...MACNET,
      '--subnet',
      '198.18.19.0/29',
      '--ip-range',
      '198.18.19.0/30',
      ...P('eth0'),
      'fx-small',
    );
    for (const n of ['full1', 'full2'])
      await docker('run', '-d', '--name', n, '--net', 'fx-small', IMAGE, 'sleep', '3600');
  });
  after(async () => {
    await docker('rm', '-f', 'holder', 'full1', 'full2');
    await docker('network', 'rm', 'fx-run', 'fx-small');
  });
  const NID = () => fx.run!;
  const EID = 'e0'.repeat(32);
  table([
    {
      name: 'docker run: static --ip already in use',
      act: runOn('--net', 'fx-run', '--ip', '198.18.18.50'),
      code: 'IPAM_ADDRESS_IN_USE',
      expect: runError(
        `remote: IPAM_ADDRESS_IN_USE: address 198.18.18.50 is already in use in subnet 198.18.18.0/24 (held by static)`,
      ),
    },
    {
      name: 'docker run: --ip of the gateway',
      act: runOn('--net', 'fx-run', '--ip', '198.18.18.1'),
      code: 'IPAM_ADDRESS_IN_USE',
      expect: runError(
        `remote: IPAM_ADDRESS_IN_USE: address 198.18.18.1 is already in use in subnet 198.18.18.0/24 (held by gateway)`,
      ),
    },
    {
      name: 'docker run: --ip outside the subnet (dockerd refuses it first)',
      act: runOn('--net', 'fx-run', '--ip', '198.18.99.5'),
      expect: byEngine({
        20: `docker: ${DAEMON}Invalid address 198.18.99.5: It does not belong to any of this network's subnets.`,
        28: `docker: ${DAEMON}invalid config for network fx-run: invalid endpoint settings:\nno configured subnet or ip-range contain the IP address 198.18.99.5\nRun 'docker run --help' for more information`,
      }),
    },
    {
      name: 'docker run: --ip is the broadcast address',
      act: runOn('--net', 'fx-run', '--ip', '198.18.18.255'),
      code: 'IPAM_ADDRESS_OUT_OF_POOL',
      expect: runError(
        `remote: IPAM_ADDRESS_OUT_OF_POOL: RequestAddress: address 198.18.18.255 is the broadcast address of 198.18.18.0/24 (pool LocalDefault/198.18.18.0/24)`,
      ),
    },
    {
      name: 'docker run: exhausted pool (a /30 ip-range)',
      act: runOn('--net', 'fx-small'),
      code: 'IPAM_POOL_EXHAUSTED',
      expect: runError(
        `remote: IPAM_POOL_EXHAUSTED: no free address in ip-range 198.18.19.0/30 of subnet 198.18.19.0/29: all 3 usable addresses are allocated`,
      ),
    },
    {
      name: 'docker run: --mac-address multicast (its address is released again)',
      act: runOn('--net', 'fx-run', '--mac-address', '01:00:5e:00:00:01'),
      code: 'ENDPOINT_INVALID',
      expect: runError(
        `failed to create endpoint bad-run on network fx-run: remote: ENDPOINT_INVALID: --mac-address 01:00:5e:00:00:01 is a multicast address: a container needs a unicast MAC (first octet even), e.g. 02:42:c6:12:0f:05`,
      ),
    },
    {
      name: 'raw: CreateNetwork without NetworkID',
      act: raw('NetworkDriver.CreateNetwork', {
        Options: { 'com.docker.network.generic': { parent: 'eth0' } },
        IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '198.18.31.0/24' }],
      }),
      code: 'PLUGIN_REQUEST_INVALID',
      expect:
        'PLUGIN_REQUEST_INVALID: CreateNetwork: field NetworkID is missing: give the id dockerd assigned to the network (64 hex characters)',
    },
    {
      name: 'raw: CreateNetwork with a NetworkID that is not an id',
      act: raw('NetworkDriver.CreateNetwork', { NetworkID: 'my-net', Options: {} }),
      code: 'PLUGIN_REQUEST_INVALID',
      expect:
        'PLUGIN_REQUEST_INVALID: CreateNetwork: NetworkID "my-net" is not a Docker network id: give the id dockerd assigned to the network (64 hex characters)',
    },
    {
      name: 'raw: CreateNetwork with a gateway outside its pool',
      act: raw('NetworkDriver.CreateNetwork', {
        NetworkID: 'f1'.repeat(32),
        Options: { 'com.docker.network.generic': { parent: 'eth0' } },
        IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '198.18.31.0/24', Gateway: '198.18.32.1/24' }],
      }),
      code: 'NETWORK_CONFIG_INVALID',
      expect:
        'NETWORK_CONFIG_INVALID: --gateway 198.18.32.1 is not in subnet 198.18.31.0/24: give an address inside it',
    },
    {
      name: 'raw: Join for an unknown endpoint',
      act: () =>
        raw('NetworkDriver.Join', {
          NetworkID: NID(),
          EndpointID: EID,
          SandboxKey: '/var/run/docker/netns/0123456789ab',
          Options: {},
        })(),
      code: 'ENDPOINT_NOT_FOUND',
      expect: () =>
        `ENDPOINT_NOT_FOUND: Join: endpoint e0e0e0e0e0e0 of network ${NID().slice(0, 12)} is not known to macnet`,
    },
    {
      name: 'raw: CreateEndpoint on an unknown network',
      act: raw('NetworkDriver.CreateEndpoint', { NetworkID: 'd4'.repeat(32), EndpointID: EID, Interface: {} }),
      code: 'NETWORK_NOT_FOUND',
      expect:
        'NETWORK_NOT_FOUND: CreateEndpoint: network d4d4d4d4d4d4 is not known to macnet (was its state dir removed?)',
    },
    {
      name: "raw: CreateEndpoint with an address outside the network's subnets",
      act: () =>
        raw('NetworkDriver.CreateEndpoint', {
          NetworkID: NID(),
          EndpointID: EID,
          Interface: { Address: '198.18.99.3/24' },
        })(),
      code: 'ENDPOINT_INVALID',
      expect:
        "ENDPOINT_INVALID: endpoint address 198.18.99.3 is in none of the network's IPv4 subnets (198.18.18.0/24)",
    },
    {
      name: 'raw: RequestAddress with an unknown PoolID',
      act: raw('IpamDriver.RequestAddress', { PoolID: 'LocalDefault/198.18.99.0/24', Address: '', Options: {} }),
      code: 'IPAM_POOL_NOT_FOUND',
      expect:
        'IPAM_POOL_NOT_FOUND: RequestAddress: no pool with ID "LocalDefault/198.18.99.0/24" (was its network removed?)',
    },
    {
      name: 'raw: RequestPool with a garbage Pool',
      act: raw('IpamDriver.RequestPool', { AddressSpace: 'LocalDefault', Pool: 'garbage', Options: {}, V6: false }),
      code: 'IPAM_POOL_INVALID',
      expect: 'IPAM_POOL_INVALID: invalid subnet "garbage": not a CIDR (address/prefix): "garbage"',
    },
    {
      name: 'raw: RequestPool with an ip-range outside the subnet',
      act: raw('IpamDriver.RequestPool', {
        AddressSpace: 'LocalDefault',
        Pool: '198.18.31.0/24',
        SubPool: '198.18.32.0/25',
        Options: {},
        V6: false,
      }),
      code: 'IPAM_POOL_INVALID',
      expect:
        "IPAM_POOL_INVALID: invalid ip-range 198.18.32.0/25: parent subnet 198.18.31.0/24 doesn't contain ip-range",
    },
    {
      name: 'raw: RequestPool with an IPv6 subnet marked IPv4',
      act: raw('IpamDriver.RequestPool', {
        AddressSpace: 'LocalDefault',
        Pool: '2001:db8:31::/64',
        Options: {},
        V6: false,
      }),
      code: 'IPAM_POOL_INVALID',
      expect: 'IPAM_POOL_INVALID: invalid subnet 2001:db8:31::/64: an IPv6 subnet in a request for IPv4',
    },
    {
      name: 'raw: RequestPool in an unknown address space',
      act: raw('IpamDriver.RequestPool', { AddressSpace: 'Corp', Pool: '198.18.31.0/24', Options: {}, V6: false }),
      code: 'IPAM_POOL_INVALID',
      expect:
        'IPAM_POOL_INVALID: RequestPool: unknown address space "Corp"; macnet\'s IPAM has LocalDefault and GlobalDefault',
    },
    {
      name: 'raw: body not JSON',
      act: raw('NetworkDriver.CreateNetwork', '{"NetworkID": '),
      code: 'PLUGIN_REQUEST_INVALID',
      expect: /^PLUGIN_REQUEST_INVALID: NetworkDriver\.CreateNetwork: the request body is not a JSON object \(.+\)$/,
    },
    {
      name: 'raw: empty body, as dockerd re-sends a call it retries (RequestPool must not hand out a default pool)',
      act: raw('IpamDriver.RequestPool', ''),
      code: 'PLUGIN_REQUEST_INVALID',
      expect:
        'PLUGIN_REQUEST_INVALID: IpamDriver.RequestPool: refused, the request body is empty. dockerd sends an empty body when it retries a call the plugin did not answer (moby/moby#39331), for example one in flight while macnet restarted: run the docker command again',
    },
  ]);
});

test('afterwards: no store row and no link remains of the fixtures or of any refused request', async () => {
  const s = await snapshot();
  assert.deepEqual(s.rows, {});
  const names = (s.links as { ifname: string }[]).map((l) => l.ifname).sort();
  assert.deepEqual(names, ['eth0', 'lo', TUN]);
  await sh('ip', '-n', host.ns.name, 'link', 'del', TUN);
});
