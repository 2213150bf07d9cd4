// parent.kind and parent.mtu on sysfs trees made by hand as the kernel lays them out (wireless, bond and vlan
// cannot be made on this machine's kernel); test/cli/doctor.test.ts reads real bridges, veths and macvlans.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkParentSysfs, readParentSysfs } from '../../src/doctor/parent-sysfs';
import { netDevice, Tree } from './trees';

const PCI = '->../../devices/pci0000:00/0000:00:03.0';

test('the kind from sysfs: wireless three ways, bridge, bond, vlan, veth, ethernet, stacked, virtual, loopback, other', () => {
  const t = Tree.make({
    ...netDevice('wlan0', {
      uevent: 'DEVTYPE=wlan\n',
      extra: { 'wireless/': '', phy80211: '->../../ieee80211/phy0', device: PCI },
    }),
    ...netDevice('wlp1', { extra: { phy80211: '->../../ieee80211/phy1', device: PCI } }),
    ...netDevice('wlx2', { uevent: 'DEVTYPE=wlan\n' }),
    ...netDevice('br0', { uevent: 'DEVTYPE=bridge\n', extra: { 'bridge/': '', 'brif/': '' } }),
    ...netDevice('bond0', { uevent: 'DEVTYPE=bond\n', extra: { 'bonding/mode': 'active-backup 1\n' } }),
    ...netDevice('eth0.50', { ifindex: 9, iflink: 3, uevent: 'DEVTYPE=vlan\n', extra: { lower_eth0: '->../eth0' } }),
    ...netDevice('veth1', { ifindex: 7, iflink: 8 }),
    ...netDevice('eth0', { ifindex: 3, extra: { device: PCI } }),
    ...netDevice('mv0', { ifindex: 10, iflink: 3, extra: { lower_eth0: '->../eth0' } }),
    ...netDevice('dm-0123', { ifindex: 11 }),
    ...netDevice('lo', { type: 772, ifindex: 1, mtu: 65536 }),
    ...netDevice('tun0', { type: 65534, ifindex: 12 }),
  });
  try {
    const kind = (n: string) => readParentSysfs(`${t.root}/sys`, n)?.kind;
    assert.deepEqual(
      [
        'wlan0',
        'wlp1',
        'wlx2',
        'br0',
        'bond0',
        'eth0.50',
        'veth1',
        'eth0',
        'mv0',
        'dm-0123',
        'lo',
        'tun0',
        'none0',
      ].map(kind),
      [
        'wireless',
        'wireless',
        'wireless',
        'bridge',
        'bond',
        'vlan',
        'veth',
        'ethernet',
        'stacked',
        'virtual',
        'loopback',
        'other',
        undefined,
      ],
    );
    assert.deepEqual(readParentSysfs(`${t.root}/sys`, 'bond0'), {
      name: 'bond0',
      type: 1,
      mtu: 1500,
      kind: 'bond',
      bondMode: 'active-backup 1',
    });
    assert.equal(readParentSysfs(`${t.root}/sys`, 'eth0.50')?.lower, 'eth0');
  } finally {
    t.remove();
  }
});

