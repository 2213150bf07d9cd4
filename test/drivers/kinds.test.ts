// The link kinds' strategies (src/drivers/kinds): what each kind answers for a network, pure, no kernel. The
// texts the kinds throw are compared in config.test.ts and the driver tests; here the answers the driver and the
// LAN layer act on.
import { test } from 'node:test';
import { isProbeLink, probeLinkName } from '../../src/lan';
import assert from 'node:assert/strict';
import { parseNetworkRequest } from '../../src/drivers/config';
import { KINDS, checkSharing, chooseKind, implicitParentName, isChildLinkKind, kindOf } from '../../src/drivers/kinds';
import type { NetworkConfig } from '../../src/drivers/network-config';

const NID = '3f1c2b4a5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708';
const net = (generic: Record<string, unknown>, internal = false, id = NID): NetworkConfig =>
  parseNetworkRequest({
    NetworkID: id,
    Options: { 'com.docker.network.generic': generic, ...(internal && { 'com.docker.network.internal': true }) },
    IPv4Data: [{ Pool: '198.18.15.0/24', Gateway: '198.18.15.1/24' }, { Pool: '198.18.16.0/24' }],
    IPv6Data: [{ Pool: 'fd00:15::/64', Gateway: 'fd00:15::1/64' }],
  });

const bridge = net({ parent: 'eth0' });
const passthru = net({ parent: 'eth0', macvlan_mode: 'passthru' });
const vepa = net({ parent: 'eth0', macvlan_mode: 'vepa' });
const l2 = net({ parent: 'eth0', kind: 'ipvlan' });
const l3 = net({ parent: 'eth0', ipvlan_mode: 'l3', ipvlan_flag: 'private' });

test('kinds: macvlan first (the default), then ipvlan; kindOf follows the config', () => {
  assert.deepEqual(
    KINDS.map((k) => k.name),
    ['macvlan', 'ipvlan'],
  );
  assert.equal(chooseKind({}).name, 'macvlan');
  assert.equal(chooseKind({ ipvlan_flag: 'vepa' }).name, 'ipvlan');
  assert.equal(chooseKind({ kind: 'ipvlan', ipvlan_mode: 'l3' }).name, 'ipvlan');
  assert.throws(() => chooseKind({ kind: 'macvlan', ipvlan_mode: 'l3' }), /need kind=ipvlan/);
  assert.equal(kindOf(bridge).name, 'macvlan');
  assert.equal(kindOf(l3).name, 'ipvlan');
  assert.equal(implicitParentName('macvlan', NID), 'dm-3f1c2b4a5d6e');
  assert.equal(implicitParentName('ipvlan', NID), 'di-3f1c2b4a5d6e');
});

test('what the driver and the LAN layer ask: whole parent, mode text, MACs, where probes go out from', () => {
  const answers = (c: NetworkConfig) => {
    const k = kindOf(c);
    return [k.wholeParent(c), k.operMode(c), k.macSource(c), k.leaseMacIsContainers(c), k.lanVantage(c)];
  };
  assert.deepEqual(answers(bridge), [false, 'bridge', 'own', true, 'probe-link']);
  assert.deepEqual(answers(vepa), [false, 'vepa', 'own', true, 'probe-link']);
  assert.deepEqual(answers(passthru), [true, 'passthru', 'own-if-given', true, 'none']);
  assert.deepEqual(answers(l2), [false, 'l2/bridge', 'parent', false, 'parent']);
  assert.deepEqual(answers(l3), [false, 'l3/private', 'parent', false, 'parent']);
});

test("macnet's child link kinds: macvlan and ipvlan; the probe link is a macvlan", () => {
  assert.ok(isChildLinkKind('macvlan') && isChildLinkKind('ipvlan'));
  assert.ok(!isChildLinkKind('macvtap') && !isChildLinkKind('vlan') && !isChildLinkKind(undefined));
  const probe = probeLinkName('eth0');
  assert.ok(isProbeLink({ name: probe, kind: 'macvlan' }), 'the LAN layer makes it a macvlan');
  assert.ok(!isProbeLink({ name: probe, kind: 'ipvlan' }) && !isProbeLink({ name: 'eth0', kind: 'macvlan' }));
});

