// The daemon as dockerd sees it, without dockerd: raw plugin calls on its socket in a lab host, and the
// kernel's state checked after each step.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Kernel } from '../../src/kernel';
import { Daemon } from '../lab/daemon';
import { Lab } from '../lab/lab';
import { ipJson } from '../lab/sh';

let lab: Lab;
let d: Daemon;
before(async () => {
  lab = await Lab.create({ hosts: 1 });
  d = await Daemon.start({ netns: lab.hosts[0]!.ns.path });
});
after(async () => {
  await d?.remove();
  await lab?.destroy();
});

const NID = 'a1'.repeat(32);
const EID = 'b2'.repeat(32);

test('Plugin.Activate and GetCapabilities answer as a network and IPAM driver of local scope', async () => {
  assert.deepEqual((await d.call('Plugin.Activate')).body, { Implements: ['NetworkDriver', 'IpamDriver'] });
  assert.deepEqual((await d.call('NetworkDriver.GetCapabilities')).body, {
    Scope: 'local',
    ConnectivityScope: 'global',
  });
  const caps = (await d.call('IpamDriver.GetCapabilities')).body;
  assert.equal(typeof caps.RequiresMACAddress, 'boolean');
  const spaces = (await d.call('IpamDriver.GetDefaultAddressSpaces')).body;
  assert.equal(typeof spaces.LocalDefaultAddressSpace, 'string');
  assert.equal(fs.statSync(d.socket).mode & 0o777, 0o600);
});

