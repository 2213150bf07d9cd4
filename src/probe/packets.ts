// ARP (RFC 826, probes and announcements per RFC 5227) and IPv6 neighbour discovery (RFC 4861 NS/NA, DAD per
// RFC 4862) as bytes. Pure: sockets are the prober's business. Frames are link-layer payloads (the packet
// socket is SOCK_DGRAM, so the kernel adds and strips the Ethernet header).
import { bytesToIp, ipToBytes } from '../types/address';
import { transportChecksum } from '../types/checksum';
import { bytesToMac, macToBytes } from '../types/mac';

export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;

export interface Arp {
  readonly op: number;
  readonly senderMac: string;
  readonly senderIp: string;
  readonly targetMac: string;
  readonly targetIp: string;
}

export function encodeArp(a: Arp): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt16BE(1, 0); // hardware: Ethernet
  b.writeUInt16BE(0x0800, 2); // protocol: IPv4
  b.writeUInt8(6, 4);
  b.writeUInt8(4, 5);
  b.writeUInt16BE(a.op, 6);
  macToBytes(a.senderMac).copy(b, 8);
  ipToBytes(a.senderIp).copy(b, 14);
  macToBytes(a.targetMac).copy(b, 18);
  ipToBytes(a.targetIp).copy(b, 24);
  return b;
}

export function decodeArp(b: Buffer): Arp | undefined {
  if (b.length < 28 || b.readUInt16BE(0) !== 1 || b.readUInt16BE(2) !== 0x0800 || b[4] !== 6 || b[5] !== 4)
    return undefined;
  return {
    op: b.readUInt16BE(6),
    senderMac: bytesToMac(b.subarray(8, 14)),
    senderIp: bytesToIp(b.subarray(14, 18)),
    targetMac: bytesToMac(b.subarray(18, 24)),
    targetIp: bytesToIp(b.subarray(24, 28)),
  };
}

/** RFC 5227 2.1.1: sender IP all zeros, so that no neighbour's cache learns anything from the probe. */
export const arpProbe = (mac: string, target: string): Buffer =>
  encodeArp({ op: ARP_REQUEST, senderMac: mac, senderIp: '0.0.0.0', targetMac: '00:00:00:00:00:00', targetIp: target });

/** RFC 5227 2.3: an ARP request with sender and target IP both the address; caches update to `mac`. */
export const arpAnnounce = (mac: string, ip: string): Buffer =>
  encodeArp({ op: ARP_REQUEST, senderMac: mac, senderIp: ip, targetMac: '00:00:00:00:00:00', targetIp: ip });

// ---- IPv6 ----

export const ICMPV6_NS = 135;
export const ICMPV6_NA = 136;

/** ff02::1:ffXX:XXXX for a target, and its Ethernet multicast 33:33:ff:XX:XX:XX. */
export function solicitedNode(target: string): { ip: string; mac: string } {
  const t = ipToBytes(target);
  const ip = Buffer.from('ff0200000000000000000001ff000000', 'hex');
  t.copy(ip, 13, 13, 16);
  return { ip: bytesToIp(ip), mac: bytesToMac(Buffer.from([0x33, 0x33, 0xff, t[13]!, t[14]!, t[15]!])) };
}

export const ALL_NODES = { ip: 'ff02::1', mac: '33:33:00:00:00:01' };

function ipv6Packet(src: string, dst: string, icmp: Buffer): Buffer {
  const s = ipToBytes(src);
  const d = ipToBytes(dst);
  icmp.writeUInt16BE(0, 2);
  icmp.writeUInt16BE(transportChecksum(s, d, 58, icmp), 2); // RFC 4443 2.3
  const h = Buffer.alloc(40);
  h.writeUInt32BE(0x60000000, 0);
  h.writeUInt16BE(icmp.length, 4);
  h.writeUInt8(58, 6); // ICMPv6
  h.writeUInt8(255, 7); // RFC 4861: ND messages must have hop limit 255
  s.copy(h, 8);
  d.copy(h, 24);
  return Buffer.concat([h, icmp]);
}

