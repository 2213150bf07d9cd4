// struct ndmsg + NDA_* attributes <-> typed neighbour entries.
import { type Attr, bytes, parseAttrs } from './attrs';
import * as C from './constants';
import { bytesToIp, type Family, ipToBytes } from '../../types/address';
import { bytesToMac, macToBytes } from '../../types/mac';

export type NeighState =
  'incomplete' | 'reachable' | 'stale' | 'delay' | 'probe' | 'failed' | 'noarp' | 'permanent' | 'none';

export interface Neighbour {
  readonly family: Family;
  readonly index: number;
  readonly address: string;
  readonly mac?: string;
  readonly state: NeighState;
}

export const NDMSG_LEN = 12;

const STATES: ReadonlyArray<[number, NeighState]> = [
  [C.NUD_PERMANENT, 'permanent'],
  [C.NUD_NOARP, 'noarp'],
  [C.NUD_REACHABLE, 'reachable'],
  [C.NUD_STALE, 'stale'],
  [C.NUD_DELAY, 'delay'],
  [C.NUD_PROBE, 'probe'],
  [C.NUD_FAILED, 'failed'],
  [C.NUD_INCOMPLETE, 'incomplete'],
];
const stateNum = (s: NeighState): number => STATES.find(([, n]) => n === s)?.[0] ?? 0;

export function encodeNdmsg(family: Family | 0, index: number, state: NeighState = 'none'): Buffer {
  const b = Buffer.alloc(NDMSG_LEN);
  b.writeUInt8(family === 4 ? C.AF_INET : family === 6 ? C.AF_INET6 : C.AF_UNSPEC, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt16LE(stateNum(state), 8);
  return b;
}

export function encodeNeighbour(n: {
  family: Family;
  index: number;
  address: string;
  mac?: string;
  state?: NeighState;
}): { fixed: Buffer; attrs: Attr[] } {
  const attrs: Attr[] = [bytes(C.NDA_DST, ipToBytes(n.address))];
  if (n.mac) attrs.push(bytes(C.NDA_LLADDR, macToBytes(n.mac)));
  return { fixed: encodeNdmsg(n.family, n.index, n.state ?? 'permanent'), attrs };
}

export function decodeNeighbour(body: Buffer): Neighbour {
  const family: Family = body.readUInt8(0) === C.AF_INET6 ? 6 : 4;
  const index = body.readInt32LE(4);
  const st = body.readUInt16LE(8);
  const a = parseAttrs(body, NDMSG_LEN);
  const dst = a.get(C.NDA_DST);
  const ll = a.get(C.NDA_LLADDR);
  return Object.freeze({
    family,
    index,
    address: dst ? bytesToIp(dst) : '',
    ...(ll && ll.length === 6 && { mac: bytesToMac(ll) }),
    state: STATES.find(([n]) => (st & n) !== 0)?.[1] ?? 'none',
  });
}