test('link specs: an endpoint child in the network mode, the host-side child always able to reach it', () => {
  assert.deepEqual(kindOf(vepa).childSpec(vepa, 'mn0', '02:00:00:00:00:01'), {
    kind: 'macvlan',
    name: 'mn0',
    parent: 'eth0',
    mode: 'vepa',
    mac: '02:00:00:00:00:01',
  });
  assert.deepEqual(kindOf(l3).childSpec(l3, 'mn0', '02:00:00:00:00:01'), {
    kind: 'ipvlan',
    name: 'mn0',
    parent: 'eth0',
    mode: 'l3',
    flag: 'private',
  });
  assert.equal(kindOf(bridge).trialChildAtCreate, false);
  assert.equal(kindOf(l2).trialChildAtCreate, true);
  for (const c of [bridge, l3]) {
    const k = kindOf(c);
    const fields = k.hostLinkFields(c);
    assert.deepEqual(fields, c === l3 ? { kind: 'ipvlan', ipvlanMode: 'l3' } : { kind: 'macvlan' });
    assert.deepEqual(
      k.hostLinkSpec('mnh0', 'eth0', fields, '06:01:02:03:04:05'),
      c === l3
        ? { kind: 'ipvlan', name: 'mnh0', parent: 'eth0', mode: 'l3', flag: 'bridge' }
        : { kind: 'macvlan', name: 'mnh0', parent: 'eth0', mode: 'bridge', mac: '06:01:02:03:04:05' },
    );
  }
});

test('Join routes: ipvlan l3 routes by device (default, or the other subnets when internal); else gateways', () => {
  const ep = { ipv4: '198.18.15.5/24', ipv6: 'fd00:15::5/64' };
  assert.equal(kindOf(bridge).joinRoutes(bridge, ep), undefined);
  assert.equal(kindOf(l2).joinRoutes(l2, ep), undefined);
  assert.deepEqual(kindOf(l3).joinRoutes(l3, ep), {
    StaticRoutes: [
      { Destination: '0.0.0.0/0', RouteType: 1 },
      { Destination: '::/0', RouteType: 1 },
    ],
  });
  const internal = net({ parent: 'eth0', ipvlan_mode: 'l3' }, true);
  assert.deepEqual(kindOf(internal).joinRoutes(internal, ep), {
    StaticRoutes: [{ Destination: '198.18.16.0/24', RouteType: 1 }],
  });
  assert.deepEqual(kindOf(internal).joinRoutes(internal, { ipv6: ep.ipv6 }), {});
});

test('sharing a parent: passthru alone, one kind per parent, one ipvlan network per parent', () => {
  const other = (g: Record<string, unknown>) => net(g, false, 'b'.repeat(64));
  const code = (c: NetworkConfig, held: NetworkConfig): string | undefined => {
    try {
      checkSharing(c, held, 'held');
      return undefined;
    } catch (e) {
      return `${(e as { code: string }).code}: ${(e as Error).message}`;
    }
  };
  assert.equal(code(bridge, other({ parent: 'eth0', macvlan_mode: 'private' })), undefined);
  assert.match(code(bridge, other({ parent: 'eth0', macvlan_mode: 'passthru' }))!, /^PARENT_IN_USE: held in passthru/);
  assert.match(code(passthru, other({ parent: 'eth0' }))!, /cannot use macvlan_mode passthru: held;/);
  assert.match(code(l2, other({ parent: 'eth0' }))!, /macvlan and ipvlan cannot share a parent/);
  assert.match(code(bridge, other({ parent: 'eth0', kind: 'ipvlan' }))!, /macvlan and ipvlan cannot share a parent/);
  assert.match(code(l3, other({ parent: 'eth0', kind: 'ipvlan' }))!, /ipvlan networks cannot share a parent/);
});

test("host access refusals: macvlan outside bridge, ipvlan outside the bridge flag; mac=stable is macvlan's", () => {
  const refusal = (c: NetworkConfig) => kindOf(c).hostAccessRefusal(c);
  assert.equal(refusal(bridge), undefined);
  assert.equal(refusal(l2), undefined);
  assert.match(refusal(passthru)!, /passthru network cannot have host access/);
  assert.match(refusal(vepa)!, /macvlan_mode=vepa cannot have host access/);
  assert.match(refusal(l3)!, /ipvlan_flag=private cannot have host access/);
  assert.doesNotThrow(() => kindOf(bridge).checkMac('stable'));
  assert.throws(() => kindOf(l2).checkMac('stable'), /mac=stable is for macvlan networks/);
});
