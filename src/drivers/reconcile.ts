// At daemon start, before the plugin socket answers: the kernel and the LAN layer brought in line with the
// driver's records. Networks whose create was interrupted are torn down; parents macnet created are made again if
// missing (after a reboot); host access links, addresses and routes restored; links of macnet's naming without a
// record removed; every ready network attached to the LAN layer, every joined endpoint registered with it.
import type { Kernel } from '../kernel';
import { isProbeLink, type Lan } from '../lan';
import type { Logger } from '../log';
import { parseCidr } from '../types/address';
import { ENDPOINT_LINK_PATTERN } from './endpoint';
import { HOST_LINK_PATTERN, type HostAccess } from './host-access';
import { isChildLinkKind } from './kinds';
import { createParent, teardownNetwork } from './network';
import { segmentOf } from './segment';
import type { DriverState } from './state';

export interface ReconcileDeps {
  readonly k: Kernel;
  readonly state: DriverState;
  readonly lan: Lan;
  readonly hostAccess: HostAccess;
  readonly log: Logger;
}

export async function reconcile(d: ReconcileDeps): Promise<void> {
  const { k, state, log } = d;
  for (const n of await state.networks()) {
    if (n.state === 'creating') {
      log.warn('removing a network whose creation was interrupted', { network: n.config.id });
      await teardownNetwork(k, state, n.config.id, log);
    }
  }
  for (const n of await state.networks()) if (n.state === 'ready') d.lan.attach(segmentOf(n.config));
  for (const p of await state.parents()) {
    if (await k.links.find(p.name)) continue;
    try {
      await createParent(k, p, log);
      log.info('re-created a parent macnet manages', { parent: p.name, kind: p.kind });
    } catch (e) {
      log.error('could not re-create a parent macnet manages', { parent: p.name, error: e });
    }
  }
  await d.hostAccess.reconcile();
  const hostLinks = new Set((await state.hostAccesses()).map((h) => h.link));
  const known = new Set((await state.endpoints()).map((e) => e.linkName));
  for (const l of await k.links.list()) {
    if (isProbeLink(l)) {
      await k.links.deleteIfExists(l.index); // a killed daemon's probe link; made again on demand
      continue;
    }
    if (HOST_LINK_PATTERN.test(l.name) && isChildLinkKind(l.kind) && !hostLinks.has(l.name)) {
      await k.links.deleteIfExists(l.index); // a crash between removing the record and the link
      log.info('removed a host access link without a record', { link: l.name });
      continue;
    }
    if (ENDPOINT_LINK_PATTERN.test(l.name) && isChildLinkKind(l.kind) && !known.has(l.name)) {
      await k.links.deleteIfExists(l.index);
      log.info('removed an endpoint link without an endpoint', { link: l.name });
    }
  }
  for (const ep of await state.endpoints()) {
    if (!ep.sandboxKey) continue;
    const ips = [ep.ipv4, ep.ipv6].filter((a): a is string => !!a).map((a) => parseCidr(a).address);
    d.lan.endpointJoined(ips, { sandboxKey: ep.sandboxKey, ...(ep.mac && { mac: ep.mac }) });
  }
}
