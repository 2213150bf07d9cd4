// Links: list, get, create (macvlan, macvtap, ipvlan, vlan, veth, bridge, dummy), change, move, delete.
import { fail } from '../errors';
import { macToBytes } from '../types/mac';
import { featureMissing, kernelError } from './errors';
import { describeNetns, type NetnsRef, netnsPath, openNetnsFd } from './netns';
import * as C from './nl/constants';
import { str } from './nl/attrs';
import {
  decodeLink,
  encodeCreateAttrs,
  encodeIfinfomsg,
  encodeSetLink,
  type IpvlanFlag,
  type IpvlanMode,
  type Link,
  type LinkKindSpec,
  type MacvlanMode,
  IPVLAN_FLAGS,
  IPVLAN_MODES,
  MACVLAN_MODES,
} from './nl/link-codec';
import { NetlinkSocket } from './nl/socket';
import { checkIfname, checkMtu, checkVlanId } from './validate';
import * as fs from 'node:fs';

/** A link named by its name or its index. */
export type LinkRef = string | number;

export type CreateLinkSpec = {
  name: string;
  mtu?: number;
  mac?: string;
  up?: boolean;
  /**
   * Create the link directly in this namespace (a parent stays in ours): one request, so that no moment exists
   * in which the link is in our namespace (an interrupted `macnet doctor` must leave nothing in the host's).
   */
  netns?: NetnsRef;
} & (
  | { kind: 'macvlan' | 'macvtap'; parent: LinkRef; mode?: MacvlanMode }
  | { kind: 'ipvlan'; parent: LinkRef; mode?: IpvlanMode; flag?: IpvlanFlag }
  | { kind: 'vlan'; parent: LinkRef; id: number; protocol?: '802.1Q' | '802.1ad' }
  | { kind: 'veth'; peer: { name: string; mac?: string; netns?: NetnsRef } }
  | { kind: 'bridge' }
  | { kind: 'dummy' }
);

export interface LinkChangeSpec {
  up?: boolean;
  promisc?: boolean;
  /** Receive all multicast (IPv6 DAD probes of others go to solicited-node groups we have not joined). */
  allmulti?: boolean;
  mtu?: number;
  mac?: string;
  name?: string;
  /** Enslave to a bridge (its name or index); 0 releases. */
  master?: LinkRef;
  /**
   * net.ipv4.conf.<link>.arp_ignore (0 to 8), set over netlink so that it works in any namespace. 1: answer ARP
   * only for addresses of this link, e.g. so that a helper link in the host namespace does not answer for the
   * host's own addresses with a second MAC.
   */
  arpIgnore?: number;
  /** false: the kernel generates no IPv6 link-local address for the link (addr_gen_mode none); set it while down. */
  ipv6LinkLocal?: boolean;
}

export const describeLink = (ref: LinkRef): string => (typeof ref === 'number' ? `index ${ref}` : JSON.stringify(ref));

function checkEnum<T extends string>(option: string, value: string, table: Readonly<Record<T, number>>): T {
  if (!(value in table)) {
    throw fail('INVALID_ARGUMENT', {
      what: option,
      value,
      valid: `use one of ${Object.keys(table).join(', ')}`,
      details: { option, value },
    });
  }
  return value as T;
}

export class Links {
  constructor(private readonly sock: NetlinkSocket) {}

  async list(): Promise<Link[]> {
    const r = await this.sock.request(C.RTM_GETLINK, C.NLM_F_DUMP, encodeIfinfomsg());
    if (r.ack?.errno) throw kernelError('list links', r.ack.errno, r.ack.extack);
    return r.messages.filter((m) => m.type === C.RTM_NEWLINK).map((m) => decodeLink(m.body));
  }

  /** The link, or undefined when there is none by that name or index (ENODEV). */
  async find(ref: LinkRef): Promise<Link | undefined> {
    const r =
      typeof ref === 'number'
        ? await this.sock.request(C.RTM_GETLINK, 0, encodeIfinfomsg(ref))
        : await this.sock.request(C.RTM_GETLINK, 0, encodeIfinfomsg(), [str(C.IFLA_IFNAME, ref)]);
    if (r.ack?.errno === 19 /* ENODEV */) return undefined;
    if (r.ack?.errno) throw kernelError(`get link ${describeLink(ref)}`, r.ack.errno, r.ack.extack);
    const m = r.messages.find((x) => x.type === C.RTM_NEWLINK);
    return m ? decodeLink(m.body) : undefined;
  }

