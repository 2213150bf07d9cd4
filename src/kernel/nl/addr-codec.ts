// struct ifaddrmsg + IFA_* attributes <-> typed addresses.
import { type Attr, bytes, getStr, getU32, parseAttrs, u32 } from './attrs';
import * as C from './constants';
import { bytesToIp, type Family, ipToBytes } from '../../types/address';

export interface Address {
  readonly family: Family;
  readonly index: number;
  /** The interface address (IFA_LOCAL, or IFA_ADDRESS where there is no local, as for IPv6). */
  readonly address: string;
  readonly prefix: number;
  /** The peer on point-to-point links; equal to address otherwise. */
  readonly peer?: string;
  readonly broadcast?: string;
  readonly label?: string;
  readonly scope: number;
  readonly flags: number;
  readonly tentative: boolean;
  readonly dadFailed: boolean;
  readonly nodad: boolean;
}

export const IFADDRMSG_LEN = 8;

export function encodeIfaddrmsg(family: Family | 0, prefix: number, index: number, flags = 0, scope = 0): Buffer {
  const b = Buffer.alloc(IFADDRMSG_LEN);
  b.writeUInt8(family === 4 ? C.AF_INET : family === 6 ? C.AF_INET6 : C.AF_UNSPEC, 0);
  b.writeUInt8(prefix, 1);
  b.writeUInt8(flags & 0xff, 2);
  b.writeUInt8(scope, 3);
  b.writeUInt32LE(index, 4);
  return b;
}

export interface AddressSpec {
  address: string;
  prefix: number;
  family: Family;
  index: number;
  nodad?: boolean;
  noprefixroute?: boolean;
  broadcast?: string;
}

export function encodeAddress(spec: AddressSpec): { fixed: Buffer; attrs: Attr[] } {
  const flags = (spec.nodad ? C.IFA_F_NODAD : 0) | (spec.noprefixroute ? C.IFA_F_NOPREFIXROUTE : 0);
  const a = ipToBytes(spec.address);
  // As iproute2 does: IPv4 gets IFA_LOCAL and IFA_ADDRESS (equal unless point-to-point), IPv6 only IFA_ADDRESS.
  const attrs: Attr[] =
    spec.family === 4 ? [bytes(C.IFA_LOCAL, a), bytes(C.IFA_ADDRESS, a)] : [bytes(C.IFA_ADDRESS, a)];
  if (spec.broadcast) attrs.push(bytes(C.IFA_BROADCAST, ipToBytes(spec.broadcast)));
  // The flags byte in ifaddrmsg holds only 8 bits; IFA_FLAGS carries all of them (NOPREFIXROUTE is 0x200).
  if (flags) attrs.push(u32(C.IFA_FLAGS, flags));
  return { fixed: encodeIfaddrmsg(spec.family, spec.prefix, spec.index, flags), attrs };
}

export function decodeAddress(body: Buffer): Address {
  const fam = body.readUInt8(0);
  const family: Family = fam === C.AF_INET6 ? 6 : 4;
  const prefix = body.readUInt8(1);
  const scope = body.readUInt8(3);
  const index = body.readUInt32LE(4);
  const a = parseAttrs(body, IFADDRMSG_LEN);
  const flags = getU32(a, C.IFA_FLAGS) ?? body.readUInt8(2);
  const local = a.get(C.IFA_LOCAL);
  const addr = a.get(C.IFA_ADDRESS);
  const address = bytesToIp((local ?? addr)!);
  const peer = addr ? bytesToIp(addr) : undefined;
  const brd = a.get(C.IFA_BROADCAST);
  const label = getStr(a, C.IFA_LABEL);
  return Object.freeze({
    family,
    index,
    address,
    prefix,
    ...(peer !== undefined && peer !== address && { peer }),
    ...(brd && { broadcast: bytesToIp(brd) }),
    ...(label !== undefined && { label }),
    scope,
    flags,
    tentative: (flags & C.IFA_F_TENTATIVE) !== 0,
    dadFailed: (flags & C.IFA_F_DADFAILED) !== 0,
    nodad: (flags & C.IFA_F_NODAD) !== 0,
  });
}
