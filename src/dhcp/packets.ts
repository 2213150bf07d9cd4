// DHCPv4 (RFC 2131, options RFC 2132) as bytes, plus the IPv4 + UDP framing that an AF_PACKET SOCK_DGRAM
// socket needs (the kernel adds only the Ethernet header). Pure: sockets and timing are exchange.ts's and
// client.ts's business.
// Decoding never throws: a LAN carries anything, and a malformed frame must not end a lease.
import { bytesToIp, ipToBytes } from '../types/address';
import { internetChecksum, onesSum, transportChecksum } from '../types/checksum';
import { bytesToMac, macToBytes } from '../types/mac';

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
export const SERVER_PORT = 67;
export const CLIENT_PORT = 68;

export const DHCPDISCOVER = 1;
export const DHCPOFFER = 2;
export const DHCPREQUEST = 3;
export const DHCPDECLINE = 4;
export const DHCPACK = 5;
export const DHCPNAK = 6;
export const DHCPRELEASE = 7;

export const MESSAGE_NAMES: Readonly<Record<number, string>> = {
  1: 'DISCOVER',
  2: 'OFFER',
  3: 'REQUEST',
  4: 'DECLINE',
  5: 'ACK',
  6: 'NAK',
  7: 'RELEASE',
  8: 'INFORM',
};

/** Option codes (RFC 2132) macnet sends or reads. */
export const OPT = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS: 6,
  HOSTNAME: 12,
  DOMAIN: 15,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAMS: 55,
  MESSAGE: 56,
  T1: 58,
  T2: 59,
  CLIENT_ID: 61,
  END: 255,
} as const;

/** What we ask for (option 55): mask, router, DNS, domain, lease time, server id, T1, T2. */
export const PARAMETER_REQUEST_LIST = [1, 3, 6, 15, 51, 54, 58, 59];

/** RFC 2131 4.1: the broadcast bit asks the server to broadcast its reply (we have no address yet). */
export const FLAG_BROADCAST = 0x8000;

const MAGIC_COOKIE = 0x63825363;
const FIXED = 236; // op .. file: the BOOTP header (RFC 951)
/** RFC 1542 2.1: relay agents and old servers drop BOOTP messages shorter than 300 bytes. */
const MIN_BOOTP = 300;

export interface DhcpMessage {
  readonly op: number;
  readonly xid: number;
  readonly secs: number;
  readonly flags: number;
  readonly ciaddr: string;
  readonly yiaddr: string;
  readonly siaddr: string;
  readonly giaddr: string;
  /** The client hardware address (htype 1, hlen 6). */
  readonly chaddr: string;
  /** Option 53; 0 when missing (a plain BOOTP message). */
  readonly type: number;
  /** Raw option values by code; repeated codes are concatenated (RFC 3396). */
  readonly options: ReadonlyMap<number, Buffer>;
}

export interface EncodeInput {
  op?: number;
  xid: number;
  secs?: number;
  flags?: number;
  ciaddr?: string;
  yiaddr?: string;
  siaddr?: string;
  giaddr?: string;
  chaddr: string;
  type: number;
  /** Further options in the order to send, after option 53. */
  options?: readonly (readonly [number, Buffer])[];
}

export function encodeDhcp(m: EncodeInput): Buffer {
  const opts: Buffer[] = [Buffer.from([OPT.MESSAGE_TYPE, 1, m.type])];
  for (const [code, value] of m.options ?? []) {
    // RFC 3396: a value longer than 255 bytes is split over several instances of the option.
    for (let off = 0; off === 0 || off < value.length; off += 255) {
      const part = value.subarray(off, off + 255);
      opts.push(Buffer.from([code, part.length]), part);
    }
  }
  opts.push(Buffer.from([OPT.END]));
  const body = Buffer.concat(opts);
  const b = Buffer.alloc(Math.max(MIN_BOOTP, FIXED + 4 + body.length)); // zero fill = PAD options after END
  b.writeUInt8(m.op ?? BOOTREQUEST, 0);
  b.writeUInt8(1, 1); // htype: Ethernet
  b.writeUInt8(6, 2); // hlen
  b.writeUInt32BE(m.xid >>> 0, 4);
  b.writeUInt16BE(Math.min(0xffff, m.secs ?? 0), 8);
  b.writeUInt16BE(m.flags ?? 0, 10);
  ipToBytes(m.ciaddr ?? '0.0.0.0').copy(b, 12);
  ipToBytes(m.yiaddr ?? '0.0.0.0').copy(b, 16);
  ipToBytes(m.siaddr ?? '0.0.0.0').copy(b, 20);
  ipToBytes(m.giaddr ?? '0.0.0.0').copy(b, 24);
  macToBytes(m.chaddr).copy(b, 28);
  b.writeUInt32BE(MAGIC_COOKIE, FIXED);
  body.copy(b, FIXED + 4);
  return b;
}

