// Endpoint links deleted after DeleteEndpoint answered. Deleting a macvlan or ipvlan link waits in the kernel for
// an RCU grace period (10 to 30 ms here, the largest part of a container's network teardown), and nothing Docker
// does next depends on the link being gone: its name is unique and dockerd moved it out of the container already.
// So the record goes at once and the link right after the answer, on a netlink socket of its own so that the next
// Join does not queue behind it. What must not overlap a deletion waits for it (`settled`): network create and
// delete, a Join on a network that takes the whole parent, shutdown. A daemon killed in between leaves the link to
// the next start's reconcile.
import type { Kernel } from '../kernel';
import type { Logger } from '../log';

export class LinkReaper {
  private readonly pending = new Set<Promise<void>>();
  private sibling: Kernel | undefined;

  constructor(
    private readonly k: Kernel,
    private readonly log: Logger,
  ) {}

  /** Deletes `link` (a name) in the background; a failure is logged and left to the next start. */
  delete(link: string): void {
    this.sibling ??= this.k.sibling();
    const p = this.sibling.links.deleteIfExists(link).then(
      () => undefined,
      (e: unknown) =>
        this.log.error('could not delete an endpoint link; it is removed at the next start', { link, error: e }),
    );
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /** Resolves once every deletion started so far has ended. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  async close(): Promise<void> {
    await this.settled();
    await this.sibling?.close();
    this.sibling = undefined;
  }
}
