// One rtnetlink socket bound to one network namespace, with its requests run one at a time.
import { addon } from '../addon';
import { fromAddon, KernelError } from '../errors';
import type { Attr } from './attrs';
import * as C from './constants';
import { encodeMessage, type Reply, splitReply } from './message';

/** Replies slower than this mean something is wrong (RTNL held for seconds); the request fails. */
const REQUEST_TIMEOUT_MS = 10_000;

export class NetlinkSocket {
  private fd: number;
  private seq = Math.floor(Math.random() * 0x7fffffff);
  /** The tail of the request queue: a socket can have only one request in flight (addon contract). */
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    fd: number,
    readonly netns: string | null,
  ) {
    this.fd = fd;
  }

  /** Opens a socket in the namespace at `nsPath` (null: the caller's own). */
  static open(nsPath: string | null): NetlinkSocket {
    let fd: number;
    try {
      fd = addon.openSocket(nsPath, C.AF_NETLINK, C.SOCK_RAW, C.NETLINK_ROUTE);
    } catch (e) {
      const code = (e as { code?: string }).code ?? 'EUNKNOWN';
      if (nsPath && (code === 'ENOENT' || code === 'EINVAL' || code === 'ESRCH')) {
        throw new KernelError(
          'NETNS_NOT_FOUND',
          `open network namespace ${nsPath}: ${code}: not a network namespace that exists`,
          code,
          undefined,
          e,
        );
      }
      throw fromAddon(`open netlink socket in ${nsPath ?? 'the current network namespace'}`, e);
    }
    try {
      // Extended ack gives the kernel's own explanation ("Invalid MTU"); capped acks keep replies small.
      addon.setIntOption(fd, C.SOL_NETLINK, C.NETLINK_EXT_ACK, 1);
      addon.setIntOption(fd, C.SOL_NETLINK, C.NETLINK_CAP_ACK, 1);
      addon.bindNetlink(fd);
    } catch (e) {
      addon.closeFd(fd);
      throw fromAddon('configure netlink socket', e);
    }
    return new NetlinkSocket(fd, nsPath);
  }

  /**
   * Sends one request and resolves with its replies. Does not throw on a kernel error: the ack is returned
   * so the caller can word the error with what it was doing. Throws only when the socket itself fails.
   */
  request(type: number, flags: number, fixed: Buffer, attrs: readonly Attr[] = []): Promise<Reply> {
    const run = async (): Promise<Reply> => {
      if (this.fd < 0) throw new KernelError('KERNEL_ERROR', 'netlink request on a closed socket', 'EBADF');
      this.seq = (this.seq + 1) & 0x7fffffff;
      const msg = encodeMessage(type, flags | C.NLM_F_REQUEST | C.NLM_F_ACK, this.seq, fixed, attrs);
      try {
        return splitReply(await addon.transact(this.fd, msg, this.seq, REQUEST_TIMEOUT_MS));
      } catch (e) {
        throw fromAddon('netlink request', e);
      }
    };
    const p = this.tail.then(run, run);
    this.tail = p.catch(() => undefined);
    return p;
  }

  /** Closes after the queued requests finish. Idempotent. */
  async close(): Promise<void> {
    await this.tail;
    if (this.fd >= 0) {
      addon.closeFd(this.fd);
      this.fd = -1;
    }
  }
}
