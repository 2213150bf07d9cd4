// A network as the LAN layer sees it (src/lan/segment.ts): attached at create and at start, detached at delete.
import type { Segment } from '../lan';
import { kindOf } from './kinds';
import type { NetworkConfig } from './network-config';

export function segmentOf(c: NetworkConfig): Segment {
  return {
    network: c.id,
    kind: c.kind,
    parent: c.parent.name,
    lanBehind: !c.parent.implicit,
    probeFrom: kindOf(c).lanVantage(c),
    subnets: c.subnets.map((s) => s.subnet),
    conflict: c.conflict ?? 'refuse',
  };
}
