import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  BOOTREPLY,
  decodeDhcp,
  decodeReply,
  decodeUdp,
  DHCPACK,
  DHCPDISCOVER,
  encodeDhcp,
  encodeUdp,
  FLAG_BROADCAST,
  leaseOptions,
  maskToPrefix,
  OPT,
  optIp,
  optU32,
  udpChecksum,
} from '../../src/dhcp/packets';

// An ACK from dnsmasq 2.90 on the lab LAN, captured on a probe link's AF_PACKET socket (IPv4 header onwards).
// Its UDP checksum field (d65a) is the pseudo-header partial sum, not the checksum: the frame came from a
// local veth with offload pending (CHECKSUM_PARTIAL). That is why decodeUdp does not verify it.
const DNSMASQ_ACK = Buffer.from(
  '45c0014a0cbe000040119712c6120f01ffffffff004300440136d65a020106007897487a0000800000000000c6120fc1c6120f010000000002dc00000114' +
    '00'.repeat(202) +
    '638253633501053604c6120f013304000000783a040000003c3b04000000690104ffffff001c04c6120fff0304c6120f010f086c61622e746573740604c6120f35ff',
  'hex',
);

test('the captured dnsmasq ACK decodes: header, options, lease fields', () => {
  const r = decodeReply(DNSMASQ_ACK, 0x7897487a, '02:DC:00:00:01:14');
  assert.ok(r);
  assert.equal(r.srcIp, '198.18.15.1');
  assert.equal(r.msg.op, BOOTREPLY);
  assert.equal(r.msg.type, DHCPACK);
  assert.equal(r.msg.flags, FLAG_BROADCAST);
  assert.equal(r.msg.yiaddr, '198.18.15.193');
  assert.deepEqual(leaseOptions(r.msg), {
    serverId: '198.18.15.1',
    leaseSeconds: 120,
    t1: 60,
    t2: 105,
    subnetMask: '255.255.255.0',
    router: '198.18.15.1',
    domain: 'lab.test',
    dns: ['198.18.15.53'],
  });
  // Someone else's transaction or client: not ours.
  assert.equal(decodeReply(DNSMASQ_ACK, 0x7897487b, '02:dc:00:00:01:14'), undefined);
  assert.equal(decodeReply(DNSMASQ_ACK, 0x7897487a, '02:dc:00:00:01:15'), undefined);
});

test('a DISCOVER round-trips, is padded to 300 bytes, and its IPv4 and UDP checksums verify', () => {
  const dhcp = encodeDhcp({
    xid: 0x12345678,
    secs: 3,
    flags: FLAG_BROADCAST,
    chaddr: '02:dc:00:00:00:01',
    type: DHCPDISCOVER,
    options: [
      [OPT.CLIENT_ID, Buffer.from('0102dc00000001', 'hex')],
      [OPT.HOSTNAME, Buffer.from('c1')],
      [OPT.LEASE_TIME, optU32(120)],
    ],
  });
  assert.equal(dhcp.length, 300);
  const m = decodeDhcp(dhcp)!;
  assert.equal(m.xid, 0x12345678);
  assert.equal(m.secs, 3);
  assert.equal(m.type, DHCPDISCOVER);
  assert.equal(m.chaddr, '02:dc:00:00:00:01');
  assert.equal(m.options.get(OPT.HOSTNAME)?.toString(), 'c1');
  assert.equal(m.options.get(OPT.LEASE_TIME)?.readUInt32BE(0), 120);

  const ip = encodeUdp({ src: '0.0.0.0', dst: '255.255.255.255', srcPort: 68, dstPort: 67, payload: dhcp });
  assert.equal(ip.length, 20 + 8 + 300);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += ip.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  assert.equal(sum, 0xffff, 'IPv4 header checksum');
  const udp = Buffer.from(ip.subarray(20));
  const field = udp.readUInt16BE(6);
  udp.writeUInt16BE(0, 6);
  assert.equal(udpChecksum(ip.subarray(12, 16), ip.subarray(16, 20), udp), field, 'UDP checksum');
  assert.deepEqual(decodeUdp(ip), { src: '0.0.0.0', dst: '255.255.255.255', srcPort: 68, dstPort: 67, payload: dhcp });
  // A request (ours, or another client's) is never taken for a reply.
  assert.equal(decodeReply(ip, 0x12345678, '02:dc:00:00:00:01'), undefined);
});

test('long options are split and joined again (RFC 3396); mask to prefix', () => {
  const long = randomBytes(600);
  const m = decodeDhcp(
    encodeDhcp({
      xid: 1,
      chaddr: '02:00:00:00:00:01',
      type: 1,
      options: [
        [OPT.CLIENT_ID, long],
        [OPT.ROUTER, optIp('198.18.15.1')],
      ],
    }),
  )!;
  assert.deepEqual(m.options.get(OPT.CLIENT_ID), long);
  assert.equal(maskToPrefix('255.255.255.0'), 24);
  assert.equal(maskToPrefix('255.255.254.0'), 23);
  assert.equal(maskToPrefix('0.0.0.0'), 0);
  assert.equal(maskToPrefix('255.0.255.0'), undefined);
});

test('garbage is rejected without throwing', () => {
  const bad: Buffer[] = [Buffer.alloc(0), Buffer.alloc(27), Buffer.alloc(400), DNSMASQ_ACK.subarray(0, 100)];
  // Every single-byte corruption of the header area and the options, and every truncation.
  for (let i = 0; i < DNSMASQ_ACK.length; i += 7) {
    const b = Buffer.from(DNSMASQ_ACK);
    b[i] = b[i]! ^ 0xff;
    bad.push(b, DNSMASQ_ACK.subarray(0, i));
  }
  for (let i = 0; i < 2000; i++) bad.push(randomBytes(Math.floor(Math.random() * 600)));
  // A fragment, a wrong port, an option running past the end.
  const frag = Buffer.from(DNSMASQ_ACK);
  frag.writeUInt16BE(0x2000, 6);
  const port = Buffer.from(DNSMASQ_ACK);
  port.writeUInt16BE(69, 22);
  const overrun = Buffer.from(DNSMASQ_ACK);
  overrun[overrun.length - 1] = 0x10;
  for (const b of [...bad, frag, port, overrun]) {
    assert.doesNotThrow(() => decodeUdp(b));
    assert.doesNotThrow(() => decodeDhcp(b));
    const r = decodeReply(b, 0x7897487a, '02:dc:00:00:01:14');
    // A flipped bit inside the payload past the fields we check (sname/file) may still decode: that is fine,
    // the IPv4 checksum does not cover it and we skip the UDP one. Everything else must be refused.
    if (r) assert.ok(b.length === DNSMASQ_ACK.length && r.msg.type === DHCPACK);
  }
  assert.equal(decodeReply(frag, 0x7897487a, '02:dc:00:00:01:14'), undefined);
  assert.equal(decodeReply(port, 0x7897487a, '02:dc:00:00:01:14'), undefined);
  assert.equal(decodeReply(overrun, 0x7897487a, '02:dc:00:00:01:14'), undefined);
});
