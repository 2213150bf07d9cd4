// Host access (-o host_access=true) through the NetworkDriver on the real kernel: a throwaway "host"
// namespace whose eth0 is the parent, "container" namespaces that receive the endpoint links as dockerd
// would move them, a real SQLite store. The kernel's state is read with `ip -json`, independently of
// src/kernel. No Docker here: test/docker/host-access.test.ts has the two-host lab.
import { Lan } from '../../src/lan';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type DriverServices, NetworkDriver } from '../../src/drivers/driver';
import { hostLinkName } from '../../src/drivers/host-access';
import { createLogger, silentLogger } from '../../src/log';
import { SqliteStore } from '../../src/store/sqlite';
import { ipJson, run, sh } from '../lab/sh';
import { TestNetns } from '../lab/netns';
import { nsFixture, requireKind, type NsFixture } from '../kernel/fixture';

let f: NsFixture;
let dir: string;
let store: SqliteStore;
const drivers: NetworkDriver[] = [];
const ctrs: TestNetns[] = [];
const LINK = hostLinkName('eth0');
const HOST4 = '198.18.60.11',
  HOST6 = '2001:db8:60::11';

/** The host namespace as `ip -json` shows it: links, addresses and routes (both families). */
async function hostState(): Promise<unknown> {
  const j = async (...a: string[]) => JSON.parse(await sh('ip', '-n', f.ns.name, '-json', ...a)) as unknown;
  return {
    link: await j('link', 'show'),
    addr: await j('addr', 'show'),
    route4: await j('-4', 'route', 'show', 'table', 'all'),
    route6: await j('-6', 'route', 'show', 'table', 'all'),
  };
}

before(async () => {
  f = await nsFixture('hostaccess');
  // The host's LAN interface with its own addresses and subnet routes, as on a real host.
  await sh('ip', '-n', f.ns.name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'sw0');
  for (const cmd of [
    ['addr', 'add', `${HOST4}/24`, 'dev', 'eth0'],
    ['addr', 'add', `${HOST6}/64`, 'dev', 'eth0', 'nodad'],
    ['link', 'set', 'sw0', 'up'],
    ['link', 'set', 'eth0', 'up'],
  ])
    await sh('ip', '-n', f.ns.name, ...cmd);
  // The kernel adds and checks (DAD) link-local addresses after the links come up: let that settle first, so
  // that the before/after comparisons see only what the driver did.
  for (let i = 0; i < 50 && /tentative/.test(await sh('ip', '-n', f.ns.name, 'addr')); i++)
    await new Promise((r) => setTimeout(r, 100));
  dir = fs.mkdtempSync(path.join(os.tmpdir(), `mnt-${process.pid}-hostaccess-`));
  store = SqliteStore.open(path.join(dir, 'state.db'));
});
after(async () => {
  for (const d of drivers) await d.close();
  for (const c of ctrs) await c.delete();
  await store?.close();
  fs.rmSync(dir, { recursive: true, force: true });
  await f?.close();
});

/** Removes whatever networks a test left in the store (after a failure), so the next test starts clean. */
async function cleanNetworks(): Promise<void> {
  const d = new NetworkDriver(f.k, store, silentLogger, { lan: new Lan(f.k, silentLogger, { probe: false }) });
  try {
    for (const r of await d.state.networks()) await d.deleteNetwork(r.config.id);
  } finally {
    await d.close();
  }
}

function driver(opts: Partial<DriverServices> = {}): NetworkDriver {
  const log = process.env.HA_DEBUG ? createLogger('debug') : silentLogger;
  const d = new NetworkDriver(f.k, store, log, { lan: new Lan(f.k, log, { probe: false }), ...opts });
  drivers.push(d);
  return d;
}