/** A BOOTP/DHCP message, or undefined for anything malformed (short, wrong cookie, options overrunning). */
export function decodeDhcp(b: Buffer): DhcpMessage | undefined {
  if (b.length < FIXED + 4 || b[1] !== 1 || b[2] !== 6 || b.readUInt32BE(FIXED) !== MAGIC_COOKIE) return undefined;
  const options = new Map<number, Buffer>();
  let off = FIXED + 4;
  let ended = false;
  while (off < b.length) {
    const code = b[off]!;
    if (code === OPT.PAD) {
      off++;
      continue;
    }
    if (code === OPT.END) {
      ended = true;
      break;
    }
    if (off + 2 > b.length) return undefined;
    const len = b[off + 1]!;
    if (off + 2 + len > b.length) return undefined;
    const value = b.subarray(off + 2, off + 2 + len);
    const prev = options.get(code);
    options.set(code, prev ? Buffer.concat([prev, value]) : Buffer.from(value));
    off += 2 + len;
  }
  // Option overload (52, sname/file holding options) is not supported: no server on a LAN needs it for the
  // few options we read, and a message that would need it simply lacks them.
  if (!ended) return undefined;
  const type = options.get(OPT.MESSAGE_TYPE);
  return {
    op: b[0]!,
    xid: b.readUInt32BE(4),
    secs: b.readUInt16BE(8),
    flags: b.readUInt16BE(10),
    ciaddr: bytesToIp(b.subarray(12, 16)),
    yiaddr: bytesToIp(b.subarray(16, 20)),
    siaddr: bytesToIp(b.subarray(20, 24)),
    giaddr: bytesToIp(b.subarray(24, 28)),
    chaddr: bytesToMac(b.subarray(28, 34)),
    type: type?.length === 1 ? type[0]! : 0,
    options,
  };
}

// ---- option values ----

export const optIp = (ip: string): Buffer => ipToBytes(ip);
export const optU32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

const readIps = (v: Buffer | undefined): string[] => {
  if (!v || v.length % 4 !== 0) return [];
  const out: string[] = [];
  for (let i = 0; i < v.length; i += 4) out.push(bytesToIp(v.subarray(i, i + 4)));
  return out;
};
const readU32 = (v: Buffer | undefined): number | undefined => (v?.length === 4 ? v.readUInt32BE(0) : undefined);

/** The lease-related options of an ACK or OFFER, each undefined when absent or malformed. */
export interface LeaseOptions {
  readonly serverId?: string;
  readonly subnetMask?: string;
  readonly router?: string;
  readonly dns: string[];
  readonly domain?: string;
  readonly leaseSeconds?: number;
  readonly t1?: number;
  readonly t2?: number;
  /** Option 56, the server's reason (a NAK usually has one). */
  readonly message?: string;
}

export function leaseOptions(m: DhcpMessage): LeaseOptions {
  const o = m.options;
  const text = (code: number) => {
    const v = o.get(code);
    // Servers may NUL-terminate strings (RFC 2132 2: "should not"): strip it.
    return v && v.length ? v.toString('latin1').replace(/\0+$/, '') : undefined;
  };
  const serverId = readIps(o.get(OPT.SERVER_ID))[0];
  const subnetMask = readIps(o.get(OPT.SUBNET_MASK))[0];
  const router = readIps(o.get(OPT.ROUTER))[0];
  const domain = text(OPT.DOMAIN);
  const leaseSeconds = readU32(o.get(OPT.LEASE_TIME));
  const t1 = readU32(o.get(OPT.T1));
  const t2 = readU32(o.get(OPT.T2));
  const message = text(OPT.MESSAGE);
  return {
    dns: readIps(o.get(OPT.DNS)),
    ...(serverId && { serverId }),
    ...(subnetMask && { subnetMask }),
    ...(router && { router }),
    ...(domain && { domain }),
    ...(leaseSeconds !== undefined && { leaseSeconds }),
    ...(t1 !== undefined && { t1 }),
    ...(t2 !== undefined && { t2 }),
    ...(message && { message }),
  };
}

