// macnet's one address model. An address is its family and its numeric value (a bigint: an IPv6 /64 has 2^64
// addresses, beyond a JavaScript number), one code path for IPv4 and IPv6; the text forms (canonical, RFC 5952
// for IPv6, so that every address macnet prints or stores compares equal as text) and the wire bytes are views
// of it. The string helpers at the end (parseCidr, networkOf, cidrContains, cidrsOverlap) are for callers that
// keep addresses as text; they go through the same parser and subnet arithmetic.
import { isIPv4, isIPv6 } from 'node:net';

export type Family = 4 | 6;

export interface Address {
  readonly family: Family;
  readonly value: bigint;
}

export interface Subnet {
  readonly family: Family;
  /** 32 or 128. */
  readonly bits: number;
  readonly prefix: number;
  /** The network address (host bits zero). */
  readonly base: bigint;
  /** The highest address (for IPv4 the broadcast address). */
  readonly last: bigint;
  readonly size: bigint;
  /** Canonical "198.18.0.0/16", "2001:db8::/64". */
  readonly text: string;
}

export const familyBits = (f: Family): number => (f === 4 ? 32 : 128);

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

export function bytesToBigint(b: Buffer): bigint {
  if (b.length === 4) return BigInt(b.readUInt32BE(0));
  return BigInt(`0x${b.toString('hex')}`);
}

export function bigintToBytes(value: bigint, family: Family): Buffer {
  if (family === 4) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(Number(value));
    return b;
  }
  return Buffer.from(value.toString(16).padStart(32, '0'), 'hex');
}

/** Address text to its numeric value. Throws TypeError when `text` is not a plain IPv4 or IPv6 address. */
export function parseAddress(text: string): Address {
  const family = ipFamily(text);
  if (!family) throw new TypeError(`not an IP address: ${JSON.stringify(text)}`);
  return { family, value: bytesToBigint(ipToBytes(text)) };
}

/** Numeric value to canonical address text. */
export function formatAddress(value: bigint, family: Family): string {
  if (family === 6) return bytesToIp(bigintToBytes(value, 6));
  // IPv4 directly: this runs for every allocation, and the Buffer round trip is most of its cost.
  const n = Number(value);
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** The subnet of `prefix` bits that contains `value`. */
export function subnetOf(family: Family, value: bigint, prefix: number): Subnet {
  const bits = familyBits(family);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits)
    throw new RangeError(`prefix ${prefix} is not 0 to ${bits}`);
  const size = 1n << BigInt(bits - prefix);
  const base = value - (value % size);
  return Object.freeze({
    family,
    bits,
    prefix,
    base,
    last: base + size - 1n,
    size,
    text: `${formatAddress(base, family)}/${prefix}`,
  });
}

export interface ParsedCidr {
  readonly subnet: Subnet;
  /** The address as written; differs from subnet.base when host bits are set ("198.18.15.5/24"). */
  readonly address: Address;
}

/**
 * The one CIDR parser: "address/prefix", or with `bare`, also a plain address (the full-length prefix). Returns
 * the reason as text when malformed, so each caller keeps its own error.
 */
function parsePrefixed(text: string, bare: boolean): ParsedCidr | { readonly bad: string } {
  const slash = text.indexOf('/');
  if (slash < 0 && !bare) return { bad: 'no-prefix' };
  const family = ipFamily(slash < 0 ? text : text.slice(0, slash));
  if (!family) return { bad: 'address' };
  const address = parseAddress(slash < 0 ? text : text.slice(0, slash));
  const bits = familyBits(family);
  const p = slash < 0 ? String(bits) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(p) || Number(p) > bits)
    return { bad: `prefix length in ${JSON.stringify(text)} must be 0 to ${bits}` };
  return { subnet: subnetOf(family, address.value, Number(p)), address };
}

/** Parses "address/prefix" (the prefix is required). Throws TypeError when malformed. */
export function parseCidrBig(text: string): ParsedCidr {
  const r = parsePrefixed(text, false);
  if ('subnet' in r) return r;
  if (r.bad === 'no-prefix') throw new TypeError(`not a CIDR (address/prefix): ${JSON.stringify(text)}`);
  if (r.bad === 'address')
    throw new TypeError(`not an IP address: ${JSON.stringify(text.slice(0, text.indexOf('/')))}`);
  throw new TypeError(r.bad);
}

