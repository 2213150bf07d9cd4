// A network as the LAN layer sees it (src/lan/segment.ts): attached at create and at start, detached at delete.
import type { Segment } from '../lan';
import type { NetworkConfig } from './config';

export function segmentOf(c: NetworkConfig): Segment {
  return {
    network: c.id,
    kind: c.kind,
    parent: c.parent.name,
    lanBehind: !c.parent.implicit,
    probeFrom: c.kind === 'ipvlan' ? 'parent' : c.macvlanMode === 'passthru' ? 'none' : 'probe-link',
    subnets: c.subnets.map((s) => s.subnet),
    conflict: c.conflict ?? 'refuse',
  };
}
