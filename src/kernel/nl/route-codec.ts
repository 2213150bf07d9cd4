// struct rtmsg + RTA_* attributes <-> typed routes.
import { type Attr, bytes, getU32, parseAttrs, u32 } from './attrs';
import * as C from './constants';
import { bytesToIp, type Family, ipToBytes } from '../../types/address';

export type RouteScope = 'universe' | 'link' | 'host' | number;
export type RouteType = 'unicast' | 'local' | 'broadcast' | 'multicast' | number;

export interface Route {
  readonly family: Family;
  /** "default" or a CIDR such as "198.18.15.0/24". */
  readonly dst: string;
  readonly gateway?: string;
  readonly oif?: number;
  readonly prefsrc?: string;
  readonly metric?: number;
  readonly table: number;
  readonly protocol: number;
  readonly scope: RouteScope;
  readonly type: RouteType;
  readonly onlink: boolean;
}

export const RTMSG_LEN = 12;

const scopeName = (s: number): RouteScope =>
  s === C.RT_SCOPE_UNIVERSE ? 'universe' : s === C.RT_SCOPE_LINK ? 'link' : s === C.RT_SCOPE_HOST ? 'host' : s;
const scopeNum = (s: RouteScope): number =>
  s === 'universe' ? C.RT_SCOPE_UNIVERSE : s === 'link' ? C.RT_SCOPE_LINK : s === 'host' ? C.RT_SCOPE_HOST : s;
const typeName = (t: number): RouteType =>
  t === C.RTN_UNICAST
    ? 'unicast'
    : t === C.RTN_LOCAL
      ? 'local'
      : t === C.RTN_BROADCAST
        ? 'broadcast'
        : t === C.RTN_MULTICAST
          ? 'multicast'
          : t;

export interface RouteSpec {
  family: Family;
  /** Destination network; prefix 0 is the default route. */
  dst: { address: string; prefix: number };
  gateway?: string;
  oif?: number;
  prefsrc?: string;
  metric?: number;
  table?: number;
  /** Default: "link" for a device route without gateway, "universe" otherwise. */
  scope?: RouteScope;
  onlink?: boolean;
  protocol?: number;
}

export function encodeRoute(spec: RouteSpec): { fixed: Buffer; attrs: Attr[] } {
  const table = spec.table ?? C.RT_TABLE_MAIN;
  const b = Buffer.alloc(RTMSG_LEN);
  b.writeUInt8(spec.family === 4 ? C.AF_INET : C.AF_INET6, 0);
  b.writeUInt8(spec.dst.prefix, 1);
  b.writeUInt8(table < 256 ? table : 0, 4); // tables above 255 go in RTA_TABLE only
  b.writeUInt8(spec.protocol ?? C.RTPROT_BOOT, 5);
  b.writeUInt8(scopeNum(spec.scope ?? (spec.gateway ? 'universe' : 'link')), 6);
  b.writeUInt8(C.RTN_UNICAST, 7);
  b.writeUInt32LE(spec.onlink ? C.RTNH_F_ONLINK : 0, 8);
  const attrs: Attr[] = [u32(C.RTA_TABLE, table)];
  if (spec.dst.prefix > 0) attrs.push(bytes(C.RTA_DST, ipToBytes(spec.dst.address)));
  if (spec.gateway) attrs.push(bytes(C.RTA_GATEWAY, ipToBytes(spec.gateway)));
  if (spec.oif !== undefined) attrs.push(u32(C.RTA_OIF, spec.oif));
  if (spec.prefsrc) attrs.push(bytes(C.RTA_PREFSRC, ipToBytes(spec.prefsrc)));
  if (spec.metric !== undefined) attrs.push(u32(C.RTA_PRIORITY, spec.metric));
  return { fixed: b, attrs };
}

export function encodeRouteDumpFilter(family: Family | 0): Buffer {
  const b = Buffer.alloc(RTMSG_LEN);
  b.writeUInt8(family === 4 ? C.AF_INET : family === 6 ? C.AF_INET6 : C.AF_UNSPEC, 0);
  return b;
}

export function decodeRoute(body: Buffer): Route {
  const family: Family = body.readUInt8(0) === C.AF_INET6 ? 6 : 4;
  const dstLen = body.readUInt8(1);
  const a = parseAttrs(body, RTMSG_LEN);
  const dst = a.get(C.RTA_DST);
  const gw = a.get(C.RTA_GATEWAY);
  const src = a.get(C.RTA_PREFSRC);
  const oif = getU32(a, C.RTA_OIF);
  const metric = getU32(a, C.RTA_PRIORITY);
  return Object.freeze({
    family,
    dst: dstLen === 0 ? 'default' : `${dst ? bytesToIp(dst) : family === 4 ? '0.0.0.0' : '::'}/${dstLen}`,
    ...(gw && { gateway: bytesToIp(gw) }),
    ...(oif !== undefined && { oif }),
    ...(src && { prefsrc: bytesToIp(src) }),
    ...(metric !== undefined && { metric }),
    table: getU32(a, C.RTA_TABLE) ?? body.readUInt8(4),
    protocol: body.readUInt8(5),
    scope: scopeName(body.readUInt8(6)),
    type: typeName(body.readUInt8(7)),
    onlink: (body.readUInt32LE(8) & C.RTNH_F_ONLINK) !== 0,
  });
}