test('parent.kind: wireless blocks macvlan and warns for ipvlan; a MAC-rewriting bond warns; loopback blocks', async () => {
  const t = Tree.make({
    ...netDevice('wlan0', { extra: { 'wireless/': '', device: PCI } }),
    ...netDevice('bond0', { uevent: 'DEVTYPE=bond\n', extra: { 'bonding/mode': 'balance-alb 6\n' } }),
    ...netDevice('bond1', { uevent: 'DEVTYPE=bond\n', extra: { 'bonding/mode': '802.3ad 4\n' } }),
    ...netDevice('br0', { uevent: 'DEVTYPE=bridge\n', extra: { 'bridge/': '' } }),
    ...netDevice('lo', { type: 772, ifindex: 1 }),
  });
  try {
    const kind = async (parent: string, ownMacs?: boolean) => {
      const fs = await checkParentSysfs(t.ctx({ parent, ...(ownMacs !== undefined ? { network: { ownMacs } } : {}) }));
      return fs.find((f) => f.check === 'parent.kind')!;
    };
    const wifi = await kind('wlan0');
    assert.equal(wifi.severity, 'blocking');
    assert.match(wifi.summary, /^wlan0 is a wireless \(802\.11\) device: an access point accepts one MAC per station/);
    assert.match(wifi.fix!, /-o kind=ipvlan .*moby#43270/);
    const wifiIpvlan = await kind('wlan0', false);
    assert.equal(wifiIpvlan.severity, 'warn');
    assert.match(wifiIpvlan.summary, /after it has sent first \(moby#43270\)/);
    const alb = await kind('bond0');
    assert.equal(alb.severity, 'warn');
    assert.match(alb.summary, /in mode balance-alb 6: it rewrites source MACs/);
    assert.equal((await kind('bond0', false)).severity, 'ok');
    assert.equal((await kind('bond1')).severity, 'ok');
    assert.deepEqual([(await kind('br0')).severity, (await kind('br0')).summary], ['ok', 'br0 is a bridge']);
    assert.equal((await kind('lo')).severity, 'blocking');
  } finally {
    t.remove();
  }
});

test('parent.mtu: under 1280 warns, blocks with an IPv6 subnet; a network MTU above the parent blocks', async () => {
  const t = Tree.make({
    ...netDevice('eth0', { mtu: 1500, extra: { device: PCI } }),
    ...netDevice('ppp', { mtu: 1000, extra: { device: PCI } }),
  });
  try {
    const mtu = async (parent: string, network?: { ipv6?: boolean; mtu?: number }) =>
      (await checkParentSysfs(t.ctx({ parent, ...(network ? { network } : {}) }))).find(
        (f) => f.check === 'parent.mtu',
      )!;
    assert.deepEqual([(await mtu('eth0')).severity, (await mtu('eth0')).summary], ['ok', 'eth0 has MTU 1500']);
    assert.equal((await mtu('ppp')).severity, 'warn');
    assert.match((await mtu('ppp')).summary, /MTU 1000, below IPv6's minimum 1280: .*\(IPv4 works\)/);
    assert.equal((await mtu('ppp', { ipv6: true })).severity, 'blocking');
    const big = await mtu('eth0', { mtu: 9000 });
    assert.equal(big.severity, 'blocking');
    assert.match(big.fix!, /ip link set eth0 mtu 9000.*-o mtu=1500/);
    assert.equal((await mtu('eth0', { mtu: 1400 })).severity, 'ok');
  } finally {
    t.remove();
  }
});

test("a missing parent is parent.exists's to block: kind and MTU stand down; a missing base.vid on an existing base is judged by the base", async () => {
  const t = Tree.make(netDevice('wlan0', { extra: { 'wireless/': '' } }));
  t.write(netDevice('eth0', { extra: { device: PCI } }));
  try {
    // One cause, one blocking finding (parent.exists, over netlink): these say why they do not judge.
    for (const parent of ['eth9', 'eth9.50']) {
      const none = await checkParentSysfs(t.ctx({ parent }));
      assert.deepEqual(
        none.map((f) => [f.check, f.severity, f.detail?.standsDownFor]),
        [
          ['parent.kind', 'ok', 'parent.exists'],
          ['parent.mtu', 'ok', 'parent.exists'],
        ],
      );
      for (const f of none) {
        assert.match(
          f.summary,
          new RegExp(
            `^not judged: ${parent.replace('.', '\\.')} does not exist \\(no .*/sys/class/net/${parent.replace('.', '\\.')}\\); parent\\.exists reports it$`,
          ),
        );
        assert.equal(f.fix, undefined);
      }
    }
    const vlan = await checkParentSysfs(t.ctx({ parent: 'eth0.50' }));
    assert.deepEqual(
      vlan.map((f) => [f.check, f.severity]),
      [
        ['parent.kind', 'ok'],
        ['parent.mtu', 'ok'],
      ],
    );
    assert.match(vlan[0]!.summary, /eth0\.50 is not there yet, macnet creates it on eth0 \(vlan 50\)/);
    assert.equal((await checkParentSysfs(t.ctx({ parent: 'wlan0.7' })))[0]!.severity, 'blocking');
    assert.deepEqual(await checkParentSysfs(t.ctx()), []);
  } finally {
    t.remove();
  }
});
