import assert from 'node:assert/strict';
import { test } from 'node:test';
import { internetChecksum, onesSum, transportChecksum } from '../../src/types/checksum';

test('the internet checksum of RFC 1071 section 3', () => {
  const data = Buffer.from('0001f203f4f5f6f7', 'hex');
  assert.equal(onesSum([data]), 0xddf2);
  assert.equal(internetChecksum([data]), 0x220d);
  // Split into parts, or with an odd last part padded with a zero byte, the sum is the same.
  assert.equal(onesSum([data.subarray(0, 4), data.subarray(4)]), 0xddf2);
  assert.equal(onesSum([Buffer.from('0001f2', 'hex')]), onesSum([Buffer.from('0001f200', 'hex')]));
});

test('a message with its transport checksum filled in sums to 0xffff with its pseudo-header', () => {
  for (const [src, dst] of [
    [Buffer.from([198, 18, 0, 1]), Buffer.from([198, 18, 0, 2])],
    [Buffer.from('fe800000000000000000000000000001', 'hex'), Buffer.from('ff020000000000000000000000000001', 'hex')],
  ] as const) {
    const msg = Buffer.from('0044004300090000aa', 'hex');
    msg.writeUInt16BE(transportChecksum(src, dst, 17, msg), 6);
    assert.equal(transportChecksum(src, dst, 17, msg), 0, `${src.length}-byte addresses`);
  }
});
