// The neighbour (ARP / NDP) table.
import { MacnetError } from '../errors';
import { type Family, ipFamily } from '../types/address';
import { kernelError } from './errors';
import { describeLink, type LinkRef, type Links } from './links';
import * as C from './nl/constants';
import { decodeNeighbour, encodeNdmsg, encodeNeighbour, type Neighbour, type NeighState } from './nl/neigh-codec';
import type { NetlinkSocket } from './nl/socket';

export class Neighbours {
  constructor(
    private readonly sock: NetlinkSocket,
    private readonly links: Links,
  ) {}

  async list(filter: { link?: LinkRef; family?: Family } = {}): Promise<Neighbour[]> {
    const index =
      filter.link === undefined
        ? undefined
        : typeof filter.link === 'number'
          ? filter.link
          : (await this.links.get(filter.link)).index;
    const r = await this.sock.request(C.RTM_GETNEIGH, C.NLM_F_DUMP, encodeNdmsg(filter.family ?? 0, 0));
    if (r.ack?.errno) throw kernelError('list neighbours', r.ack.errno, r.ack.extack);
    return r.messages
      .filter((m) => m.type === C.RTM_NEWNEIGH)
      .map((m) => decodeNeighbour(m.body))
      .filter(
        (n) =>
          (n.family === 4 || n.family === 6) &&
          (index === undefined || n.index === index) &&
          (filter.family === undefined || n.family === filter.family),
      );
  }

  private async resolve(link: LinkRef, address: string, op: string): Promise<{ index: number; family: Family }> {
    const family = ipFamily(address);
    if (!family)
      throw new MacnetError('INVALID_ARGUMENT', `neighbour address ${JSON.stringify(address)} is not an IP address`, {
        option: 'address',
        value: address,
      });
    const index = typeof link === 'number' ? link : (await this.links.get(link, op)).index;
    return { index, family };
  }

  /** Adds or replaces an entry (default state permanent). */
  async set(link: LinkRef, address: string, mac: string, state: NeighState = 'permanent'): Promise<void> {
    const op = `set neighbour ${address} lladdr ${mac} on link ${describeLink(link)}`;
    const { index, family } = await this.resolve(link, address, op);
    const { fixed, attrs } = encodeNeighbour({ family, index, address, mac, state });
    const r = await this.sock.request(C.RTM_NEWNEIGH, C.NLM_F_CREATE | C.NLM_F_REPLACE, fixed, attrs);
    if (r.ack?.errno) throw kernelError(op, r.ack.errno, r.ack.extack);
  }

  async delete(link: LinkRef, address: string): Promise<void> {
    const op = `delete neighbour ${address} on link ${describeLink(link)}`;
    const { index, family } = await this.resolve(link, address, op);
    const { fixed, attrs } = encodeNeighbour({ family, index, address });
    const r = await this.sock.request(C.RTM_DELNEIGH, 0, fixed, attrs);
    if (r.ack?.errno) throw kernelError(op, r.ack.errno, r.ack.extack);
  }
}
