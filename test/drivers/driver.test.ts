// The network driver against the real kernel in a throwaway "host" namespace and a real SQLite store.
// vlan, dummy and ipvlan cases skip on kernels without them and must pass in the VM (test/vm).
import { Lan } from '../../src/lan';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NetworkDriver } from '../../src/drivers/driver';
import { silentLogger } from '../../src/log';
import { SqliteStore } from '../../src/store/sqlite';
import { ipJson } from '../lab/sh';
import { nsFixture, requireKind, type NsFixture } from '../kernel/fixture';

let f: NsFixture;
let dir: string;
let store: SqliteStore;
let drv: NetworkDriver;
before(async () => {
  f = await nsFixture('driver');
  await f.k.links.create({ kind: 'veth', name: 'eth0', peer: { name: 'sw0' }, up: true });
  await f.k.links.create({ kind: 'veth', name: 'eth1', peer: { name: 'sw1' }, up: true });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), `mnt-${process.pid}-driver-`));
  store = SqliteStore.open(path.join(dir, 'state.db'));
  // Probing and announcing have their own tests (test/probe, test/docker/lan); Join here uses a fake sandbox.
  drv = new NetworkDriver(f.k, store, silentLogger, { lan: new Lan(f.k, silentLogger, { probe: false }) });
});
after(async () => {
  await store?.close();
  fs.rmSync(dir, { recursive: true, force: true });
  await f.close();
});

let n = 0;
const nid = () => `${(++n).toString(16).padStart(2, '0')}`.repeat(32);
const net = (
  id: string,
  generic: Record<string, string>,
  subnet = `198.18.${20 + n}.0/24`,
  extra: Record<string, unknown> = {},
) => ({
  NetworkID: id,
  Options: { 'com.docker.network.generic': generic, ...extra },
  IPv4Data: [{ Pool: subnet, Gateway: `${subnet.split('.0/')[0]}.1/24` }],
});
const names = async () => (await f.k.links.list()).map((l) => l.name);
/** DeleteEndpoint answers before its link is gone (the kernel's part runs after): wait up to 2 s for it. */
async function gone(name: string): Promise<boolean> {
  for (const until = Date.now() + 2000; Date.now() < until; await new Promise((r) => setTimeout(r, 20))) {
    if (!(await f.k.links.find(name))) return true;
  }
  return false;
}
const ipLink = async (name: string) =>
  (
    await ipJson<{ link?: string; linkinfo?: { info_kind: string; info_data?: Record<string, unknown> } }[]>(
      f.ns.name,
      'link',
      'show',
      'dev',
      name,
    )
  )[0]!;

test('two macvlan networks share a parent; overlapping subnets and passthru sharing are refused in both orders', async () => {
  const a = nid(),
    b = nid(),
    c = nid(),
    p = nid();
  await drv.createNetwork(net(a, { parent: 'eth0' }, '198.18.40.0/24'));
  await drv.createNetwork(net(b, { parent: 'eth0' }, '198.18.41.0/24'));
  await assert.rejects(
    drv.createNetwork(net(c, { parent: 'eth0' }, '198.18.40.128/25')),
    (e: Error & { code?: string }) =>
      e.code === 'SUBNET_OVERLAP' &&
      /subnet 198.18.40.128\/25 overlaps 198.18.40.0\/24 of macvlan network/.test(e.message),
  );
  await assert.rejects(
    drv.createNetwork(net(p, { parent: 'eth0', macvlan_mode: 'passthru' }, '198.18.42.0/24')),
    (e: Error & { code?: string }) =>
      e.code === 'PARENT_IN_USE' &&
      /cannot use macvlan_mode passthru: macvlan network [0-9a-f]{12} already uses parent "eth0"/.test(e.message),
  );
  const same = nid();
  await drv.createNetwork(net(same, { parent: 'eth0' }, '198.18.40.0/24')); // the same subnet: one LAN, shared
  await drv.deleteNetwork(same);
  await drv.createNetwork(net(p, { parent: 'eth1', macvlan_mode: 'passthru' }, '198.18.42.0/24'));
  await assert.rejects(
    drv.createNetwork(net(c, { parent: 'eth1' }, '198.18.43.0/24')),
    (e: Error & { code?: string }) =>
      e.code === 'PARENT_IN_USE' && /already uses parent "eth1" in passthru mode/.test(e.message),
  );
  assert.equal((await drv.state.networks()).length, 3, 'refused networks left no record');
  for (const id of [a, b, p]) await drv.deleteNetwork(id);
  assert.deepEqual((await names()).sort(), ['eth0', 'eth1', 'lo', 'sw0', 'sw1'], 'user-made parents are never removed');
});