test('a network lifecycle as dockerd drives it: pool, gateway, network, endpoint, join, leave, delete', async () => {
  const host = lab.hosts[0]!;
  const spaces = (await d.call('IpamDriver.GetDefaultAddressSpaces')).body as { LocalDefaultAddressSpace: string };
  const pool = (
    await d.call('IpamDriver.RequestPool', {
      AddressSpace: spaces.LocalDefaultAddressSpace,
      Pool: '198.18.15.0/24',
      SubPool: '198.18.15.128/25',
      Options: {},
      V6: false,
    })
  ).body as { PoolID: string; Pool: string };
  assert.equal(pool.Pool, '198.18.15.0/24');
  const gw = (
    await d.call('IpamDriver.RequestAddress', {
      PoolID: pool.PoolID,
      Address: '198.18.15.1',
      Options: { RequestAddressType: 'com.docker.network.gateway' },
    })
  ).body;
  assert.equal(gw.Address, '198.18.15.1/24');
  const create = await d.call('NetworkDriver.CreateNetwork', {
    NetworkID: NID,
    Options: {
      'com.docker.network.generic': { parent: 'eth0', macvlan_mode: 'bridge' },
      'com.docker.network.enable_ipv6': false,
    },
    IPv4Data: [{ AddressSpace: spaces.LocalDefaultAddressSpace, Pool: '198.18.15.0/24', Gateway: '198.18.15.1/24' }],
    IPv6Data: [],
  });
  assert.deepEqual(create.body, {});
  const addr = (await d.call('IpamDriver.RequestAddress', { PoolID: pool.PoolID, Address: '', Options: {} })).body as {
    Address: string;
  };
  assert.match(
    addr.Address,
    /^198\.18\.15\.(1[2-9][0-9]|2[0-5][0-9])\/24$/,
    'dynamic addresses come from the ip-range',
  );
  const ep = (
    await d.call('NetworkDriver.CreateEndpoint', {
      NetworkID: NID,
      EndpointID: EID,
      Interface: { Address: addr.Address, AddressIPv6: '', MacAddress: '' },
      Options: {},
    })
  ).body as { Interface: { MacAddress: string } };
  const mac = ep.Interface.MacAddress;
  assert.match(mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  assert.equal(parseInt(mac.slice(0, 2), 16) & 3, 2, 'locally administered unicast');

  const container = await lab.newNetns('c1');
  const join = (
    await d.call('NetworkDriver.Join', { NetworkID: NID, EndpointID: EID, SandboxKey: container.path, Options: {} })
  ).body as { InterfaceName: { SrcName: string; DstPrefix: string }; Gateway: string; DisableGatewayService: boolean };
  assert.equal(join.InterfaceName.DstPrefix, 'eth');
  assert.equal(join.Gateway, '198.18.15.1');
  assert.equal(join.DisableGatewayService, true);
  const [link] = await ipJson<
    { address: string; link: string; linkinfo: { info_kind: string; info_data: { mode: string } } }[]
  >(host.ns.name, 'link', 'show', 'dev', join.InterfaceName.SrcName);
  assert.deepEqual(
    [link!.linkinfo.info_kind, link!.linkinfo.info_data.mode, link!.link, link!.address],
    ['macvlan', 'bridge', 'eth0', mac],
  );

  // What dockerd does next: move it into the container, rename, address, route, up. Then it must work.
  await Kernel.with(host.ns.path, (k) => k.links.moveTo(join.InterfaceName.SrcName, container.path, 'eth0'));
  await Kernel.with(container.path, async (k) => {
    await k.addresses.add('eth0', addr.Address);
    await k.links.setUp('eth0');
    await k.routes.add({ dst: 'default', gateway: join.Gateway });
  });
  assert.equal(
    (await container.exec('ping', '-c', '1', '-W', '2', '198.18.15.1')).code,
    0,
    'the container reaches the LAN router',
  );
  const info = (await d.call('NetworkDriver.EndpointOperInfo', { NetworkID: NID, EndpointID: EID })).body as {
    Value: Record<string, string>;
  };
  assert.equal(info.Value.link, join.InterfaceName.SrcName);

  assert.deepEqual((await d.call('NetworkDriver.Leave', { NetworkID: NID, EndpointID: EID })).body, {});
  await container.delete(); // the container's namespace goes; the kernel deletes the macvlan with it
  assert.deepEqual((await d.call('NetworkDriver.DeleteEndpoint', { NetworkID: NID, EndpointID: EID })).body, {});
  assert.deepEqual(
    (await d.call('NetworkDriver.DeleteEndpoint', { NetworkID: NID, EndpointID: EID })).body,
    {},
    'idempotent',
  );
  assert.deepEqual((await d.call('NetworkDriver.DeleteNetwork', { NetworkID: NID })).body, {});
  assert.deepEqual((await d.call('NetworkDriver.DeleteNetwork', { NetworkID: NID })).body, {}, 'idempotent');
  for (const a of [addr.Address.split('/')[0], '198.18.15.1'])
    assert.deepEqual((await d.call('IpamDriver.ReleaseAddress', { PoolID: pool.PoolID, Address: a })).body, {});
  assert.deepEqual((await d.call('IpamDriver.ReleasePool', { PoolID: pool.PoolID })).body, {});
  const left = await ipJson<{ ifname: string }[]>(host.ns.name, 'link', 'show');
  assert.deepEqual(left.map((l) => l.ifname).sort(), ['eth0', 'lo']);
});

test('Docker 29 sends the container name with RequestAddress (moby#50586): a re-created container gets its address back, and with mac=stable its MAC', async () => {
  const nid = 'c3'.repeat(32);
  const NAME = 'com.docker.network.endpoint.name';
  const pool = (
    await d.call('IpamDriver.RequestPool', {
      AddressSpace: 'LocalDefault',
      Pool: '198.18.16.0/24',
      Options: {},
      V6: false,
    })
  ).body as { PoolID: string };
  await d.call('IpamDriver.RequestAddress', {
    PoolID: pool.PoolID,
    Address: '198.18.16.1',
    Options: { RequestAddressType: 'com.docker.network.gateway' },
  });
  assert.deepEqual(
    (
      await d.call('NetworkDriver.CreateNetwork', {
        NetworkID: nid,
        Options: { 'com.docker.network.generic': { parent: 'eth0', mac: 'stable' } },
        IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '198.18.16.0/24', Gateway: '198.18.16.1/24' }],
        IPv6Data: [],
      })
    ).body,
    {},
  );
  const start = async (name: string, eid: string) => {
    const a = (
      await d.call('IpamDriver.RequestAddress', { PoolID: pool.PoolID, Address: '', Options: { [NAME]: name } })
    ).body as { Address: string };
    const ep = (
      await d.call('NetworkDriver.CreateEndpoint', {
        NetworkID: nid,
        EndpointID: eid,
        Interface: { Address: a.Address, AddressIPv6: '', MacAddress: '' },
        Options: {},
      })
    ).body as { Interface: { MacAddress: string } };
    return { address: a.Address, mac: ep.Interface.MacAddress };
  };
  const stop = async (eid: string, address: string) => {
    assert.deepEqual((await d.call('NetworkDriver.DeleteEndpoint', { NetworkID: nid, EndpointID: eid })).body, {});
    assert.deepEqual(
      (await d.call('IpamDriver.ReleaseAddress', { PoolID: pool.PoolID, Address: address.split('/')[0] })).body,
      {},
    );
  };
  const web = await start('web', 'd1'.repeat(32));
  const db = await start('db', 'd2'.repeat(32));
  await stop('d1'.repeat(32), web.address);
  const again = await start('web', 'd3'.repeat(32));
  assert.deepEqual(again, web, 'same name: the same address and the same MAC');
  assert.notEqual(db.mac, web.mac);
  assert.match(web.mac, /^0a(:[0-9a-f]{2}){5}$/, "macnet's MAC signature");
  const other = await start('cache', 'd4'.repeat(32));
  assert.notEqual(other.address, web.address);
  for (const [eid, a] of [
    ['d2'.repeat(32), db.address],
    ['d3'.repeat(32), again.address],
    ['d4'.repeat(32), other.address],
  ] as const)
    await stop(eid, a);
  assert.deepEqual((await d.call('NetworkDriver.DeleteNetwork', { NetworkID: nid })).body, {});
  await d.call('IpamDriver.ReleaseAddress', { PoolID: pool.PoolID, Address: '198.18.16.1' });
  assert.deepEqual((await d.call('IpamDriver.ReleasePool', { PoolID: pool.PoolID })).body, {});
});

