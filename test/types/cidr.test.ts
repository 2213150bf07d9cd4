import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  alignUp,
  containsAddress,
  containsSubnet,
  formatAddress,
  nth,
  overlaps,
  parseAddress,
  parseCidrBig,
  subnetOf,
  unusableReason,
  usableRange,
} from '../../src/types/address';

const net = (s: string) => parseCidrBig(s).subnet;
const addr = (s: string) => parseAddress(s);

test('address text <-> bigint, both families, canonical output', () => {
  assert.equal(addr('0.0.0.0').value, 0n);
  assert.equal(addr('255.255.255.255').value, 0xffffffffn);
  assert.equal(addr('198.18.15.5').value, (198n << 24n) | (18n << 16n) | (15n << 8n) | 5n);
  assert.equal(formatAddress(addr('198.18.15.5').value, 4), '198.18.15.5');
  assert.equal(addr('::').value, 0n);
  assert.equal(addr('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff').value, (1n << 128n) - 1n);
  assert.equal(formatAddress((1n << 128n) - 1n, 6), 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff');
  assert.equal(formatAddress(addr('2001:DB8:0:0::1').value, 6), '2001:db8::1');
  assert.equal(formatAddress(addr('::ffff:198.18.0.1').value, 6), '::ffff:c612:1');
  assert.equal(formatAddress(1n, 6), '::1');
  assert.throws(() => parseAddress('198.18.0.256'), TypeError);
  assert.throws(() => parseAddress('198.18.0.0/24'), TypeError);
  assert.throws(() => parseAddress(''), TypeError);
});

test('parseCidrBig masks the subnet and keeps the address as written', () => {
  const p = parseCidrBig('198.18.15.5/24');
  assert.equal(p.subnet.text, '198.18.15.0/24');
  assert.equal(formatAddress(p.address.value, 4), '198.18.15.5');
  assert.equal(p.subnet.size, 256n);
  assert.equal(formatAddress(p.subnet.last, 4), '198.18.15.255');
  assert.equal(net('2001:db8:1:2:3:4:5:6/64').text, '2001:db8:1:2::/64');
  assert.equal(net('2001:db8::/64').size, 1n << 64n);
  assert.equal(net('::/0').size, 1n << 128n);
  assert.equal(net('::/0').last, (1n << 128n) - 1n);
  assert.equal(net('0.0.0.0/0').size, 1n << 32n);
  assert.equal(net('198.18.0.1/32').size, 1n);
  assert.equal(net('2001:db8::1/128').text, '2001:db8::1/128');
  for (const bad of [
    '198.18.0.0',
    '198.18.0.0/33',
    '2001:db8::/129',
    '198.18.0.0/',
    '198.18.0.0/-1',
    'x/24',
    '2001:db8::/6a',
  ]) {
    assert.throws(() => parseCidrBig(bad), TypeError, bad);
  }
});

test('contains and overlap, including across families and at the top of the IPv6 space', () => {
  assert.ok(containsSubnet(net('198.18.0.0/16'), net('198.18.4.0/22')));
  assert.ok(containsSubnet(net('198.18.0.0/16'), net('198.18.0.0/16')));
  assert.ok(!containsSubnet(net('198.18.4.0/22'), net('198.18.0.0/16')));
  assert.ok(!containsSubnet(net('198.18.0.0/16'), net('198.19.0.0/24')));
  assert.ok(overlaps(net('198.18.0.0/16'), net('198.18.255.0/24')));
  assert.ok(overlaps(net('198.18.255.0/24'), net('198.18.0.0/16')));
  assert.ok(!overlaps(net('198.18.0.0/24'), net('198.18.1.0/24')));
  assert.ok(!overlaps(net('0.0.0.0/0'), net('::/0')), 'families never overlap');
  assert.ok(!containsSubnet(net('::/0'), net('0.0.0.0/0')));
  assert.ok(overlaps(net('ffff::/16'), net('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128')));
  assert.ok(containsAddress(net('2001:db8::/64'), addr('2001:db8::ffff:ffff:ffff:ffff')));
  assert.ok(!containsAddress(net('2001:db8::/64'), addr('2001:db8:0:1::')));
  assert.ok(!containsAddress(net('0.0.0.0/0'), addr('::1')));
});

test('usable range: network and IPv4 broadcast reserved, except on point-to-point prefixes', () => {
  const u = (s: string) => {
    const r = usableRange(net(s));
    return [formatAddress(r.first, net(s).family), formatAddress(r.last, net(s).family)];
  };
  assert.deepEqual(u('198.18.15.0/24'), ['198.18.15.1', '198.18.15.254']);
  assert.deepEqual(u('198.18.15.0/30'), ['198.18.15.1', '198.18.15.2']);
  assert.deepEqual(u('198.18.15.0/31'), ['198.18.15.0', '198.18.15.1']);
  assert.deepEqual(u('198.18.15.7/32'), ['198.18.15.7', '198.18.15.7']);
  assert.deepEqual(u('2001:db8::/64'), ['2001:db8::1', '2001:db8::ffff:ffff:ffff:ffff']);
  assert.deepEqual(u('2001:db8::/126'), ['2001:db8::1', '2001:db8::3']);
  assert.deepEqual(u('2001:db8::/127'), ['2001:db8::', '2001:db8::1']);
  assert.deepEqual(u('2001:db8::5/128'), ['2001:db8::5', '2001:db8::5']);
  assert.deepEqual(u('::/0'), ['::1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff']);
});

test('unusableReason names what is wrong with an address', () => {
  const s = net('198.18.15.0/24');
  assert.equal(unusableReason(s, addr('198.18.15.0')), 'is the network address of 198.18.15.0/24');
  assert.equal(unusableReason(s, addr('198.18.15.255')), 'is the broadcast address of 198.18.15.0/24');
  assert.equal(unusableReason(s, addr('198.18.16.1')), 'is outside subnet 198.18.15.0/24');
  assert.equal(unusableReason(s, addr('2001:db8::1')), 'is outside subnet 198.18.15.0/24');
  assert.equal(unusableReason(s, addr('198.18.15.1')), undefined);
  assert.equal(unusableReason(net('198.18.15.0/31'), addr('198.18.15.0')), undefined);
  const v6 = net('2001:db8::/64');
  assert.equal(unusableReason(v6, addr('2001:db8::')), 'is the network address of 2001:db8::/64');
  assert.equal(unusableReason(v6, addr('2001:db8::ffff:ffff:ffff:ffff')), undefined, 'IPv6 has no broadcast');
});

test('nth address, subnetOf and alignUp', () => {
  const s = net('198.18.0.0/16');
  assert.equal(formatAddress(nth(s, 0n)!, 4), '198.18.0.0');
  assert.equal(formatAddress(nth(s, 65535n)!, 4), '198.18.255.255');
  assert.equal(nth(s, 65536n), undefined);
  assert.equal(nth(s, -1n), undefined);
  const v6 = net('2001:db8::/64');
  assert.equal(formatAddress(nth(v6, (1n << 64n) - 1n)!, 6), '2001:db8::ffff:ffff:ffff:ffff');
  assert.equal(subnetOf(6, addr('2001:db8:ff12:3456::9').value, 40).text, '2001:db8:ff00::/40');
  assert.equal(subnetOf(4, addr('198.18.200.9').value, 17).text, '198.18.128.0/17');
  assert.throws(() => subnetOf(4, 0n, 33), RangeError);
  assert.equal(alignUp(257n, 256n), 512n);
  assert.equal(alignUp(256n, 256n), 256n);
  assert.equal(alignUp(0n, 1n << 64n), 0n);
});