test('endpoint: created at CreateEndpoint, its macvlan link at Join with the MAC and MTU, gone at DeleteEndpoint', async () => {
  const a = nid();
  await drv.createNetwork(net(a, { parent: 'eth0', macvlan_mode: 'private', mtu: '1400' }, '198.18.44.0/24'));
  const eid = 'e1'.repeat(32);
  const ep = await drv.createEndpoint({
    networkId: a,
    endpointId: eid,
    address: '198.18.44.7/24',
    macAddress: '02:00:c6:12:2c:07',
  });
  assert.equal(ep.mac, '02:00:c6:12:2c:07');
  assert.equal(await f.k.links.find(ep.linkName), undefined, 'no link before Join');
  const j = await drv.join(a, eid, '/proc/1/ns/net');
  assert.equal(j.Gateway, '198.18.44.1');
  const l = await f.k.links.get(j.InterfaceName.SrcName);
  assert.deepEqual(
    [l.kind, l.data, l.mac, l.mtu],
    ['macvlan', { kind: 'macvlan', mode: 'private' }, '02:00:c6:12:2c:07', 1400],
  );
  await assert.rejects(
    drv.createEndpoint({ networkId: a, endpointId: 'e2'.repeat(32), address: '198.18.45.7/24' }),
    /endpoint address 198.18.45.7 is in none of the network's IPv4 subnets \(198.18.44.0\/24\)/,
  );
  await assert.rejects(
    drv.createEndpoint({ networkId: a, endpointId: 'e2'.repeat(32), macAddress: '01:00:5e:00:00:01' }),
    /is a multicast address/,
  );
  await drv.leave(a, eid);
  await drv.deleteEndpoint(a, eid);
  assert.ok(await gone(j.InterfaceName.SrcName), 'the link is deleted after DeleteEndpoint');
  await drv.deleteEndpoint(a, eid);
  await drv.deleteNetwork(a);
});

test("mac=stable: the MAC follows the name (or, without one, the address), not the endpoint; Docker's MAC wins", async () => {
  const a = nid();
  const b = nid();
  await drv.createNetwork(net(a, { parent: 'eth0', mac: 'stable' }, '198.18.47.0/24'));
  await drv.createNetwork(net(b, { parent: 'eth0', mac: 'stable' }, '198.18.48.0/24'));
  const names = new Map<string, string>([['198.18.47.5', 'web']]);
  const named = new NetworkDriver(f.k, store, silentLogger, {
    lan: new Lan(f.k, silentLogger, { probe: false }),
    addresses: {
      requestedName: async (_s, ip) => names.get(ip),
      allocatedHere: async () => false,
      lastAddresses: async () => [],
    },
  });
  const mac = async (d: NetworkDriver, nw: string, eid: string, address: string, macAddress?: string) => {
    const ep = await d.createEndpoint({ networkId: nw, endpointId: eid, address, ...(macAddress && { macAddress }) });
    await d.deleteEndpoint(nw, eid);
    return ep.mac!;
  };
  const first = await mac(named, a, 'a1'.repeat(32), '198.18.47.5/24');
  assert.match(first, /^0a(:[0-9a-f]{2}){5}$/, "macnet's signature: locally administered unicast 0a");
  names.set('198.18.47.6', 'web'); // re-created with the same name, another address
  assert.equal(await mac(named, a, 'a2'.repeat(32), '198.18.47.6/24'), first, 'same name, same MAC');
  names.set('198.18.47.7', 'db');
  assert.notEqual(await mac(named, a, 'a3'.repeat(32), '198.18.47.7/24'), first, 'another name, another MAC');
  // No name (Docker's default IPAM, or an engine that sends none): derived from the address.
  const byAddress = await mac(drv, b, 'b1'.repeat(32), '198.18.48.9/24');
  assert.equal(await mac(drv, b, 'b2'.repeat(32), '198.18.48.9/24'), byAddress);
  assert.notEqual(await mac(drv, b, 'b3'.repeat(32), '198.18.48.10/24'), byAddress);
  assert.equal(
    await mac(drv, b, 'b4'.repeat(32), '198.18.48.9/24', '02:00:00:00:48:09'),
    '02:00:00:00:48:09',
    '--mac-address wins',
  );
  await drv.deleteNetwork(a);
  await drv.deleteNetwork(b);
  await named.close();
});

