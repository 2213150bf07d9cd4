// struct ifinfomsg + IFLA_* attributes <-> typed links. No I/O here: src/kernel/links.ts does the requests.
import {
  type Attr,
  type AttrMap,
  be16,
  bytes,
  encodeAttrs,
  encodedLength,
  getBe16,
  getStr,
  getU16,
  getU32,
  getU8,
  nest,
  parseAttrs,
  str,
  u16,
  u32,
  u8,
} from './attrs';
import * as C from './constants';
import { bytesToMac } from '../../types/mac';

export type MacvlanMode = 'private' | 'vepa' | 'bridge' | 'passthru' | 'source';
export type IpvlanMode = 'l2' | 'l3' | 'l3s';
export type IpvlanFlag = 'bridge' | 'private' | 'vepa';
export type Operstate = 'unknown' | 'notpresent' | 'down' | 'lowerlayerdown' | 'testing' | 'dormant' | 'up';

export const MACVLAN_MODES: Readonly<Record<MacvlanMode, number>> = Object.freeze({
  private: C.MACVLAN_MODE_PRIVATE,
  vepa: C.MACVLAN_MODE_VEPA,
  bridge: C.MACVLAN_MODE_BRIDGE,
  passthru: C.MACVLAN_MODE_PASSTHRU,
  source: C.MACVLAN_MODE_SOURCE,
});
export const IPVLAN_MODES: Readonly<Record<IpvlanMode, number>> = Object.freeze({
  l2: C.IPVLAN_MODE_L2,
  l3: C.IPVLAN_MODE_L3,
  l3s: C.IPVLAN_MODE_L3S,
});
export const IPVLAN_FLAGS: Readonly<Record<IpvlanFlag, number>> = Object.freeze({
  bridge: 0,
  private: C.IPVLAN_F_PRIVATE,
  vepa: C.IPVLAN_F_VEPA,
});
const OPERSTATES: readonly Operstate[] = [
  'unknown',
  'notpresent',
  'down',
  'lowerlayerdown',
  'testing',
  'dormant',
  'up',
];

/** Kind-specific data as the kernel reports it (IFLA_INFO_DATA). */
export type KindData =
  | { readonly kind: 'macvlan' | 'macvtap'; readonly mode: MacvlanMode }
  | { readonly kind: 'ipvlan'; readonly mode: IpvlanMode; readonly flag: IpvlanFlag }
  | { readonly kind: 'vlan'; readonly id: number; readonly protocol: '802.1Q' | '802.1ad' };

export interface Link {
  readonly index: number;
  readonly name: string;
  /** IFLA_INFO_KIND ("macvlan", "veth", "bridge", ...); undefined for physical devices and loopback. */
  readonly kind?: string;
  readonly data?: KindData;
  /** IFLA_LINK: the parent (lower) device's index; for veth the peer's. May live in another namespace. */
  readonly parentIndex?: number;
  /** Set when the parent lives in another namespace (IFLA_LINK_NETNSID). */
  readonly parentNetnsId?: number;
  readonly masterIndex?: number;
  readonly mac?: string;
  readonly mtu: number;
  readonly minMtu?: number;
  readonly maxMtu?: number;
  /** ARPHRD_* hardware type: 1 for Ethernet, 772 for loopback. */
  readonly hwType: number;
  readonly flags: number;
  readonly up: boolean;
  readonly lowerUp: boolean;
  readonly promisc: boolean;
  readonly promiscuity: number;
  readonly operstate: Operstate;
}

export const IFINFOMSG_LEN = 16;

export function encodeIfinfomsg(index = 0, flags = 0, change = 0, family = C.AF_UNSPEC): Buffer {
  const b = Buffer.alloc(IFINFOMSG_LEN);
  b.writeUInt8(family, 0);
  b.writeUInt16LE(0, 2);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags >>> 0, 8);
  b.writeUInt32LE(change >>> 0, 12);
  return b;
}

const byValue = <K extends string>(table: Readonly<Record<K, number>>, v: number): K | undefined =>
  (Object.keys(table) as K[]).find((k) => table[k] === v);

function decodeKindData(kind: string, data: AttrMap): KindData | undefined {
  switch (kind) {
    case 'macvlan':
    case 'macvtap': {
      const mode = byValue(MACVLAN_MODES, getU32(data, C.IFLA_MACVLAN_MODE) ?? C.MACVLAN_MODE_VEPA);
      return mode ? { kind, mode } : undefined;
    }
    case 'ipvlan': {
      const mode = byValue(IPVLAN_MODES, getU16(data, C.IFLA_IPVLAN_MODE) ?? 0);
      const flag = byValue(IPVLAN_FLAGS, (getU16(data, C.IFLA_IPVLAN_FLAGS) ?? 0) & 3);
      return mode && flag ? { kind, mode, flag } : undefined;
    }
    case 'vlan': {
      const id = getU16(data, C.IFLA_VLAN_ID);
      const proto = getBe16(data, C.IFLA_VLAN_PROTOCOL) ?? C.ETH_P_8021Q;
      return id === undefined ? undefined : { kind, id, protocol: proto === C.ETH_P_8021AD ? '802.1ad' : '802.1Q' };
    }
    default:
      return undefined;
  }
}