test('Docker 29 without --gateway: macnet declares no GwAllocChecker, so the engine asks its IPAM for a gateway as before and Join routes through it', async () => {
  // moby#50929: Docker 29's built-in macvlan and ipvlan l2 skip the gateway when none is given (GwAllocChecker);
  // a plugin is asked only if GetCapabilities says GwAllocChecker: true. macnet does not, so a network created
  // under an earlier engine keeps its default route across the upgrade (docs/driver.md).
  assert.equal((await d.call('NetworkDriver.GetCapabilities')).body.GwAllocChecker, undefined);
  const nid = 'c5'.repeat(32),
    eid = 'd5'.repeat(32);
  const pool = (
    await d.call('IpamDriver.RequestPool', {
      AddressSpace: 'LocalDefault',
      Pool: '198.18.17.0/24',
      Options: {},
      V6: false,
    })
  ).body as { PoolID: string };
  const gw = (
    await d.call('IpamDriver.RequestAddress', {
      PoolID: pool.PoolID,
      Address: '',
      Options: { RequestAddressType: 'com.docker.network.gateway' },
    })
  ).body as { Address: string };
  assert.equal(gw.Address, '198.18.17.1/24', "the inferred gateway: the subnet's first address");
  assert.deepEqual(
    (
      await d.call('NetworkDriver.CreateNetwork', {
        NetworkID: nid,
        Options: { 'com.docker.network.generic': { parent: 'eth0' } },
        IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '198.18.17.0/24', Gateway: gw.Address }],
        IPv6Data: [],
      })
    ).body,
    {},
  );
  const a = (
    await d.call('IpamDriver.RequestAddress', {
      PoolID: pool.PoolID,
      Address: '',
      Options: { 'com.docker.network.endpoint.name': 'web' },
    })
  ).body as { Address: string };
  await d.call('NetworkDriver.CreateEndpoint', {
    NetworkID: nid,
    EndpointID: eid,
    Interface: { Address: a.Address, AddressIPv6: '', MacAddress: '' },
    Options: {},
  });
  const sandbox = await lab.newNetns('gw29');
  const join = (
    await d.call('NetworkDriver.Join', { NetworkID: nid, EndpointID: eid, SandboxKey: sandbox.path, Options: {} })
  ).body;
  assert.equal(join.Gateway, '198.18.17.1');
  assert.deepEqual((await d.call('NetworkDriver.Leave', { NetworkID: nid, EndpointID: eid })).body, {});
  assert.deepEqual((await d.call('NetworkDriver.DeleteEndpoint', { NetworkID: nid, EndpointID: eid })).body, {});
  await d.call('IpamDriver.ReleaseAddress', { PoolID: pool.PoolID, Address: a.Address.split('/')[0] });
  assert.deepEqual((await d.call('NetworkDriver.DeleteNetwork', { NetworkID: nid })).body, {});
  await d.call('IpamDriver.ReleaseAddress', { PoolID: pool.PoolID, Address: '198.18.17.1' });
  assert.deepEqual((await d.call('IpamDriver.ReleasePool', { PoolID: pool.PoolID })).body, {});
});

test('unknown calls are 404; a body that is not JSON is PLUGIN_REQUEST_INVALID; errors carry Err and Error', async () => {
  assert.equal((await d.call('NetworkDriver.Nonsense')).status, 404);
  const bad = await d.call('NetworkDriver.CreateNetwork', '{not json');
  assert.equal(bad.status, 200);
  assert.match(
    String(bad.body.Err),
    /^PLUGIN_REQUEST_INVALID: NetworkDriver.CreateNetwork: the request body is not a JSON object/,
  );
  assert.equal(bad.body.Err, bad.body.Error);
  const unknownNet = await d.call('NetworkDriver.CreateEndpoint', {
    NetworkID: 'c3'.repeat(32),
    EndpointID: EID,
    Interface: {},
  });
  assert.match(
    String(unknownNet.body.Err),
    /^NETWORK_NOT_FOUND: CreateEndpoint: network c3c3c3c3c3c3 is not known to macnet/,
  );
});

test('SIGTERM: the daemon exits 0 and removes its socket; a restart on the same state answers again', async () => {
  assert.equal(await d.stop('SIGTERM'), 0);
  assert.equal(fs.existsSync(d.socket), false);
  await d.restart();
  assert.deepEqual((await d.call('Plugin.Activate')).body, { Implements: ['NetworkDriver', 'IpamDriver'] });
});
