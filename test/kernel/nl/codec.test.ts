// Codec tests on bytes written as the kernel writes them; no sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bytes,
  encodeAttrs,
  encodedLength,
  getStr,
  getU32,
  nest,
  parseAttrs,
  str,
  u16,
  u32,
} from '../../../src/kernel/nl/attrs';
import * as C from '../../../src/kernel/nl/constants';
import { decodeError, decodeMessages, encodeMessage, splitReply } from '../../../src/kernel/nl/message';
import { decodeLink, encodeCreateAttrs, encodeIfinfomsg, encodeSetLink } from '../../../src/kernel/nl/link-codec';
import { decodeAddress, encodeAddress } from '../../../src/kernel/nl/addr-codec';
import { decodeRoute, encodeRoute } from '../../../src/kernel/nl/route-codec';
import { decodeNeighbour, encodeNeighbour } from '../../../src/kernel/nl/neigh-codec';
import { macToBytes } from '../../../src/types/mac';

function encode(attrs: Parameters<typeof encodeAttrs>[0]): Buffer {
  const b = Buffer.alloc(encodedLength(attrs));
  encodeAttrs(attrs, b, 0);
  return b;
}

test('attributes are padded to 4 bytes and nested ones carry NLA_F_NESTED', () => {
  const b = encode([
    str(C.IFLA_IFNAME, 'eth0'),
    nest(C.IFLA_LINKINFO, [str(C.IFLA_INFO_KIND, 'macvlan')]),
    u16(7, 0x1234),
  ]);
  // "eth0\0" is 5 bytes: 4 header + 5 = 9, padded to 12.
  assert.equal(b.readUInt16LE(0), 9);
  assert.equal(b.readUInt16LE(2), C.IFLA_IFNAME);
  assert.equal(b.readUInt16LE(12 + 2), C.IFLA_LINKINFO | C.NLA_F_NESTED);
  const m = parseAttrs(b);
  assert.equal(getStr(m, C.IFLA_IFNAME), 'eth0');
  assert.equal(getStr(parseAttrs(m.get(C.IFLA_LINKINFO)!), C.IFLA_INFO_KIND), 'macvlan');
  assert.equal(m.get(7)!.readUInt16LE(0), 0x1234);
  assert.equal(b.length % 4, 0);
});

test('a truncated attribute stream keeps the complete attributes and drops the rest', () => {
  const b = encode([u32(1, 7), u32(2, 9)]);
  const m = parseAttrs(b.subarray(0, b.length - 2));
  assert.equal(getU32(m, 1), 7);
  assert.equal(m.has(2), false);
});

test('a request message has the right header and the kernel-style reply splits into data and ack', () => {
  const req = encodeMessage(C.RTM_GETLINK, C.NLM_F_REQUEST | C.NLM_F_DUMP, 42, encodeIfinfomsg());
  assert.equal(req.readUInt32LE(0), req.length);
  assert.equal(req.readUInt16LE(4), C.RTM_GETLINK);
  assert.equal(req.readUInt32LE(8), 42);
  const link = encodeMessage(C.RTM_NEWLINK, C.NLM_F_MULTI, 42, encodeIfinfomsg(3, C.IFF_UP), [
    str(C.IFLA_IFNAME, 'p0'),
    u32(C.IFLA_MTU, 1500),
  ]);
  const done = encodeMessage(C.NLMSG_DONE, C.NLM_F_MULTI, 42, Buffer.from([0, 0, 0, 0]));
  const r = splitReply(Buffer.concat([link, done]));
  assert.equal(r.messages.length, 1);
  assert.equal(r.ack, undefined);
  assert.equal(decodeLink(r.messages[0]!.body).name, 'p0');
  assert.equal(decodeMessages(Buffer.concat([link, done])).length, 2);
});

