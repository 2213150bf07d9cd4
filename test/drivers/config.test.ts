// Parsing Docker's CreateNetwork request into a NetworkConfig: pure, no kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNetworkRequest, parseParent } from '../../src/drivers/config';

const NID = '3f1c2b4a5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708';
const req = (generic: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  NetworkID: NID,
  Options: { 'com.docker.network.generic': generic, ...extra },
  IPv4Data: [
    {
      AddressSpace: 'x',
      Pool: '198.18.15.0/24',
      Gateway: '198.18.15.1/24',
      AuxAddresses: { router2: '198.18.15.2/24' },
    },
  ],
  IPv6Data: [],
});

test('defaults: macvlan bridge on the given parent, gateway and aux parsed, frozen', () => {
  const c = parseNetworkRequest(req({ parent: 'eth0' }));
  assert.equal(c.kind, 'macvlan');
  assert.equal(c.macvlanMode, 'bridge');
  assert.deepEqual(c.parent, { name: 'eth0', implicit: false });
  assert.deepEqual(c.subnets, [
    { family: 4, subnet: '198.18.15.0/24', gateway: '198.18.15.1', auxAddresses: { router2: '198.18.15.2' } },
  ]);
  assert.equal(c.internal, false);
  assert.equal(c.ipv6, false);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.subnets) && Object.isFrozen(c.parent));
});

test("ipvlan is chosen by ipvlan_mode or kind=ipvlan; Docker's mtu key and ours agree", () => {
  assert.equal(parseNetworkRequest(req({ parent: 'eth0', ipvlan_mode: 'l3' })).kind, 'ipvlan');
  const c = parseNetworkRequest(
    req({ parent: 'eth0', kind: 'ipvlan', ipvlan_flag: 'private', 'com.docker.network.driver.mtu': '1400' }),
  );
  assert.deepEqual([c.kind, c.ipvlanMode, c.ipvlanFlag, c.mtu], ['ipvlan', 'l2', 'private', 1400]);
  assert.throws(
    () => parseNetworkRequest(req({ parent: 'eth0', mtu: '1400', 'com.docker.network.driver.mtu': '1300' })),
    /contradicts mtu=1400/,
  );
});

test('no parent: an implicit dm-/di- parent and an internal network', () => {
  const c = parseNetworkRequest(req({}));
  assert.deepEqual(c.parent, { name: `dm-${NID.slice(0, 12)}`, implicit: true });
  assert.equal(c.internal, true);
  assert.equal(parseNetworkRequest(req({ ipvlan_mode: 'l2' })).parent.name, `di-${NID.slice(0, 12)}`);
});

test('vlan parents: base.vid parsed, bad forms refused with Docker-like wording', () => {
  assert.deepEqual(parseParent('eth0.50'), { name: 'eth0.50', vlan: { base: 'eth0', id: 50 }, implicit: false });
  assert.throws(() => parseParent('eth0.5000'), /vlan id must be between 1 and 4094, received 5000/);
  assert.throws(() => parseParent('eth0.0'), /vlan id must be between 1 and 4094, received 0/);
  assert.throws(() => parseParent('eth0.a'), /required interface name format is name.vlan_id/);
  assert.throws(() => parseParent('eth0.1.2'), /required interface name format is name.vlan_id/);
  assert.throws(() => parseParent('lo'), /loopback interface is not a valid/);
  assert.throws(
    () => parseParent('averyveryverylongname'),
    /not a valid interface name \(21 bytes\): use 1 to 15 bytes/,
  );
});