/** 255.255.255.0 -> 24; undefined for a non-contiguous mask. */
export function maskToPrefix(mask: string): number | undefined {
  const n = ipToBytes(mask).readUInt32BE(0);
  const prefix = 32 - Math.log2((~n >>> 0) + 1);
  return Number.isInteger(prefix) ? prefix : undefined;
}

// ---- IPv4 + UDP ----

/** RFC 768 checksum over the pseudo-header and the UDP header + payload; 0 is sent as 0xffff. */
export function udpChecksum(src: Buffer, dst: Buffer, udp: Buffer): number {
  const c = transportChecksum(src, dst, 17, udp);
  return c === 0 ? 0xffff : c;
}

export interface Udp {
  readonly src: string;
  readonly dst: string;
  readonly srcPort: number;
  readonly dstPort: number;
  readonly payload: Buffer;
}

/** An IPv4 packet (TTL 64, no options, DF clear) carrying one UDP datagram, both checksums filled in. */
export function encodeUdp(u: Udp): Buffer {
  const s = ipToBytes(u.src);
  const d = ipToBytes(u.dst);
  const udp = Buffer.alloc(8 + u.payload.length);
  udp.writeUInt16BE(u.srcPort, 0);
  udp.writeUInt16BE(u.dstPort, 2);
  udp.writeUInt16BE(udp.length, 4);
  u.payload.copy(udp, 8);
  udp.writeUInt16BE(udpChecksum(s, d, udp), 6);
  const ip = Buffer.alloc(20);
  ip.writeUInt8(0x45, 0);
  ip.writeUInt16BE(20 + udp.length, 2);
  ip.writeUInt8(64, 8);
  ip.writeUInt8(17, 9);
  s.copy(ip, 12);
  d.copy(ip, 16);
  ip.writeUInt16BE(internetChecksum([ip]), 10);
  return Buffer.concat([ip, udp]);
}

/**
 * The UDP datagram of an IPv4 packet, or undefined: not IPv4/UDP, a fragment, a bad header checksum, lengths
 * that do not fit. The UDP checksum is NOT verified: a frame from a local veth or virtio peer reaches an
 * AF_PACKET socket with checksum offload still pending (CHECKSUM_PARTIAL, only the pseudo-header sum in the
 * field); ISC dhclient had the same bug and needs PACKET_AUXDATA to tell. The DHCP checks that follow
 * (cookie, op, xid, chaddr, option framing) stand in for it.
 */
export function decodeUdp(b: Buffer): Udp | undefined {
  if (b.length < 28 || b[0]! >> 4 !== 4) return undefined;
  const ihl = (b[0]! & 0x0f) * 4;
  const total = b.readUInt16BE(2);
  if (ihl < 20 || total < ihl + 8 || total > b.length || b[9] !== 17) return undefined;
  if ((b.readUInt16BE(6) & 0x3fff) !== 0) return undefined; // MF set or an offset: a fragment
  if (onesSum([b.subarray(0, ihl)]) !== 0xffff) return undefined;
  const udp = b.subarray(ihl, total);
  const len = udp.readUInt16BE(4);
  if (len < 8 || len > udp.length) return undefined;
  return {
    src: bytesToIp(b.subarray(12, 16)),
    dst: bytesToIp(b.subarray(16, 20)),
    srcPort: udp.readUInt16BE(0),
    dstPort: udp.readUInt16BE(2),
    payload: udp.subarray(8, len),
  };
}

/** A BOOTREPLY to port 68 for our transaction (xid) and client (chaddr), with its IP source; else undefined. */
export function decodeReply(
  packet: Buffer,
  xid: number,
  chaddr: string,
): { msg: DhcpMessage; srcIp: string } | undefined {
  const u = decodeUdp(packet);
  if (!u || u.dstPort !== CLIENT_PORT) return undefined;
  const msg = decodeDhcp(u.payload);
  if (!msg || msg.op !== BOOTREPLY || msg.xid !== xid >>> 0 || msg.chaddr !== chaddr.toLowerCase()) return undefined;
  return { msg, srcIp: u.src };
}