  /** The link; a missing one is a KERNEL_ERROR with errno ENODEV, as the kernel reports it. */
  async get(ref: LinkRef, operation = `get link ${describeLink(ref)}`): Promise<Link> {
    if (typeof ref === 'string') checkIfname('link name', ref);
    const l = await this.find(ref);
    if (!l) throw kernelError(operation, 19);
    return l;
  }

  private async index(ref: LinkRef, operation: string): Promise<number> {
    return typeof ref === 'number' ? ref : (await this.get(ref, operation)).index;
  }

  async create(spec: CreateLinkSpec): Promise<Link> {
    checkIfname('link name', spec.name);
    if (spec.mtu !== undefined) checkMtu('mtu', spec.mtu);
    const mac = spec.mac === undefined ? undefined : macToBytes(spec.mac);
    const op =
      'parent' in spec
        ? `create ${spec.kind} ${JSON.stringify(spec.name)} on parent ${describeLink(spec.parent)}`
        : spec.kind === 'veth'
          ? `create veth ${JSON.stringify(spec.name)} with peer ${JSON.stringify(spec.peer.name)}`
          : `create ${spec.kind} ${JSON.stringify(spec.name)}`;
    let kind: LinkKindSpec;
    let peerFd: number | undefined;
    let nsFd: number | undefined;
    switch (spec.kind) {
      case 'macvlan':
      case 'macvtap':
        kind = {
          kind: spec.kind,
          mode: checkEnum('macvlan mode', spec.mode ?? 'bridge', MACVLAN_MODES),
          parentIndex: await this.index(spec.parent, op),
        };
        break;
      case 'ipvlan':
        kind = {
          kind: 'ipvlan',
          mode: checkEnum('ipvlan mode', spec.mode ?? 'l2', IPVLAN_MODES),
          flag: checkEnum('ipvlan flag', spec.flag ?? 'bridge', IPVLAN_FLAGS),
          parentIndex: await this.index(spec.parent, op),
        };
        break;
      case 'vlan':
        checkVlanId('vlan id', spec.id);
        kind = {
          kind: 'vlan',
          id: spec.id,
          parentIndex: await this.index(spec.parent, op),
          ...(spec.protocol && { protocol: spec.protocol }),
        };
        break;
      case 'veth':
        checkIfname('veth peer name', spec.peer.name);
        if (spec.peer.netns !== undefined) peerFd = openNetnsFd(spec.peer.netns);
        kind = {
          kind: 'veth',
          peer: {
            name: spec.peer.name,
            ...(spec.peer.mac && { mac: macToBytes(spec.peer.mac) }),
            ...(peerFd !== undefined && { netnsFd: peerFd }),
          },
        };
        break;
      default:
        kind = { kind: spec.kind };
    }
    try {
      if (spec.netns !== undefined) nsFd = openNetnsFd(spec.netns);
      const attrs = encodeCreateAttrs({
        ...kind,
        name: spec.name,
        ...(nsFd !== undefined && { netnsFd: nsFd }),
        ...(spec.mtu !== undefined && { mtu: spec.mtu }),
        ...(mac && { mac }),
      });
      const fixed = spec.up ? encodeIfinfomsg(0, C.IFF_UP, C.IFF_UP) : encodeIfinfomsg();
      const r = await this.sock.request(C.RTM_NEWLINK, C.NLM_F_CREATE | C.NLM_F_EXCL, fixed, attrs);
      if (r.ack?.errno) {
        // The kernel answers an unknown IFLA_INFO_KIND with EOPNOTSUPP "Unknown device type".
        if (r.ack.errno === 95 && (!r.ack.extack || /unknown device type/i.test(r.ack.extack))) {
          throw featureMissing(op, spec.kind, r.ack.errno, r.ack.extack);
        }
        throw kernelError(op, r.ack.errno, r.ack.extack);
      }
    } finally {
      if (peerFd !== undefined) fs.closeSync(peerFd);
      if (nsFd !== undefined) fs.closeSync(nsFd);
    }
    if (spec.netns === undefined) return this.get(spec.name, `${op} (reading it back)`);
    // Read back where it is: a socket of that namespace.
    const there = NetlinkSocket.open(netnsPath(spec.netns));
    try {
      return await new Links(there).get(spec.name, `${op} in ${describeNetns(spec.netns)} (reading it back)`);
    } finally {
      await there.close();
    }
  }