let n = 0;
const nid = () => `${(++n + 0x40).toString(16)}`.repeat(32);
const net = (id: string, generic: Record<string, string>, v4 = '198.18.60', v6: string | null = '2001:db8:60') => ({
  NetworkID: id,
  Options: { 'com.docker.network.generic': generic },
  IPv4Data: [{ Pool: `${v4}.0/24`, Gateway: `${v4}.1/24` }],
  IPv6Data: v6 ? [{ Pool: `${v6}::/64`, Gateway: `${v6}::1/64` }] : [],
});

/** CreateEndpoint + Join, then what dockerd does: move the link into a new namespace, address it, bring it up. */
async function container(
  d: NetworkDriver,
  networkId: string,
  eid: string,
  v4: string,
  v6?: string,
): Promise<TestNetns> {
  const { ns } = await joined(d, networkId, eid, v4, v6);
  return ns;
}

async function joined(
  d: NetworkDriver,
  networkId: string,
  eid: string,
  v4: string,
  v6?: string,
): Promise<{ ns: TestNetns; join: Awaited<ReturnType<NetworkDriver['join']>> }> {
  await d.createEndpoint({ networkId, endpointId: eid, address: `${v4}/24`, ...(v6 && { addressIPv6: `${v6}/64` }) });
  const ns = await TestNetns.create('ctr');
  ctrs.push(ns);
  const j = await d.join(networkId, eid, ns.path);
  await sh('ip', '-n', f.ns.name, 'link', 'set', j.InterfaceName.SrcName, 'netns', ns.name, 'name', 'eth0');
  await sh('ip', '-n', ns.name, 'addr', 'add', `${v4}/24`, 'dev', 'eth0');
  if (v6) await sh('ip', '-n', ns.name, 'addr', 'add', `${v6}/64`, 'dev', 'eth0', 'nodad');
  await sh('ip', '-n', ns.name, 'link', 'set', 'eth0', 'up');
  for (const r of j.StaticRoutes ?? [])
    await sh(
      'ip',
      '-n',
      ns.name,
      r.Destination.includes(':') ? '-6' : '-4',
      'route',
      'add',
      r.Destination,
      'dev',
      'eth0',
    );
  return { ns, join: j };
}

const ping = async (ns: string, to: string) =>
  (await run('nsenter', [`--net=/run/netns/${ns}`, 'ping', '-c', '1', '-W', '2', to])).code === 0;
const routesVia = async (fam: '-4' | '-6') =>
  (await ipJson<{ dst: string; prefsrc?: string }[]>(f.ns.name, fam, 'route', 'show', 'dev', LINK).catch(() => []))
    .map((r) => `${r.dst} src ${r.prefsrc}`)
    .filter((r) => !r.startsWith('fe80'));
const addrs = async () =>
  (
    await ipJson<{ addr_info: { local: string; prefixlen: number; scope: string }[] }[]>(
      f.ns.name,
      'addr',
      'show',
      'dev',
      LINK,
    )
  )[0]!.addr_info
    .filter((a) => a.scope === 'global')
    .map((a) => `${a.local}/${a.prefixlen}`)
    .sort();

