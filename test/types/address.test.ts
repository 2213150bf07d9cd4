import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesToIp, canonicalIp, ipToBytes, parseCidr } from '../../src/types/address';
import { bytesToMac, macToBytes } from '../../src/types/mac';

test('IPv4 and IPv6 text round-trips through bytes', () => {
  for (const s of [
    '198.18.15.5',
    '0.0.0.0',
    '255.255.255.255',
    '2001:db8::1',
    '::',
    '::1',
    '2001:db8:0:1:2:3:4:5',
    'fe80::fc:ff:fe00:1',
  ]) {
    assert.equal(bytesToIp(ipToBytes(s)), s);
  }
  assert.deepEqual([...ipToBytes('198.18.15.5')], [198, 18, 15, 5]);
  assert.equal(ipToBytes('2001:db8::1').toString('hex'), '20010db8000000000000000000000001');
});

test('IPv6 output is RFC 5952 canonical', () => {
  assert.equal(canonicalIp('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
  assert.equal(canonicalIp('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1'); // the first of two equal runs
  assert.equal(canonicalIp('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1'); // a single zero group stays
  assert.equal(canonicalIp('::ffff:198.18.0.1'), '::ffff:c612:1');
});

test('parseCidr accepts address/prefix and rejects malformed input with the value in the message', () => {
  assert.deepEqual(parseCidr('198.18.15.5/24'), { family: 4, address: '198.18.15.5', prefix: 24 });
  assert.deepEqual(parseCidr('2001:db8::5/64'), { family: 6, address: '2001:db8::5', prefix: 64 });
  assert.deepEqual(parseCidr('198.18.15.5'), { family: 4, address: '198.18.15.5', prefix: 32 });
  assert.throws(() => parseCidr('198.18.15.5/33'), /prefix length in "198.18.15.5\/33" must be 0 to 32/);
  assert.throws(() => parseCidr('2001:db8::/129'), /must be 0 to 128/);
  assert.throws(() => parseCidr('198.18.15/24'), /not an address or CIDR: "198.18.15\/24"/);
  assert.throws(() => parseCidr('198.18.15.5/2a'), /must be 0 to 32/);
});

test('MAC addresses parse and format; bad ones are refused', () => {
  assert.equal(bytesToMac(macToBytes('02:42:C6:12:0F:05')), '02:42:c6:12:0f:05');
  assert.throws(() => macToBytes('02:42:c6:12:0f'), /not a MAC address/);
  assert.throws(() => macToBytes('02-42-c6-12-0f-05'), /not a MAC address/);
});

test('networkOf, cidrsOverlap and cidrContains', async () => {
  const { networkOf, cidrsOverlap, cidrContains } = await import('../../src/types/address');
  assert.equal(networkOf('198.18.15.77', 24), '198.18.15.0/24');
  assert.equal(networkOf('198.18.15.77', 0), '0.0.0.0/0');
  assert.equal(networkOf('2001:db8:15::77', 64), '2001:db8:15::/64');
  assert.equal(networkOf('2001:db8:15:ff::1', 56), '2001:db8:15::/56');
  assert.equal(cidrsOverlap('198.18.15.0/24', '198.18.15.128/25'), true);
  assert.equal(cidrsOverlap('198.18.15.0/24', '198.18.16.0/24'), false);
  assert.equal(cidrsOverlap('198.18.15.0/24', '2001:db8::/64'), false);
  assert.equal(cidrContains('198.18.15.0/24', '198.18.15.9'), true);
  assert.equal(cidrContains('198.18.15.0/24', '198.18.16.9'), false);
  assert.equal(cidrContains('2001:db8::/64', '2001:db8::9'), true);
});