  async set(ref: LinkRef, changes: LinkChangeSpec): Promise<void> {
    const parts = Object.entries(changes)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    const op = `set link ${describeLink(ref)} ${parts}`;
    if (changes.name !== undefined) checkIfname('new link name', changes.name);
    if (changes.mtu !== undefined) checkMtu('mtu', changes.mtu);
    if (
      changes.arpIgnore !== undefined &&
      !(Number.isInteger(changes.arpIgnore) && changes.arpIgnore >= 0 && changes.arpIgnore <= 8)
    ) {
      throw fail('INVALID_ARGUMENT', {
        what: 'arp_ignore',
        value: changes.arpIgnore,
        valid: 'use an integer from 0 to 8',
        details: { option: 'arpIgnore', value: changes.arpIgnore },
      });
    }
    const idx = await this.index(ref, op);
    const master =
      changes.master === undefined ? undefined : changes.master === 0 ? 0 : await this.index(changes.master, op);
    const { fixed, attrs } = encodeSetLink(idx, {
      ...changes,
      mac: changes.mac === undefined ? undefined : macToBytes(changes.mac),
      masterIndex: master,
    });
    const r = await this.sock.request(C.RTM_SETLINK, 0, fixed, attrs);
    if (r.ack?.errno) throw kernelError(op, r.ack.errno, r.ack.extack);
  }

  setUp(ref: LinkRef): Promise<void> {
    return this.set(ref, { up: true });
  }

  setDown(ref: LinkRef): Promise<void> {
    return this.set(ref, { up: false });
  }

  /**
   * Moves a link into another namespace, optionally renaming it in the same request (the kernel applies the
   * new name in the target, so a clash with a link of the old name there does not matter).
   */
  async moveTo(ref: LinkRef, netns: NetnsRef, newName?: string): Promise<void> {
    const op =
      `move link ${describeLink(ref)} to ${describeNetns(netns)}` + (newName ? ` as ${JSON.stringify(newName)}` : '');
    if (newName !== undefined) checkIfname('new link name', newName);
    const idx = await this.index(ref, op);
    const byPid = typeof netns === 'object' && 'pid' in netns;
    const fd = byPid ? undefined : openNetnsFd(netns);
    try {
      const { fixed, attrs } = encodeSetLink(idx, {
        ...(fd !== undefined ? { netnsFd: fd } : { netnsPid: (netns as { pid: number }).pid }),
        ...(newName !== undefined && { name: newName }),
      });
      const r = await this.sock.request(C.RTM_SETLINK, 0, fixed, attrs);
      if (r.ack?.errno) throw kernelError(op, r.ack.errno, r.ack.extack);
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }

  async delete(ref: LinkRef): Promise<void> {
    const op = `delete link ${describeLink(ref)}`;
    const r =
      typeof ref === 'number'
        ? await this.sock.request(C.RTM_DELLINK, 0, encodeIfinfomsg(ref))
        : await this.sock.request(C.RTM_DELLINK, 0, encodeIfinfomsg(), [str(C.IFLA_IFNAME, ref)]);
    if (r.ack?.errno) throw kernelError(op, r.ack.errno, r.ack.extack);
  }

  /** Idempotent delete: a link that is already gone is success. Returns whether it existed. */
  async deleteIfExists(ref: LinkRef): Promise<boolean> {
    try {
      await this.delete(ref);
      return true;
    } catch (e) {
      if ((e as { errno?: string }).errno === 'ENODEV') return false;
      throw e;
    }
  }
}