/** Decodes the body of an RTM_NEWLINK / RTM_DELLINK message. */
export function decodeLink(body: Buffer): Link {
  const hwType = body.readUInt16LE(2);
  const index = body.readInt32LE(4);
  const flags = body.readUInt32LE(8);
  const a = parseAttrs(body, IFINFOMSG_LEN);
  let kind: string | undefined;
  let data: KindData | undefined;
  const info = a.get(C.IFLA_LINKINFO);
  if (info) {
    const i = parseAttrs(info);
    kind = getStr(i, C.IFLA_INFO_KIND);
    const d = i.get(C.IFLA_INFO_DATA);
    if (kind && d) data = decodeKindData(kind, parseAttrs(d));
    // A macvlan in the kernel's default mode may omit nothing, but be safe: mode-less macvlan is vepa.
    if (kind && !d && (kind === 'macvlan' || kind === 'macvtap')) data = { kind, mode: 'vepa' };
  }
  const mac = a.get(C.IFLA_ADDRESS);
  const parentIndex = getU32(a, C.IFLA_LINK);
  const parentNetnsId = a.get(C.IFLA_LINK_NETNSID)?.readInt32LE(0);
  const masterIndex = getU32(a, C.IFLA_MASTER);
  const minMtu = getU32(a, C.IFLA_MIN_MTU);
  const maxMtu = getU32(a, C.IFLA_MAX_MTU);
  return Object.freeze({
    index,
    name: getStr(a, C.IFLA_IFNAME) ?? '',
    ...(kind !== undefined && { kind }),
    ...(data !== undefined && { data }),
    ...(parentIndex !== undefined && parentIndex !== index && parentIndex !== 0 && { parentIndex }),
    ...(parentNetnsId !== undefined && { parentNetnsId }),
    ...(masterIndex !== undefined && masterIndex !== 0 && { masterIndex }),
    ...(mac !== undefined && mac.length > 0 && { mac: bytesToMac(mac) }),
    mtu: getU32(a, C.IFLA_MTU) ?? 0,
    ...(minMtu !== undefined && { minMtu }),
    ...(maxMtu !== undefined && { maxMtu }),
    hwType,
    flags,
    up: (flags & C.IFF_UP) !== 0,
    lowerUp: (flags & C.IFF_LOWER_UP) !== 0,
    promisc: (flags & C.IFF_PROMISC) !== 0,
    promiscuity: getU32(a, C.IFLA_PROMISCUITY) ?? 0,
    operstate: OPERSTATES[getU8(a, C.IFLA_OPERSTATE) ?? 0] ?? 'unknown',
  });
}

/** What a new link is; parents are indexes here (links.ts resolves names first). */
export type LinkKindSpec =
  | { kind: 'macvlan' | 'macvtap'; parentIndex: number; mode: MacvlanMode }
  | { kind: 'ipvlan'; parentIndex: number; mode: IpvlanMode; flag: IpvlanFlag }
  | { kind: 'vlan'; parentIndex: number; id: number; protocol?: '802.1Q' | '802.1ad' }
  | { kind: 'veth'; peer: { name: string; mac?: Buffer; netnsFd?: number } }
  | { kind: 'bridge' }
  | { kind: 'dummy' };

export interface LinkCommon {
  name: string;
  mtu?: number;
  mac?: Buffer;
  netnsFd?: number;
}