test('an error reply yields the errno and the extended-ack text (capped and uncapped)', () => {
  const echoed = encodeMessage(C.RTM_NEWLINK, C.NLM_F_REQUEST, 5, encodeIfinfomsg());
  const errno = Buffer.alloc(4);
  errno.writeInt32LE(-22);
  const tlv = encode([str(C.NLMSGERR_ATTR_MSG, 'Invalid MTU')]);
  // Capped: only the echoed header, then the TLVs.
  const capped = encodeMessage(
    C.NLMSG_ERROR,
    C.NLM_F_CAPPED | C.NLM_F_ACK_TLVS,
    5,
    Buffer.concat([errno, echoed.subarray(0, 16), tlv]),
  );
  assert.deepEqual(decodeError(decodeMessages(capped)[0]!), { errno: 22, extack: 'Invalid MTU' });
  // Uncapped: the whole request is echoed before the TLVs.
  const full = encodeMessage(C.NLMSG_ERROR, C.NLM_F_ACK_TLVS, 5, Buffer.concat([errno, echoed, tlv]));
  assert.deepEqual(decodeError(decodeMessages(full)[0]!), { errno: 22, extack: 'Invalid MTU' });
  // A plain ACK.
  const ack = encodeMessage(C.NLMSG_ERROR, C.NLM_F_CAPPED, 5, Buffer.concat([Buffer.alloc(4), echoed.subarray(0, 16)]));
  assert.deepEqual(splitReply(ack).ack, { errno: 0 });
});

test('link creation attributes carry kind, parent and mode for macvlan, ipvlan, vlan and veth', () => {
  const mv = parseAttrs(
    encode(
      encodeCreateAttrs({
        kind: 'macvlan',
        name: 'mv0',
        parentIndex: 4,
        mode: 'passthru',
        mtu: 1400,
        mac: macToBytes('02:00:00:00:00:01'),
      }),
    ),
  );
  assert.equal(getStr(mv, C.IFLA_IFNAME), 'mv0');
  assert.equal(getU32(mv, C.IFLA_LINK), 4);
  assert.equal(getU32(mv, C.IFLA_MTU), 1400);
  assert.equal(mv.get(C.IFLA_ADDRESS)!.toString('hex'), '020000000001');
  const info = parseAttrs(mv.get(C.IFLA_LINKINFO)!);
  assert.equal(getStr(info, C.IFLA_INFO_KIND), 'macvlan');
  assert.equal(getU32(parseAttrs(info.get(C.IFLA_INFO_DATA)!), C.IFLA_MACVLAN_MODE), C.MACVLAN_MODE_PASSTHRU);

  const ipv = parseAttrs(
    parseAttrs(
      parseAttrs(
        encode(encodeCreateAttrs({ kind: 'ipvlan', name: 'iv0', parentIndex: 4, mode: 'l3s', flag: 'vepa' })),
      ).get(C.IFLA_LINKINFO)!,
    ).get(C.IFLA_INFO_DATA)!,
  );
  assert.equal(ipv.get(C.IFLA_IPVLAN_MODE)!.readUInt16LE(0), C.IPVLAN_MODE_L3S);
  assert.equal(ipv.get(C.IFLA_IPVLAN_FLAGS)!.readUInt16LE(0), C.IPVLAN_F_VEPA);

  const vl = parseAttrs(
    parseAttrs(
      parseAttrs(encode(encodeCreateAttrs({ kind: 'vlan', name: 'eth0.50', parentIndex: 4, id: 50 }))).get(
        C.IFLA_LINKINFO,
      )!,
    ).get(C.IFLA_INFO_DATA)!,
  );
  assert.equal(vl.get(C.IFLA_VLAN_ID)!.readUInt16LE(0), 50);
  assert.equal(vl.get(C.IFLA_VLAN_PROTOCOL)!.readUInt16BE(0), C.ETH_P_8021Q); // big-endian on the wire

  const veth = parseAttrs(encode(encodeCreateAttrs({ kind: 'veth', name: 'a', peer: { name: 'b' } })));
  const peer = parseAttrs(parseAttrs(veth.get(C.IFLA_LINKINFO)!).get(C.IFLA_INFO_DATA)!).get(C.VETH_INFO_PEER)!;
  assert.equal(getStr(parseAttrs(peer, 16), C.IFLA_IFNAME), 'b'); // after a whole ifinfomsg
});