test('unknown keys and bad values are refused, naming the key and what is valid', () => {
  assert.throws(
    () => parseNetworkRequest(req({ parent: 'eth0', macvlan_mdoe: 'private' })),
    (e: Error & { code?: string }) =>
      e.code === 'OPTION_UNKNOWN' &&
      /unknown option "macvlan_mdoe": macnet knows parent, kind, macvlan_mode, ipvlan_mode, ipvlan_flag, mtu, conflict/.test(
        e.message,
      ),
  );
  assert.throws(
    () => parseNetworkRequest(req({ parent: 'eth0', macvlan_mode: 'bridged' })),
    (e: Error & { code?: string }) =>
      e.code === 'OPTION_INVALID' &&
      /option macvlan_mode="bridged" is not valid: use one of bridge, vepa, private, passthru \('bridge' is the default\)/.test(
        e.message,
      ),
  );
  assert.throws(
    () => parseNetworkRequest(req({ parent: 'eth0', ipvlan_mode: 'l4' })),
    /option ipvlan_mode="l4" is not valid: use one of l2, l3, l3s/,
  );
  assert.throws(
    () => parseNetworkRequest(req({ parent: 'eth0', mtu: 'big' })),
    /option mtu="big" is not valid: use an integer from 68 to 65535/,
  );
  assert.throws(
    () => parseNetworkRequest(req({ parent: 'eth0', kind: 'macvlan', ipvlan_mode: 'l2' })),
    /ipvlan_mode and ipvlan_flag need kind=ipvlan/,
  );
  assert.throws(() => parseNetworkRequest(req({ macvlan_mode: 'passthru' })), /passthru needs a parent/);
  // Docker's own keys pass.
  assert.equal(parseNetworkRequest(req({ parent: 'eth0', 'com.docker.network.bridge.name': 'x' })).kind, 'macvlan');
});

test('mac: random by default, stable on request; ipvlan refuses stable; bad values named', () => {
  assert.equal(parseNetworkRequest(req({ parent: 'eth0' })).mac, undefined);
  assert.equal(parseNetworkRequest(req({ parent: 'eth0', mac: 'stable' })).mac, 'stable');
  assert.throws(
    () => parseNetworkRequest(req({ parent: 'eth0', mac: 'fixed' })),
    /option mac="fixed" is not valid: use one of random, stable/,
  );
  assert.throws(
    () => parseNetworkRequest(req({ parent: 'eth0', kind: 'ipvlan', mac: 'stable' })),
    /mac=stable is for macvlan networks/,
  );
});

test('IP data: gateway or aux outside the subnet, wrong family, and a bad network id are refused', () => {
  const bad = (d: Record<string, unknown>) => ({
    NetworkID: NID,
    Options: {},
    IPv4Data: [{ Pool: '198.18.15.0/24', ...d }],
  });
  assert.throws(
    () => parseNetworkRequest(bad({ Gateway: '198.18.16.1/24' })),
    /--gateway 198.18.16.1 is not in subnet 198.18.15.0\/24: give an address inside it/,
  );
  assert.throws(
    () => parseNetworkRequest(bad({ AuxAddresses: { a: '198.18.99.2/24' } })),
    /--aux-address a=198.18.99.2 is not in subnet 198.18.15.0\/24/,
  );
  assert.throws(
    () => parseNetworkRequest({ NetworkID: NID, IPv4Data: [{ Pool: '2001:db8::/64' }] }),
    /IPv4 data holds an IPv6 pool/,
  );
  assert.throws(
    () => parseNetworkRequest({ NetworkID: 'x', IPv4Data: [] }),
    /NetworkID "x" is not a Docker network id/,
  );
  const v6 = parseNetworkRequest({
    NetworkID: NID,
    Options: { 'com.docker.network.generic': { parent: 'eth0' } },
    IPv6Data: [{ Pool: '2001:db8:15::/64', Gateway: '2001:db8:15::1/64' }],
  });
  assert.equal(v6.ipv6, true);
  assert.equal(v6.subnets[0]!.gateway, '2001:db8:15::1');
});

test('host access: off by default; host_access_address turns it on; addresses canonical, one per family', () => {
  assert.equal(parseNetworkRequest(req({ parent: 'eth0' })).hostAccess, undefined);
  const on = parseNetworkRequest(req({ parent: 'eth0', host_access: 'true' }));
  assert.deepEqual([on.hostAccess, on.hostAccessAddresses], [true, undefined]);
  const both = parseNetworkRequest({
    ...req({ parent: 'eth0', host_access_address: '198.18.15.250, 2001:DB8:15:0::FE' }),
    IPv6Data: [{ Pool: '2001:db8:15::/64' }],
  });
  assert.deepEqual([both.hostAccess, both.hostAccessAddresses], [true, ['198.18.15.250', '2001:db8:15::fe']]);
  assert.throws(
    () => parseNetworkRequest(req({ parent: 'eth0', host_access: 'true', ipvlan_mode: 'l2', ipvlan_flag: 'vepa' })),
    /ipvlan_flag=vepa cannot have host access/,
  );
  assert.equal(parseNetworkRequest(req({ parent: 'eth0', host_access: 'false' })).hostAccess, undefined);
});