/** DAD probe (RFC 4862 5.4.2): NS from ::, to the target's solicited-node group, no source link-layer option. */
export function dadProbe(target: string): { packet: Buffer; dstMac: string } {
  const sn = solicitedNode(target);
  const icmp = Buffer.alloc(24);
  icmp.writeUInt8(ICMPV6_NS, 0);
  ipToBytes(target).copy(icmp, 8);
  return { packet: ipv6Packet('::', sn.ip, icmp), dstMac: sn.mac };
}

/**
 * A Neighbour Solicitation from `src` with the source link-layer option (RFC 4861 7.2.2): unlike a DAD probe,
 * whose answer goes to all nodes, the target answers it with a solicited NA unicast to `mac` (7.2.4), so only
 * the asker hears it. `src` need not be configured anywhere: a packet socket sees the answer before IP does.
 */
export function neighbourSolicitation(mac: string, src: string, target: string): { packet: Buffer; dstMac: string } {
  const sn = solicitedNode(target);
  const icmp = Buffer.alloc(32);
  icmp.writeUInt8(ICMPV6_NS, 0);
  ipToBytes(target).copy(icmp, 8);
  icmp.writeUInt8(1, 24); // option: source link-layer address
  icmp.writeUInt8(1, 25);
  macToBytes(mac).copy(icmp, 26);
  return { packet: ipv6Packet(src, sn.ip, icmp), dstMac: sn.mac };
}

/** The EUI-64 link-local address of a MAC (RFC 4291 2.5.1, appendix A): fe80::, the U/L bit flipped, ff:fe inside. */
export function linkLocalOf(mac: string): string {
  const m = macToBytes(mac);
  const b = Buffer.alloc(16);
  b[0] = 0xfe;
  b[1] = 0x80;
  b[8] = m[0]! ^ 0x02;
  m.copy(b, 9, 1, 3);
  b[11] = 0xff;
  b[12] = 0xfe;
  m.copy(b, 13, 3, 6);
  return bytesToIp(b);
}

/** Unsolicited NA (RFC 4861 7.2.6): override flag set, to all nodes, with the target link-layer option. */
export function unsolicitedNa(mac: string, ip: string): { packet: Buffer; dstMac: string } {
  const icmp = Buffer.alloc(32);
  icmp.writeUInt8(ICMPV6_NA, 0);
  icmp.writeUInt32BE(0x20000000, 4); // O (override); not S: nobody asked
  ipToBytes(ip).copy(icmp, 8);
  icmp.writeUInt8(2, 24); // option: target link-layer address
  icmp.writeUInt8(1, 25); // length in units of 8 bytes
  macToBytes(mac).copy(icmp, 26);
  return { packet: ipv6Packet(ip, ALL_NODES.ip, icmp), dstMac: ALL_NODES.mac };
}

export interface Nd {
  readonly type: number;
  readonly src: string;
  readonly target: string;
  /** Target (NA) or source (NS) link-layer address option, when present. */
  readonly lladdr?: string;
}

/** Decodes an IPv6 packet carrying an NS or NA; anything else is undefined. */
export function decodeNd(b: Buffer): Nd | undefined {
  if (b.length < 40 + 24 || b[0]! >> 4 !== 6 || b[6] !== 58) return undefined;
  const icmp = b.subarray(40);
  const type = icmp[0]!;
  if (type !== ICMPV6_NS && type !== ICMPV6_NA) return undefined;
  let lladdr: string | undefined;
  for (let off = 24; off + 8 <= icmp.length;) {
    const len = icmp[off + 1]! * 8;
    if (len === 0) break;
    if ((icmp[off] === 1 || icmp[off] === 2) && len >= 8) lladdr = bytesToMac(icmp.subarray(off + 2, off + 8));
    off += len;
  }
  return {
    type,
    src: bytesToIp(b.subarray(8, 24)),
    target: bytesToIp(icmp.subarray(8, 24)),
    ...(lladdr && { lladdr }),
  };
}
