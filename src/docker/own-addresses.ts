// A host of a cluster store coming back: its daemon starting again, or its lease regained after etcd lost it
// (src/store/presence.ts). While it was gone, the other hosts may have reclaimed the addresses of its containers
// that did not answer on the LAN (src/ipam/lost-hosts.ts), and handed some of them out again. Before it serves
// (and at once when its lease is regained), every address its containers hold is checked against the store:
// - the record is this host's: nothing to do;
// - the record is gone: it is written again, for this host (a create: whoever is first has it);
// - another machine holds it now: this host's container is taken off the LAN (its interface set down) and the
//   conflict logged as an error naming the container's network and the other holder, so that the address is
//   never answered for twice; `docker network disconnect` and `connect` give the container a new address.
import type { NetworkDriver } from '../drivers/driver';
import type { Ipam } from '../ipam/ipam';
import type { Logger } from '../log';

export interface OwnAddressesDeps {
  readonly driver: Pick<NetworkDriver, 'ownAddresses' | 'isolate'>;
  readonly ipam: Pick<Ipam, 'holdOwn'>;
  readonly log: Logger;
}

export interface OwnAddressesResult {
  readonly held: number;
  readonly restored: string[];
  readonly isolated: string[];
}

export async function checkOwnAddresses(d: OwnAddressesDeps): Promise<OwnAddressesResult> {
  let held = 0;
  const restored: string[] = [];
  const isolated: string[] = [];
  for (const a of await d.driver.ownAddresses()) {
    const r = await d.ipam.holdOwn(a.subnet, a.address);
    if (!r) continue;
    if (r.state === 'held') held++;
    else if (r.state === 'restored') {
      restored.push(a.address);
      d.log.warn("an address of this host's container was reclaimed while the host was gone; it is this host's again", {
        address: a.address,
        network: a.networkId,
        endpoint: a.endpointId,
      });
    } else {
      const ifname = await d.driver.isolate(a.networkId, a.endpointId, a.address);
      isolated.push(a.address);
      d.log.error(
        "an address of this host's container was reclaimed while the host was gone and is another machine's now: " +
          'the container is taken off the LAN (its interface set down); `docker network disconnect` and ' +
          '`docker network connect` give it a new address',
        {
          code: 'ADDRESS_CONFLICT',
          address: a.address,
          network: a.networkId,
          endpoint: a.endpointId,
          holder: r.holder.owner,
          holderHost: r.holder.host,
          ...(ifname !== undefined && { interface: ifname }),
        },
      );
    }
  }
  return { held, restored, isolated };
}