test('host ↔ own containers both ways (v4 and v6) through one shared link; Leave and the last network clean up exactly', async (t) => {
  t.after(cleanNetworks);
  const before = await hostState();
  const held = new Set(['198.18.60.254']); // macnet's IPAM has it: the host must take the next one down
  const d = driver({
    addresses: {
      allocatedHere: async (_s, ip) => held.has(ip),
      requestedName: async () => undefined,
      lastAddresses: async () => [],
    },
  });
  const a = nid(),
    b = nid();
  await d.createNetwork(net(a, { parent: 'eth0', host_access: 'true' }));
  const l = (
    await ipJson<{ linkinfo: { info_kind: string; info_data: { mode: string } }; link: string; operstate: string }[]>(
      f.ns.name,
      'link',
      'show',
      'dev',
      LINK,
    )
  )[0]!;
  assert.deepEqual([l.linkinfo.info_kind, l.linkinfo.info_data.mode, l.link], ['macvlan', 'bridge', 'eth0']);
  assert.deepEqual(await addrs(), ['198.18.60.253/32', '2001:db8:60:0:ffff:ffff:ffff:ffff/128']);
  assert.equal(
    (await sh('ip', 'netns', 'exec', f.ns.name, 'cat', `/proc/sys/net/ipv4/conf/${LINK}/arp_filter`)).trim(),
    '1',
  );
  assert.equal(
    (await sh('ip', 'netns', 'exec', f.ns.name, 'cat', `/proc/sys/net/ipv6/conf/${LINK}/accept_ra`)).trim(),
    '0',
  );

  const c1 = await container(d, a, 'a1'.repeat(32), '198.18.60.70', '2001:db8:60::70');
  assert.deepEqual(await routesVia('-4'), ['198.18.60.70 src 198.18.60.253']);
  assert.deepEqual(await routesVia('-6'), ['2001:db8:60::70 src 2001:db8:60:0:ffff:ffff:ffff:ffff']);
  assert.ok(await ping(f.ns.name, '198.18.60.70'), 'host → container (v4)');
  assert.ok(await ping(f.ns.name, '2001:db8:60::70'), 'host → container (v6)');
  assert.ok(await ping(c1.name, '198.18.60.253'), 'container → host access address (v4)');
  assert.ok(await ping(c1.name, '2001:db8:60:0:ffff:ffff:ffff:ffff'), 'container → host access address (v6)');
  assert.ok(await ping(c1.name, HOST4), "container → the host's LAN address (v4, answered through the link)");

  // A second network on the same parent shares the link and adds its own address.
  await d.createNetwork(net(b, { parent: 'eth0', host_access_address: '198.18.61.9' }, '198.18.61', null));
  assert.deepEqual(await addrs(), ['198.18.60.253/32', '198.18.61.9/32', '2001:db8:60:0:ffff:ffff:ffff:ffff/128']);
  const c2 = await container(d, b, 'b1'.repeat(32), '198.18.61.70');
  assert.ok(await ping(f.ns.name, '198.18.61.70'));
  assert.ok(await ping(c2.name, '198.18.61.9'));
  await assert.rejects(
    d.createEndpoint({ networkId: b, endpointId: 'b2'.repeat(32), address: '198.18.61.9/24' }),
    /is the host's own address on this network/,
  );

  await d.leave(a, 'a1'.repeat(32));
  assert.deepEqual(
    await routesVia('-4'),
    ['198.18.61.70 src 198.18.61.9'],
    "Leave removed the first container's route only",
  );
  assert.deepEqual(await routesVia('-6'), []);
  await c1.delete();
  await d.deleteEndpoint(a, 'a1'.repeat(32));
  await d.deleteNetwork(a);
  assert.deepEqual(await addrs(), ['198.18.61.9/32'], 'only what the first network needed went');
  assert.ok(await ping(f.ns.name, '198.18.61.70'), 'the other network keeps host access');
  await c2.delete();
  await d.deleteEndpoint(b, 'b1'.repeat(32));
  await d.deleteNetwork(b);
  assert.deepEqual(await hostState(), before, 'ip -json link/addr/route of the host: as before');
  assert.deepEqual(await d.state.hostAccesses(), []);
});