test('decodeLink reads kind data as the kernel reports it', () => {
  const body = Buffer.concat([
    encodeIfinfomsg(9, C.IFF_UP | C.IFF_PROMISC | C.IFF_LOWER_UP),
    encode([
      str(C.IFLA_IFNAME, 'mv0'),
      u32(C.IFLA_MTU, 1500),
      u32(C.IFLA_LINK, 4),
      bytes(C.IFLA_ADDRESS, macToBytes('02:42:c6:12:0f:05')),
      { type: C.IFLA_OPERSTATE, value: Buffer.from([6]) },
      u32(C.IFLA_PROMISCUITY, 1),
      nest(C.IFLA_LINKINFO, [
        str(C.IFLA_INFO_KIND, 'macvlan'),
        nest(C.IFLA_INFO_DATA, [u32(C.IFLA_MACVLAN_MODE, C.MACVLAN_MODE_PRIVATE)]),
      ]),
    ]),
  ]);
  body.writeUInt16LE(C.ARPHRD_ETHER, 2);
  const l = decodeLink(body);
  assert.equal(l.index, 9);
  assert.equal(l.kind, 'macvlan');
  assert.deepEqual(l.data, { kind: 'macvlan', mode: 'private' });
  assert.equal(l.parentIndex, 4);
  assert.equal(l.mac, '02:42:c6:12:0f:05');
  assert.equal(l.up && l.promisc && l.lowerUp, true);
  assert.equal(l.operstate, 'up');
  assert.equal(Object.isFrozen(l), true);
});

test('set-link encodes flags with a change mask so only the named flags move', () => {
  const { fixed, attrs } = encodeSetLink(7, { up: false, promisc: true, name: 'x' });
  assert.equal(fixed.readInt32LE(4), 7);
  assert.equal(fixed.readUInt32LE(8), C.IFF_PROMISC);
  assert.equal(fixed.readUInt32LE(12), C.IFF_UP | C.IFF_PROMISC);
  assert.equal(getStr(parseAttrs(encode(attrs)), C.IFLA_IFNAME), 'x');
});

test('addresses, routes and neighbours round-trip through their codecs', () => {
  const a4 = encodeAddress({ family: 4, address: '198.18.15.5', prefix: 24, index: 3 });
  const d4 = decodeAddress(Buffer.concat([a4.fixed, encode(a4.attrs)]));
  assert.deepEqual([d4.family, d4.address, d4.prefix, d4.index], [4, '198.18.15.5', 24, 3]);
  const a6 = encodeAddress({
    family: 6,
    address: '2001:db8::5',
    prefix: 64,
    index: 3,
    nodad: true,
    noprefixroute: true,
  });
  const d6 = decodeAddress(Buffer.concat([a6.fixed, encode(a6.attrs)]));
  assert.equal(d6.address, '2001:db8::5');
  assert.equal(d6.nodad, true);
  assert.equal(d6.flags & C.IFA_F_NOPREFIXROUTE, C.IFA_F_NOPREFIXROUTE); // only in IFA_FLAGS: above 8 bits

  const r = encodeRoute({
    family: 4,
    dst: { address: '198.18.16.0', prefix: 24 },
    gateway: '198.18.15.1',
    oif: 3,
    metric: 50,
    onlink: true,
  });
  const dr = decodeRoute(Buffer.concat([r.fixed, encode(r.attrs)]));
  assert.deepEqual(
    [dr.dst, dr.gateway, dr.oif, dr.metric, dr.onlink, dr.scope, dr.table],
    ['198.18.16.0/24', '198.18.15.1', 3, 50, true, 'universe', 254],
  );
  const def = encodeRoute({ family: 6, dst: { address: '::', prefix: 0 }, oif: 3 });
  const dd = decodeRoute(Buffer.concat([def.fixed, encode(def.attrs)]));
  assert.deepEqual([dd.family, dd.dst, dd.scope], [6, 'default', 'link']);

  const n = encodeNeighbour({
    family: 4,
    index: 3,
    address: '198.18.15.9',
    mac: '02:00:00:00:00:09',
    state: 'permanent',
  });
  const dn = decodeNeighbour(Buffer.concat([n.fixed, encode(n.attrs)]));
  assert.deepEqual(dn, { family: 4, index: 3, address: '198.18.15.9', mac: '02:00:00:00:00:09', state: 'permanent' });
});
