// A daemon on a cluster store (docs/cluster.md): its presence among the hosts (src/store/presence.ts), its own
// containers' addresses checked before it serves and whenever its presence is regained (src/docker/own-addresses.ts),
// and the reclaim of the addresses of hosts that are gone (src/ipam/lost-hosts.ts). Nothing on SQLite.
import type { NetworkDriver } from '../drivers/driver';
import { checkOwnAddresses } from '../docker/own-addresses';
import type { Ipam } from '../ipam/ipam';
import { LostHosts } from '../ipam/lost-hosts';
import type { Lan } from '../lan';
import type { Logger } from '../log';
import { Presence } from '../store/presence';
import type { OpenedStore } from './store-open';

export interface ClusterDeps {
  readonly ipam: Ipam;
  readonly driver: NetworkDriver;
  readonly lan: Lan;
  readonly log: Logger;
  /** --lost-host-grace. */
  readonly graceMs: number;
  /** --dns-host-label, in the presence record: the other hosts' DNS answer this host's zone while it is present. */
  readonly label: string;
}

/** Joins the cluster before the daemon serves; returns what leaves it (at the daemon's stop). */
export async function joinCluster(opened: OpenedStore, d: ClusterDeps): Promise<() => Promise<void>> {
  const { host, leasing } = opened;
  if (host === undefined || leasing === undefined) return async () => undefined;
  const check = async (why: string) => {
    const r = await checkOwnAddresses(d);
    d.log.info("this host's addresses checked against the cluster", {
      why,
      held: r.held,
      restored: r.restored.length,
      isolated: r.isolated.length,
    });
  };
  // Present first: from now on the other hosts no longer count this host as gone, so nothing they reclaim
  // after the check below can be one of its addresses (a running container answers their probe anyway).
  const presence = await Presence.start(leasing, host, d.log, () => check('presence regained'), undefined, d.label);
  try {
    await check('start');
  } catch (e) {
    await presence.close();
    throw e;
  }
  const lost = new LostHosts(opened.shared, d.lan, d.ipam, { self: host, graceMs: d.graceMs, log: d.log });
  lost.start();
  return async () => {
    await lost.close();
    await presence.close();
  };
}
