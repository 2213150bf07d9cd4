// IPv4 and IPv6 addresses on links.
import { fail } from '../errors';
import { type Family, parseCidr } from '../types/address';
import { kernelError } from './errors';
import { describeLink, type LinkRef, type Links } from './links';
import { type Address, decodeAddress, encodeAddress, encodeIfaddrmsg } from './nl/addr-codec';
import * as C from './nl/constants';
import type { NetlinkSocket } from './nl/socket';

export interface AddAddressOptions {
  /** IPv6: skip duplicate address detection so the address is usable at once (containers, tests). */
  nodad?: boolean;
  /** Do not add the prefix route the kernel would add for the subnet. */
  noprefixroute?: boolean;
}

function cidrOf(option: string, cidr: string) {
  try {
    const c = parseCidr(cidr);
    if (!cidr.includes('/')) throw new TypeError('missing prefix');
    return c;
  } catch {
    throw fail('INVALID_ARGUMENT', {
      what: option,
      value: cidr,
      valid: 'write address/prefix, such as 198.18.15.5/24 or 2001:db8::5/64',
      details: { option, value: cidr },
    });
  }
}

export class Addresses {
  constructor(
    private readonly sock: NetlinkSocket,
    private readonly links: Links,
  ) {}

  /** All addresses, or those of one link and/or family. */
  async list(filter: { link?: LinkRef; family?: Family } = {}): Promise<Address[]> {
    const index =
      filter.link === undefined
        ? undefined
        : typeof filter.link === 'number'
          ? filter.link
          : (await this.links.get(filter.link)).index;
    const r = await this.sock.request(C.RTM_GETADDR, C.NLM_F_DUMP, encodeIfaddrmsg(filter.family ?? 0, 0, 0));
    if (r.ack?.errno) throw kernelError('list addresses', r.ack.errno, r.ack.extack);
    return r.messages
      .filter((m) => m.type === C.RTM_NEWADDR)
      .map((m) => decodeAddress(m.body))
      .filter(
        (a) =>
          (index === undefined || a.index === index) && (filter.family === undefined || a.family === filter.family),
      );
  }

  /** Adds "198.18.15.5/24" or "2001:db8::5/64" to a link. EEXIST if the link already has it. */
  async add(link: LinkRef, cidr: string, opts: AddAddressOptions = {}): Promise<void> {
    const c = cidrOf('address', cidr);
    const op = `add address ${cidr} to link ${describeLink(link)}`;
    const index = typeof link === 'number' ? link : (await this.links.get(link, op)).index;
    const { fixed, attrs } = encodeAddress({ ...c, index, ...opts });
    const r = await this.sock.request(C.RTM_NEWADDR, C.NLM_F_CREATE | C.NLM_F_EXCL, fixed, attrs);
    if (r.ack?.errno) throw kernelError(op, r.ack.errno, r.ack.extack);
  }

  async delete(link: LinkRef, cidr: string): Promise<void> {
    const c = cidrOf('address', cidr);
    const op = `delete address ${cidr} from link ${describeLink(link)}`;
    const index = typeof link === 'number' ? link : (await this.links.get(link, op)).index;
    const { fixed, attrs } = encodeAddress({ ...c, index });
    const r = await this.sock.request(C.RTM_DELADDR, 0, fixed, attrs);
    if (r.ack?.errno) throw kernelError(op, r.ack.errno, r.ack.extack);
  }
}
