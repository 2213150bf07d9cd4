// IP and MAC address text <-> bytes. Pure functions shared by the kernel layer and IPAM.
import { createHash, randomBytes } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

export type Family = 4 | 6;

export interface Cidr {
  readonly family: Family;
  /** The address as written (not masked): "198.18.15.5/24" keeps .5. */
  readonly address: string;
  readonly prefix: number;
}

export function ipFamily(s: string): Family | undefined {
  if (isIPv4(s)) return 4;
  if (isIPv6(s)) return 6;
  return undefined;
}

/** Address text to its 4 or 16 network-order bytes. Throws TypeError on anything that is not an address. */
export function ipToBytes(s: string): Buffer {
  if (isIPv4(s)) return Buffer.from(s.split('.').map(Number));
  if (!isIPv6(s)) throw new TypeError(`not an IP address: ${JSON.stringify(s)}`);
  let text = s;
  const out = Buffer.alloc(16);
  // An embedded IPv4 tail (::ffff:198.18.0.1) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = ipToBytes(v4[1]!);
    text = text.slice(0, v4.index) + `${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? (text.split('::') as [string, string]) : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** Bytes to canonical text (RFC 5952 for IPv6: lower case, longest zero run of 2+ groups compressed). */
export function bytesToIp(b: Buffer): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) throw new TypeError(`an IP address has 4 or 16 bytes, got ${b.length}`);
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push(b.readUInt16BE(i));
  let bestStart = -1,
    bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Canonical form of an address string (so "2001:DB8:0::1" and "2001:db8::1" compare equal). */
export const canonicalIp = (s: string): string => bytesToIp(ipToBytes(s));

/** Parses "address/prefix"; a bare address gets the full-length prefix. Throws TypeError when malformed. */
export function parseCidr(s: string): Cidr {
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  const family = ipFamily(addr);
  if (!family) throw new TypeError(`not an address or CIDR: ${JSON.stringify(s)}`);
  const max = family === 4 ? 32 : 128;
  const ptext = slash < 0 ? String(max) : s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(ptext) || Number(ptext) > max) {
    throw new TypeError(`prefix length in ${JSON.stringify(s)} must be 0 to ${max}`);
  }
  return { family, address: canonicalIp(addr), prefix: Number(ptext) };
}

export const formatCidr = (c: Cidr): string => `${c.address}/${c.prefix}`;

/** "02:42:c6:12:0f:05" <-> bytes. */
export function macToBytes(s: string): Buffer {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(s)) {
    throw new TypeError(`not a MAC address (six hex pairs separated by ':'): ${JSON.stringify(s)}`);
  }
  return Buffer.from(s.split(':').map((x) => parseInt(x, 16)));
}

export const bytesToMac = (b: Buffer): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');

/** The network address of address/prefix, as "network/prefix" ("198.18.15.7", 24 → "198.18.15.0/24"). */
export function networkOf(address: string, prefix: number): string {
  const b = ipToBytes(address);
  for (let i = 0; i < b.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    b[i] = b[i]! & ((0xff << (8 - bits)) & 0xff);
  }
  return `${bytesToIp(b)}/${prefix}`;
}

/** Whether two CIDRs share any address (one contains the other's network address at the shorter prefix). */
export function cidrsOverlap(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  if (x.family !== y.family) return false;
  const p = Math.min(x.prefix, y.prefix);
  return networkOf(x.address, p) === networkOf(y.address, p);
}

/** Whether `address` (plain IP) lies in `cidr`. */
export function cidrContains(cidr: string, address: string): boolean {
  const c = parseCidr(cidr);
  return ipFamily(address) === c.family && networkOf(address, c.prefix) === networkOf(c.address, c.prefix);
}

/**
 * macnet's MAC signatures: every MAC it makes starts with one of these octets (locally administered,
 * unicast), so that `macnet scan` on one host recognises what macnet on other hosts made. 0x0a: containers,
 * 0x0e: probe links.
 */
export const MAC_SIGNATURE = 0x0a;
export const PROBE_MAC_SIGNATURE = 0x0e;
/** A MAC's first octet: MAC_SIGNATURE or PROBE_MAC_SIGNATURE when another host's macnet made it. */
export const macFirstOctet = (mac: string): number => Number.parseInt(mac.slice(0, 2), 16);

/**
 * A MAC with `first` as its first octet and the other five random, or taken from a SHA-256 of `seed` when
 * given (the same seed always gives the same MAC).
 */
export function signedMac(first: number, seed?: string): string {
  const b = seed === undefined ? randomBytes(6) : createHash('sha256').update(seed).digest().subarray(0, 6);
  b[0] = first;
  return bytesToMac(b);
}
