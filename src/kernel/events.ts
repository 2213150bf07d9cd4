// Link and address change notifications (rtnetlink multicast groups), for reconciliation.
import { EventEmitter } from 'node:events';
import { addon } from './addon';
import { fromAddon } from './errors';
import { type Address, decodeAddress } from './nl/addr-codec';
import * as C from './nl/constants';
import { decodeLink, type Link } from './nl/link-codec';
import { decodeMessages } from './nl/message';

export type KernelEvent =
  | { readonly type: 'link'; readonly action: 'new' | 'del'; readonly link: Link }
  | { readonly type: 'address'; readonly action: 'new' | 'del'; readonly address: Address };

export type EventGroup = 'link' | 'ipv4-address' | 'ipv6-address';

const GROUPS: Readonly<Record<EventGroup, number>> = {
  link: C.RTNLGRP_LINK,
  'ipv4-address': C.RTNLGRP_IPV4_IFADDR,
  'ipv6-address': C.RTNLGRP_IPV6_IFADDR,
};

/**
 * Emits 'event' (KernelEvent) and 'overrun' (the kernel dropped notifications because we read too slowly:
 * ENOBUFS; a listener must re-read the state it mirrors). Keeps the process alive until closed.
 */
export class EventStream extends EventEmitter {
  private fd: number;
  private handle: object | undefined;

  constructor(nsPath: string | null, groups: readonly EventGroup[] = ['link', 'ipv4-address', 'ipv6-address']) {
    super();
    let fd = -1;
    try {
      fd = addon.openSocket(nsPath, C.AF_NETLINK, C.SOCK_RAW, C.NETLINK_ROUTE);
      // Bind first: bind() with nl_groups 0 clears the first 32 group memberships set before it.
      addon.bindNetlink(fd);
      for (const g of groups) addon.setIntOption(fd, C.SOL_NETLINK, C.NETLINK_ADD_MEMBERSHIP, GROUPS[g]);
    } catch (e) {
      if (fd >= 0) addon.closeFd(fd);
      throw fromAddon(`subscribe to ${groups.join(', ')} events in ${nsPath ?? 'the current network namespace'}`, e);
    }
    this.fd = fd;
    this.handle = addon.watch(fd, () => this.drain());
  }

  private drain(): void {
    for (;;) {
      let got;
      try {
        got = addon.recv(this.fd);
      } catch (e) {
        if ((e as { code?: string }).code === 'ENOBUFS') {
          this.emit('overrun');
          continue;
        }
        if (this.listenerCount('error') > 0) this.emit('error', fromAddon('read kernel events', e));
        return;
      }
      if (!got) return;
      for (const m of decodeMessages(got.data)) {
        const action = m.type === C.RTM_NEWLINK || m.type === C.RTM_NEWADDR ? 'new' : 'del';
        if (m.type === C.RTM_NEWLINK || m.type === C.RTM_DELLINK)
          this.emit('event', { type: 'link', action, link: decodeLink(m.body) });
        else if (m.type === C.RTM_NEWADDR || m.type === C.RTM_DELADDR)
          this.emit('event', { type: 'address', action, address: decodeAddress(m.body) });
      }
    }
  }

  /** Resolves with the first event matching `pred`, or rejects after `timeoutMs`. */
  waitFor(pred: (e: KernelEvent) => boolean, timeoutMs = 5000): Promise<KernelEvent> {
    return new Promise((resolve, reject) => {
      const onEvent = (e: KernelEvent) => {
        if (!pred(e)) return;
        cleanup();
        resolve(e);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no matching kernel event within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.off('event', onEvent);
      };
      this.on('event', onEvent);
    });
  }

  /** Idempotent. */
  close(): void {
    if (this.handle) addon.unwatch(this.handle);
    this.handle = undefined;
    if (this.fd >= 0) addon.closeFd(this.fd);
    this.fd = -1;
  }
}