test('internal networks and ipvlan l3 get no gateway; reconcile removes endpoint links without an endpoint', async () => {
  const a = nid();
  await drv.createNetwork(net(a, { parent: 'eth0' }, '198.18.46.0/24', { 'com.docker.network.internal': true }));
  await drv.createEndpoint({ networkId: a, endpointId: 'e3'.repeat(32), address: '198.18.46.9/24' });
  const j = await drv.join(a, 'e3'.repeat(32), '/proc/1/ns/net');
  assert.equal(j.Gateway, undefined);
  assert.equal(j.StaticRoutes, undefined);
  // A leftover link of an endpoint the store does not know (a crash between Join and the store write).
  await f.k.links.create({ kind: 'macvlan', name: 'mn0123456789a', parent: 'eth0' });
  await drv.reconcile();
  assert.equal(await f.k.links.find('mn0123456789a'), undefined);
  assert.ok(await f.k.links.find(j.InterfaceName.SrcName), "a known endpoint's link stays");
  await drv.deleteEndpoint(a, 'e3'.repeat(32));
  await drv.deleteNetwork(a);
});

test('no parent: an internal parent is created for the network (dummy, or a bridge without dummy) and removed with it', async () => {
  const a = nid();
  const c = await drv.createNetwork(net(a, {}, '198.18.47.0/24'));
  assert.equal(c.internal, true);
  const p = await f.k.links.get(`dm-${a.slice(0, 12)}`);
  assert.ok(p.kind === 'dummy' || p.kind === 'bridge', p.kind);
  assert.equal(p.up, true);
  // After a "reboot" (the parent is gone), reconcile brings it back.
  await f.k.links.delete(p.name);
  await drv.reconcile();
  assert.ok(await f.k.links.find(p.name));
  await drv.deleteNetwork(a);
  assert.equal(await f.k.links.find(p.name), undefined);
});

