// A throwaway network namespace for checks that must leave nothing behind (macnet doctor): held by one fd of
// this process and by nothing else (no /run/netns name, no bind mount, no helper process). Closing the fd, or
// the process ending however it ends (an interrupt, SIGKILL), lets the kernel free the namespace and delete
// every virtual link in it; links created there directly (CreateLinkSpec.netns) never exist anywhere else.
import { addon } from './addon';
import { fromAddon } from './errors';

export class ScratchNetns {
  /** Where the namespace can be opened while it lives: Kernel.open(path), CreateLinkSpec.netns. */
  readonly path: string;
  private fd: number;

  private constructor(fd: number) {
    this.fd = fd;
    this.path = `/proc/${process.pid}/fd/${fd}`;
  }

  /** A new, empty namespace (loopback down). Needs CAP_SYS_ADMIN. */
  static open(): ScratchNetns {
    try {
      return new ScratchNetns(addon.newNetns());
    } catch (e) {
      throw fromAddon('make a throwaway network namespace', e);
    }
  }

  get closed(): boolean {
    return this.fd < 0;
  }

  /**
   * Idempotent. Handles opened on the namespace (netlink, packet sockets) keep it alive until they are closed
   * too: close those first.
   */
  close(): void {
    if (this.fd >= 0) addon.closeFd(this.fd);
    this.fd = -1;
  }
}