test('reboot: links gone, a new driver on the same store reconciles; a link or address deleted by hand comes back', async (t) => {
  t.after(cleanNetworks);
  const before = await hostState();
  const d1 = driver();
  const a = nid();
  await d1.createNetwork(
    net(a, { parent: 'eth0', host_access: 'true', host_access_address: '198.18.60.200,2001:db8:60::200' }),
  );
  const c = await container(d1, a, 'c1'.repeat(32), '198.18.60.71', '2001:db8:60::71');
  assert.ok(await ping(f.ns.name, '198.18.60.71'));
  // The link's MAC is the same whenever it is made again: containers' neighbour caches of the host stay right.
  const mac = (await f.k.links.get(LINK)).mac!;
  assert.match(mac, /^06:/, "host-access links' MAC signature");
  await d1.close();
  await sh('ip', '-n', f.ns.name, 'link', 'del', LINK); // the reboot took the link, its addresses and routes
  assert.equal(await ping(f.ns.name, '198.18.60.71'), false, 'no host access without the link');

  const d2 = driver();
  await d2.reconcile();
  assert.deepEqual(await addrs(), ['198.18.60.200/32', '2001:db8:60::200/128']);
  assert.deepEqual(await routesVia('-4'), ['198.18.60.71 src 198.18.60.200']);
  assert.ok(await ping(f.ns.name, '198.18.60.71'), 'host → container after the reconcile');
  assert.ok(await ping(f.ns.name, '2001:db8:60::71'));
  assert.equal((await f.k.links.get(LINK)).mac, mac, 'the same MAC after the reboot');

  // An operator deletes the link, then an address: link and address events bring them back.
  const back = async (what: () => Promise<boolean>) => {
    for (let i = 0; i < 50 && !(await what()); i++) await new Promise((r) => setTimeout(r, 100));
    return what();
  };
  await sh('ip', '-n', f.ns.name, 'link', 'del', LINK);
  assert.ok(await back(async () => (await routesVia('-4')).length === 1), 'link and route restored after ip link del');
  assert.ok(await ping(f.ns.name, '198.18.60.71'));
  assert.equal((await f.k.links.get(LINK)).mac, mac, 'the same MAC after ip link del');
  await sh('ip', '-n', f.ns.name, 'addr', 'del', '198.18.60.200/32', 'dev', LINK);
  assert.ok(
    await back(async () => (await addrs()).includes('198.18.60.200/32') && (await routesVia('-4')).length === 1),
    'address and route restored after ip addr del',
  );

  await c.delete();
  await d2.leave(a, 'c1'.repeat(32));
  await d2.deleteEndpoint(a, 'c1'.repeat(32));
  await d2.deleteNetwork(a);
  assert.deepEqual(await hostState(), before);
});

test('bad host access options are refused before anything is created', async (t) => {
  t.after(cleanNetworks);
  const before = await hostState();
  const d = driver();
  const rows: [Record<string, string>, string, RegExp][] = [
    [{ host_access: 'yes' }, 'OPTION_INVALID', /option host_access="yes" is not valid: use true or false/],
    [
      { host_access_address: 'host' },
      'OPTION_INVALID',
      /option host_access_address="host" is not valid: "host" is not an IP address/,
    ],
    [{ host_access_address: '198.18.60.0/24' }, 'OPTION_INVALID', /"198.18.60.0\/24" is not an IP address/],
    [{ host_access_address: '198.18.60.5,198.18.60.6' }, 'OPTION_INVALID', /two IPv4 addresses/],
    [
      { host_access_address: '198.18.99.5' },
      'OPTION_INVALID',
      /198.18.99.5 is in none of the network's IPv4 subnets \(198.18.60.0\/24\)/,
    ],
    [{ host_access_address: '198.18.60.1' }, 'OPTION_INVALID', /198.18.60.1 is the gateway of 198.18.60.0\/24/],
    [{ host_access_address: '198.18.60.255' }, 'OPTION_INVALID', /198.18.60.255 is the broadcast address/],
    [
      { host_access_address: '2001:db8:61::5' },
      'OPTION_INVALID',
      /2001:db8:61::5 is in none of the network's IPv6 subnets \(2001:db8:60::\/64\)/,
    ],
    [
      { host_access: 'false', host_access_address: '198.18.60.5' },
      'OPTION_INVALID',
      /host_access_address="198.18.60.5" is not valid: it needs host access/,
    ],
    [{ host_access: 'true', macvlan_mode: 'passthru' }, 'OPTION_INVALID', /a passthru network cannot have host access/],
    [
      { host_access: 'true', macvlan_mode: 'private' },
      'OPTION_INVALID',
      /macvlan_mode=private cannot have host access: .* bridge mode/,
    ],
    [{ host_access: 'true', ipvlan_flag: 'private' }, 'OPTION_INVALID', /ipvlan_flag=private cannot have host access/],
    [{ dns: 'yes' }, 'OPTION_INVALID', /option dns="yes" is not valid: use true or false/],
    [{ dns: 'true', host_access: 'false' }, 'OPTION_INVALID', /dns="true" is not valid: .*drop host_access=false/],
    [
      { dns: 'true', macvlan_mode: 'passthru' },
      'OPTION_INVALID',
      /dns="true" is not valid: it turns on host access, and a passthru network cannot have host access/,
    ],
    [{ host_access_address: HOST4 }, 'HOST_ACCESS_ADDRESS_UNAVAILABLE', /198.18.60.11 is in use by/],
  ];
  for (const [opts, code, msg] of rows) {
    await assert.rejects(d.createNetwork(net(nid(), { parent: 'eth0', ...opts })), (e: Error & { code?: string }) => {
      assert.equal(e.code, code, `${JSON.stringify(opts)}: ${e.message}`);
      assert.match(e.message, msg);
      return true;
    });
  }
  assert.deepEqual(await d.state.networks(), [], 'no record of a refused network');
  assert.deepEqual(await d.state.hostAccesses(), []);
  assert.deepEqual(await hostState(), before, 'nothing created in the kernel');
});

