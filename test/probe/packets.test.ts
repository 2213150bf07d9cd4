import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeSocket } from './fake-socket';
import {
  ARP_REPLY,
  arpAnnounce,
  arpProbe,
  dadProbe,
  decodeArp,
  decodeNd,
  encodeArp,
  linkLocalOf,
  neighbourSolicitation,
  solicitedNode,
  unsolicitedNa,
} from '../../src/probe/packets';
import { LinkProber } from '../../src/probe/prober';

test('ARP probe and announcement have the RFC 5227 shape', () => {
  const p = decodeArp(arpProbe('02:00:00:00:00:01', '198.18.15.7'))!;
  assert.deepEqual(p, {
    op: 1,
    senderMac: '02:00:00:00:00:01',
    senderIp: '0.0.0.0',
    targetMac: '00:00:00:00:00:00',
    targetIp: '198.18.15.7',
  });
  const a = decodeArp(arpAnnounce('02:00:00:00:00:01', '198.18.15.7'))!;
  assert.equal(a.senderIp, '198.18.15.7');
  assert.equal(a.targetIp, '198.18.15.7');
  assert.equal(decodeArp(Buffer.alloc(10)), undefined);
});

test('solicited-node group and DAD probe / unsolicited NA decode back', () => {
  assert.deepEqual(solicitedNode('2001:db8:15::abcd:1234'), { ip: 'ff02::1:ffcd:1234', mac: '33:33:ff:cd:12:34' });
  const d = dadProbe('2001:db8:15::7');
  assert.equal(d.dstMac, '33:33:ff:00:00:07');
  assert.deepEqual(decodeNd(d.packet), { type: 135, src: '::', target: '2001:db8:15::7' });
  assert.equal(d.packet[7], 255, 'hop limit 255');
  const na = unsolicitedNa('02:00:00:00:00:09', '2001:db8:15::9');
  assert.deepEqual(decodeNd(na.packet), {
    type: 136,
    src: '2001:db8:15::9',
    target: '2001:db8:15::9',
    lladdr: '02:00:00:00:00:09',
  });
  // The ICMPv6 checksum verifies: summing the pseudo-header and message including the checksum gives 0xffff.
  const pkt = na.packet;
  const pseudo = Buffer.concat([pkt.subarray(8, 40), Buffer.from([0, 0, 0, pkt.length - 40, 0, 0, 0, 58])]);
  let sum = 0;
  for (const part of [pseudo, pkt.subarray(40)])
    for (let i = 0; i < part.length; i += 2) sum += (part[i]! << 8) + (part[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  assert.equal(sum, 0xffff);
});

test('EUI-64 link-local of a MAC, and an NS from it with the source link-layer option (answered unicast)', () => {
  // RFC 4291 appendix A: the U/L bit flipped, ff:fe in the middle.
  assert.equal(linkLocalOf('02:11:22:33:44:55'), 'fe80::11:22ff:fe33:4455');
  assert.equal(linkLocalOf('00:1b:21:0a:0b:0c'), 'fe80::21b:21ff:fe0a:b0c');
  const src = linkLocalOf('02:11:22:33:44:55');
  const ns = neighbourSolicitation('02:11:22:33:44:55', src, '2001:db8:15::1');
  assert.equal(ns.dstMac, '33:33:ff:00:00:01', "to the target's solicited-node group");
  assert.deepEqual(decodeNd(ns.packet), {
    type: 135,
    src,
    target: '2001:db8:15::1',
    lladdr: '02:11:22:33:44:55',
  });
  assert.equal(ns.packet[7], 255, 'hop limit 255');
  const pkt = ns.packet;
  const pseudo = Buffer.concat([pkt.subarray(8, 40), Buffer.from([0, 0, 0, pkt.length - 40, 0, 0, 0, 58])]);
  let sum = 0;
  for (const part of [pseudo, pkt.subarray(40)])
    for (let i = 0; i < part.length; i += 2) sum += (part[i]! << 8) + (part[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  assert.equal(sum, 0xffff, 'the ICMPv6 checksum verifies');
});

test('prober: an answer marks the address held by that MAC; silence means free; own and outgoing frames are ignored', async () => {
  const s = new FakeSocket();
  const pr = new LinkProber('02:00:00:00:00:aa', s);
  const done = pr.probe(['198.18.15.2', '198.18.15.3'], { windowMs: 60, count: 3 });
  s.feed(arpProbe('02:00:00:00:00:aa', '198.18.15.3'), '02:00:00:00:00:aa', 4); // our own, looped back
  s.feed(
    encodeArp({
      op: ARP_REPLY,
      senderMac: '02:00:00:00:00:02',
      senderIp: '198.18.15.2',
      targetMac: '02:00:00:00:00:aa',
      targetIp: '0.0.0.0',
    }),
    '02:00:00:00:00:02',
  );
  const r = await done;
  assert.deepEqual(r.get('198.18.15.2'), { free: false, mac: '02:00:00:00:00:02', reason: 'answered' });
  assert.deepEqual(r.get('198.18.15.3'), { free: true });
  assert.equal(
    s.sent.filter((x) => decodeArp(x.data)?.targetIp === '198.18.15.3').length,
    3,
    'three probes for the silent one',
  );
  assert.ok(s.sent.every((x) => x.dst === 'ff:ff:ff:ff:ff:ff'));
  pr.close();
});

test('prober: another host probing the same address at the same time is a conflict; defended addresses get a reply', async () => {
  const s = new FakeSocket();
  const pr = new LinkProber('02:00:00:00:00:aa', s);
  const done = pr.probe(['198.18.15.4'], { windowMs: 30 });
  s.feed(arpProbe('02:00:00:00:00:bb', '198.18.15.4'), '02:00:00:00:00:bb');
  assert.deepEqual((await done).get('198.18.15.4'), { free: false, mac: '02:00:00:00:00:bb', reason: 'probing' });
  pr.defend('198.18.15.5');
  s.sent = [];
  s.feed(arpProbe('02:00:00:00:00:bb', '198.18.15.5'), '02:00:00:00:00:bb');
  const reply = decodeArp(s.sent[0]!.data)!;
  assert.deepEqual(
    [reply.op, reply.senderIp, reply.senderMac, s.sent[0]!.dst],
    [2, '198.18.15.5', '02:00:00:00:00:aa', '02:00:00:00:00:bb'],
  );
  pr.close();
});

test('prober: IPv6 DAD: an NA for the target is held, an NS from :: is a concurrent probe', async () => {
  const s = new FakeSocket();
  const pr = new LinkProber('02:00:00:00:00:aa', undefined, s);
  const done = pr.probe(['2001:db8:15::2', '2001:db8:15::3', '2001:db8:15::4'], { windowMs: 30 });
  s.feed(unsolicitedNa('02:00:00:00:00:02', '2001:db8:15::2').packet, '02:00:00:00:00:02');
  s.feed(dadProbe('2001:db8:15::3').packet, '02:00:00:00:00:cc');
  const r = await done;
  assert.deepEqual(r.get('2001:db8:15::2'), { free: false, mac: '02:00:00:00:00:02', reason: 'answered' });
  assert.deepEqual(r.get('2001:db8:15::3'), { free: false, mac: '02:00:00:00:00:cc', reason: 'probing' });
  assert.deepEqual(r.get('2001:db8:15::4'), { free: true });
  assert.equal(s.sent[0]!.dst, '33:33:ff:00:00:02');
  pr.close();
});