/** Attributes for RTM_NEWLINK creating a link. */
export function encodeCreateAttrs(spec: LinkKindSpec & LinkCommon): Attr[] {
  const attrs: Attr[] = [str(C.IFLA_IFNAME, spec.name)];
  if (spec.mtu !== undefined) attrs.push(u32(C.IFLA_MTU, spec.mtu));
  if (spec.mac !== undefined) attrs.push(bytes(C.IFLA_ADDRESS, spec.mac));
  if (spec.netnsFd !== undefined) attrs.push(u32(C.IFLA_NET_NS_FD, spec.netnsFd));
  const info: Attr[] = [str(C.IFLA_INFO_KIND, spec.kind)];
  switch (spec.kind) {
    case 'macvlan':
    case 'macvtap':
      attrs.push(u32(C.IFLA_LINK, spec.parentIndex));
      info.push(nest(C.IFLA_INFO_DATA, [u32(C.IFLA_MACVLAN_MODE, MACVLAN_MODES[spec.mode])]));
      break;
    case 'ipvlan':
      attrs.push(u32(C.IFLA_LINK, spec.parentIndex));
      info.push(
        nest(C.IFLA_INFO_DATA, [
          u16(C.IFLA_IPVLAN_MODE, IPVLAN_MODES[spec.mode]),
          u16(C.IFLA_IPVLAN_FLAGS, IPVLAN_FLAGS[spec.flag]),
        ]),
      );
      break;
    case 'vlan':
      attrs.push(u32(C.IFLA_LINK, spec.parentIndex));
      info.push(
        nest(C.IFLA_INFO_DATA, [
          u16(C.IFLA_VLAN_ID, spec.id),
          be16(C.IFLA_VLAN_PROTOCOL, spec.protocol === '802.1ad' ? C.ETH_P_8021AD : C.ETH_P_8021Q),
        ]),
      );
      break;
    case 'veth': {
      // VETH_INFO_PEER carries a whole struct ifinfomsg followed by the peer's own attributes.
      const peerAttrs: Attr[] = [str(C.IFLA_IFNAME, spec.peer.name)];
      if (spec.peer.mac) peerAttrs.push(bytes(C.IFLA_ADDRESS, spec.peer.mac));
      if (spec.peer.netnsFd !== undefined) peerAttrs.push(u32(C.IFLA_NET_NS_FD, spec.peer.netnsFd));
      const inner = Buffer.alloc(IFINFOMSG_LEN + encodedLength(peerAttrs));
      encodeIfinfomsg().copy(inner);
      encodeAttrs(peerAttrs, inner, IFINFOMSG_LEN);
      info.push(nest(C.IFLA_INFO_DATA, [bytes(C.VETH_INFO_PEER, inner)]));
      break;
    }
    case 'bridge':
    case 'dummy':
      break;
  }
  attrs.push(nest(C.IFLA_LINKINFO, info));
  return attrs;
}

/** Changes to an existing link (RTM_SETLINK). */
export interface LinkChanges {
  up?: boolean;
  promisc?: boolean;
  allmulti?: boolean;
  mtu?: number;
  mac?: Buffer;
  name?: string;
  netnsFd?: number;
  netnsPid?: number;
  masterIndex?: number;
  arpIgnore?: number;
  ipv6LinkLocal?: boolean;
}

export function encodeSetLink(index: number, c: LinkChanges): { fixed: Buffer; attrs: Attr[] } {
  let flags = 0,
    change = 0;
  if (c.up !== undefined) {
    change |= C.IFF_UP;
    if (c.up) flags |= C.IFF_UP;
  }
  if (c.promisc !== undefined) {
    change |= C.IFF_PROMISC;
    if (c.promisc) flags |= C.IFF_PROMISC;
  }
  if (c.allmulti !== undefined) {
    change |= C.IFF_ALLMULTI;
    if (c.allmulti) flags |= C.IFF_ALLMULTI;
  }
  const attrs: Attr[] = [];
  if (c.mtu !== undefined) attrs.push(u32(C.IFLA_MTU, c.mtu));
  if (c.mac !== undefined) attrs.push(bytes(C.IFLA_ADDRESS, c.mac));
  if (c.name !== undefined) attrs.push(str(C.IFLA_IFNAME, c.name));
  if (c.netnsFd !== undefined) attrs.push(u32(C.IFLA_NET_NS_FD, c.netnsFd));
  if (c.netnsPid !== undefined) attrs.push(u32(C.IFLA_NET_NS_PID, c.netnsPid));
  if (c.masterIndex !== undefined) attrs.push(u32(C.IFLA_MASTER, c.masterIndex));
  const af: Attr[] = [];
  if (c.arpIgnore !== undefined)
    af.push(nest(C.AF_INET, [nest(C.IFLA_INET_CONF, [u32(C.IPV4_DEVCONF_ARP_IGNORE, c.arpIgnore)])]));
  if (c.ipv6LinkLocal !== undefined) {
    af.push(
      nest(C.AF_INET6, [
        u8(C.IFLA_INET6_ADDR_GEN_MODE, c.ipv6LinkLocal ? C.IN6_ADDR_GEN_MODE_EUI64 : C.IN6_ADDR_GEN_MODE_NONE),
      ]),
    );
  }
  if (af.length) attrs.push(nest(C.IFLA_AF_SPEC, af));
  return { fixed: encodeIfinfomsg(index, flags, change), attrs };
}
