// Subnet arithmetic on bigints, one code path for IPv4 and IPv6 (an IPv6 /64 has 2^64 addresses, beyond a
// JavaScript number). Pure functions; the text forms come from src/types/ip.ts so that every address macnet
// prints or stores is canonical (RFC 5952 for IPv6).
import { bytesToIp, ipFamily, ipToBytes, type Family } from '../types/ip';

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

export interface Address {
  readonly family: Family;
  readonly value: bigint;
}

export const familyBits = (f: Family): number => (f === 4 ? 32 : 128);

/** Address text to its numeric value. Throws TypeError when `text` is not a plain IPv4 or IPv6 address. */
export function parseAddress(text: string): Address {
  const family = ipFamily(text);
  if (!family) throw new TypeError(`not an IP address: ${JSON.stringify(text)}`);
  return { family, value: bytesToBigint(ipToBytes(text)) };
}

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

/** Parses "address/prefix" (the prefix is required). Throws TypeError when malformed. */
export function parseCidrBig(text: string): ParsedCidr {
  const slash = text.indexOf('/');
  if (slash < 0) throw new TypeError(`not a CIDR (address/prefix): ${JSON.stringify(text)}`);
  const address = parseAddress(text.slice(0, slash));
  const bits = familyBits(address.family);
  const p = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(p) || Number(p) > bits)
    throw new TypeError(`prefix length in ${JSON.stringify(text)} must be 0 to ${bits}`);
  return { subnet: subnetOf(address.family, address.value, Number(p)), address };
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