export const containsAddress = (s: Subnet, a: Address): boolean =>
  a.family === s.family && a.value >= s.base && a.value <= s.last;

/** True when `inner` lies entirely inside `outer` (a subnet contains itself). */
export const containsSubnet = (outer: Subnet, inner: Subnet): boolean =>
  outer.family === inner.family && inner.base >= outer.base && inner.last <= outer.last;

/** Two prefixes overlap exactly when one contains the other; this also holds for arbitrary ranges. */
export const overlaps = (a: Subnet, b: Subnet): boolean =>
  a.family === b.family && a.base <= b.last && b.base <= a.last;

/**
 * The addresses a host may use. The network address is reserved in both families (IPv6: the Subnet-Router
 * anycast address, RFC 4291 2.6.1) and the IPv4 broadcast address, except on point-to-point prefixes where
 * every address is a host: IPv4 /31 (RFC 3021), IPv6 /127 (RFC 6164), and single-address /32 and /128.
 */
export function usableRange(s: Subnet): { first: bigint; last: bigint } {
  const hostBits = s.bits - s.prefix;
  if (hostBits <= 1) return { first: s.base, last: s.last };
  return { first: s.base + 1n, last: s.family === 4 ? s.last - 1n : s.last };
}

/** The `n`-th address of the subnet counting from its network address (0); undefined past the end. */
export function nth(s: Subnet, n: bigint): bigint | undefined {
  return n >= 0n && n < s.size ? s.base + n : undefined;
}

/** Why `a` cannot be used by a host in `s`, or undefined if it can. */
export function unusableReason(s: Subnet, a: Address): string | undefined {
  if (!containsAddress(s, a)) return `is outside subnet ${s.text}`;
  const u = usableRange(s);
  if (a.value === s.base && a.value < u.first) return `is the network address of ${s.text}`;
  if (a.value === s.last && a.value > u.last) return `is the broadcast address of ${s.text}`;
  return undefined;
}

/** Aligns `v` up to the next multiple of `size` (a power of two). */
export const alignUp = (v: bigint, size: bigint): bigint => ((v + size - 1n) / size) * size;

/** A CIDR as text: its family, the address as written in canonical form (not masked) and the prefix. */
export interface Cidr {
  readonly family: Family;
  /** The address as written (not masked): "198.18.15.5/24" keeps .5. */
  readonly address: string;
  readonly prefix: number;
}

/** parsePrefixed with a bare address allowed, and parseCidr's errors. */
function parseCidrText(s: string): ParsedCidr {
  const r = parsePrefixed(s, true);
  if ('subnet' in r) return r;
  throw new TypeError(r.bad === 'address' ? `not an address or CIDR: ${JSON.stringify(s)}` : r.bad);
}

/** Parses "address/prefix"; a bare address gets the full-length prefix. Throws TypeError when malformed. */
export function parseCidr(s: string): Cidr {
  const { address, subnet } = parseCidrText(s);
  return { family: address.family, address: formatAddress(address.value, address.family), prefix: subnet.prefix };
}

export const formatCidr = (c: Cidr): string => `${c.address}/${c.prefix}`;

/** The network address of address/prefix, as "network/prefix" ("198.18.15.7", 24 → "198.18.15.0/24"). */
export function networkOf(address: string, prefix: number): string {
  const a = parseAddress(address);
  return subnetOf(a.family, a.value, prefix).text;
}

/** Whether two CIDRs share any address. */
export const cidrsOverlap = (a: string, b: string): boolean =>
  overlaps(parseCidrText(a).subnet, parseCidrText(b).subnet);

/** Whether `address` (plain IP; false when it is not one) lies in `cidr`. */
export function cidrContains(cidr: string, address: string): boolean {
  const { subnet } = parseCidrText(cidr);
  return ipFamily(address) !== undefined && containsAddress(subnet, parseAddress(address));
}