test("ipvlan l2 and l3 networks: an ipvlan host-side link in the network's mode; host ↔ container both ways (needs ipvlan)", async (t) => {
  t.after(cleanNetworks);
  await sh('ip', '-n', f.ns.name, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'sw1');
  t.after(() =>
    sh('ip', '-n', f.ns.name, 'link', 'del', 'eth1').then(
      () => undefined,
      () => undefined,
    ),
  );
  for (const l of ['sw1', 'eth1']) await sh('ip', '-n', f.ns.name, 'link', 'set', l, 'up');
  if (!(await requireKind(t, f.k, 'ipvlan', 'eth1'))) return;
  const link = hostLinkName('eth1');
  const d = driver();
  for (const mode of ['l2', 'l3'] as const) {
    const a = nid(),
      eid = (mode === 'l2' ? 'd2' : 'd3').repeat(32);
    await d.createNetwork(
      net(a, { parent: 'eth1', ipvlan_mode: mode, host_access: 'true' }, '198.18.62', '2001:db8:62'),
    );
    const l = (
      await ipJson<{ linkinfo: { info_kind: string; info_data: { mode: string } } }[]>(
        f.ns.name,
        'link',
        'show',
        'dev',
        link,
      )
    )[0]!;
    assert.deepEqual([l.linkinfo.info_kind, l.linkinfo.info_data.mode], ['ipvlan', mode]);
    const { ns } = await joined(d, a, eid, '198.18.62.70', '2001:db8:62::70');
    assert.ok(await ping(f.ns.name, '198.18.62.70'), `${mode}: host → container (v4)`);
    assert.ok(await ping(f.ns.name, '2001:db8:62::70'), `${mode}: host → container (v6)`);
    assert.ok(await ping(ns.name, '198.18.62.254'), `${mode}: container → host (v4)`);
    assert.ok(await ping(ns.name, '2001:db8:62:0:ffff:ffff:ffff:ffff'), `${mode}: container → host (v6)`);
    await ns.delete();
    await d.deleteEndpoint(a, eid);
    await d.deleteNetwork(a);
    assert.equal(
      (await run('ip', ['-n', f.ns.name, 'link', 'show', 'dev', link])).code !== 0,
      true,
      `${mode}: the link went with the network`,
    );
  }
});