test('vlan parent eth0.50: created with the first network, shared, removed with the last; a user-made vlan stays', async (t) => {
  if (!(await requireKind(t, f.k, 'vlan', 'eth0'))) return;
  const a = nid(),
    b = nid(),
    u = nid();
  await drv.createNetwork(net(a, { parent: 'eth0.50' }, '198.18.50.0/24'));
  const v = await ipLink('eth0.50');
  assert.equal(v.linkinfo?.info_kind, 'vlan');
  assert.equal(v.linkinfo?.info_data?.id, 50);
  await drv.createNetwork(net(b, { parent: 'eth0.50' }, '198.18.51.0/24'));
  await drv.deleteNetwork(a);
  assert.ok(await f.k.links.find('eth0.50'), 'still used by the second network');
  // Restart after a reboot: the vlan is gone; reconcile re-creates it.
  await f.k.links.delete('eth0.50');
  await drv.reconcile();
  assert.equal((await f.k.links.get('eth0.50')).data?.kind, 'vlan');
  await drv.deleteNetwork(b);
  assert.equal(await f.k.links.find('eth0.50'), undefined);
  await assert.rejects(
    drv.createNetwork(net(nid(), { parent: 'eth9.50' })),
    (e: Error & { code?: string }) =>
      e.code === 'PARENT_NOT_FOUND' && /the base interface "eth9" of vlan 50 was not found/.test(e.message),
  );
  await f.k.links.create({ kind: 'vlan', name: 'eth0.60', parent: 'eth0', id: 60, up: true });
  await drv.createNetwork(net(u, { parent: 'eth0.60' }, '198.18.52.0/24'));
  await drv.deleteNetwork(u);
  assert.ok(await f.k.links.find('eth0.60'), 'a parent the user made is never removed');
  await f.k.links.delete('eth0.60');
});

test('ipvlan networks: l2 and l3 children with mode and flag; a second ipvlan network on the parent is refused', async (t) => {
  if (!(await requireKind(t, f.k, 'ipvlan', 'eth1'))) return;
  const a = nid(),
    b = nid();
  await drv.createNetwork(net(a, { parent: 'eth1', ipvlan_mode: 'l3', ipvlan_flag: 'private' }, '198.18.53.0/24'));
  await assert.rejects(
    drv.createNetwork(net(b, { parent: 'eth1', ipvlan_mode: 'l3' }, '198.18.54.0/24')),
    (e: Error & { code?: string }) =>
      e.code === 'PARENT_IN_USE' && /ipvlan networks cannot share a parent/.test(e.message),
  );
  await drv.createEndpoint({
    networkId: a,
    endpointId: 'e4'.repeat(32),
    address: '198.18.53.9/24',
    macAddress: '02:00:00:00:00:09',
  });
  const j = await drv.join(a, 'e4'.repeat(32), '/proc/1/ns/net');
  assert.deepEqual(j.StaticRoutes, [{ Destination: '0.0.0.0/0', RouteType: 1 }]);
  assert.equal(j.Gateway, undefined);
  const l = await f.k.links.get(j.InterfaceName.SrcName);
  assert.deepEqual(l.data, { kind: 'ipvlan', mode: 'l3', flag: 'private' });
  assert.equal(l.mac, (await f.k.links.get('eth1')).mac, "ipvlan children carry the parent's MAC");
  await drv.deleteEndpoint(a, 'e4'.repeat(32));
  await drv.deleteNetwork(a);
});

test('no parent with ipvlan l3 and two subnets: a dummy di- parent, routes between the subnets (needs dummy and ipvlan)', async (t) => {
  if (!(await requireKind(t, f.k, 'dummy', 'eth0')) || !(await requireKind(t, f.k, 'ipvlan', 'eth0'))) return;
  const a = nid();
  await drv.createNetwork({
    NetworkID: a,
    Options: { 'com.docker.network.generic': { ipvlan_mode: 'l3' } },
    IPv4Data: [{ Pool: '198.18.55.0/24' }, { Pool: '198.18.56.0/24' }],
  });
  assert.equal((await f.k.links.get(`di-${a.slice(0, 12)}`)).kind, 'dummy');
  // L3NilParent: internal, so no default route; a device route to the other subnet instead.
  await drv.createEndpoint({ networkId: a, endpointId: 'e5'.repeat(32), address: '198.18.55.9/24' });
  const j = await drv.join(a, 'e5'.repeat(32), '/proc/1/ns/net');
  assert.deepEqual(j.StaticRoutes, [{ Destination: '198.18.56.0/24', RouteType: 1 }]);
  assert.equal(j.Gateway, undefined);
  await drv.deleteEndpoint(a, 'e5'.repeat(32));
  await drv.deleteNetwork(a);
  assert.equal(await f.k.links.find(`di-${a.slice(0, 12)}`), undefined);
});
