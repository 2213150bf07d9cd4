// Netlink attributes (struct nlattr): 16-bit length, 16-bit type, payload, padded to 4 bytes.
import { NLA_F_NESTED, NLA_TYPE_MASK } from './constants';

export const align4 = (n: number): number => (n + 3) & ~3;

/** One attribute to encode. `nested` children are encoded inside it with NLA_F_NESTED set. */
export type Attr = { type: number; value: Buffer } | { type: number; nested: Attr[] };

export const u8 = (type: number, v: number): Attr => ({ type, value: Buffer.from([v & 0xff]) });
export function u16(type: number, v: number): Attr {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return { type, value: b };
}
/** Network byte order 16-bit value (IFLA_VLAN_PROTOCOL is __be16). */
export function be16(type: number, v: number): Attr {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return { type, value: b };
}
export function u32(type: number, v: number): Attr {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return { type, value: b };
}
export const str = (type: number, s: string): Attr => ({
  type,
  value: Buffer.concat([Buffer.from(s), Buffer.from([0])]),
});
export const bytes = (type: number, b: Buffer): Attr => ({ type, value: b });
export const nest = (type: number, nested: Attr[]): Attr => ({ type, nested });

export function encodedLength(attrs: readonly Attr[]): number {
  let n = 0;
  for (const a of attrs) n += align4(4 + ('value' in a ? a.value.length : encodedLength(a.nested)));
  return n;
}

/** Writes attrs into buf at off; returns the offset after the last (padded) attribute. */
export function encodeAttrs(attrs: readonly Attr[], buf: Buffer, off: number): number {
  for (const a of attrs) {
    const start = off;
    if ('value' in a) {
      buf.writeUInt16LE(4 + a.value.length, off);
      buf.writeUInt16LE(a.type, off + 2);
      a.value.copy(buf, off + 4);
      off = start + align4(4 + a.value.length);
    } else {
      const end = encodeAttrs(a.nested, buf, off + 4);
      buf.writeUInt16LE(end - start, off);
      buf.writeUInt16LE(a.type | NLA_F_NESTED, off + 2);
      off = end;
    }
  }
  return off;
}

/** Decoded attributes: type → payload (the last one wins for repeated types, which rtnetlink does not use). */
export type AttrMap = Map<number, Buffer>;

export function parseAttrs(buf: Buffer, off = 0, end = buf.length): AttrMap {
  const out: AttrMap = new Map();
  while (off + 4 <= end) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > end) break; // truncated: keep what was complete
    out.set(buf.readUInt16LE(off + 2) & NLA_TYPE_MASK, buf.subarray(off + 4, off + len));
    off += align4(len);
  }
  return out;
}

export const getU8 = (m: AttrMap, t: number): number | undefined => m.get(t)?.readUInt8(0);
export const getU16 = (m: AttrMap, t: number): number | undefined => m.get(t)?.readUInt16LE(0);
export const getBe16 = (m: AttrMap, t: number): number | undefined => m.get(t)?.readUInt16BE(0);
export const getU32 = (m: AttrMap, t: number): number | undefined => m.get(t)?.readUInt32LE(0);
export const getI32 = (m: AttrMap, t: number): number | undefined => m.get(t)?.readInt32LE(0);
export function getStr(m: AttrMap, t: number): string | undefined {
  const b = m.get(t);
  if (!b) return undefined;
  const nul = b.indexOf(0);
  return b.toString('utf8', 0, nul < 0 ? b.length : nul);
}
