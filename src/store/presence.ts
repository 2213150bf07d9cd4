// This host's presence in a cluster store: the key hosts/<host id>, owned by an etcd lease that the client keeps
// alive. The other hosts take a missing key for a host that is gone (its daemon stopped or crashed, or the host
// cut off from etcd for longer than the lease's TTL) and reclaim its addresses once a grace period has passed
// and a LAN probe finds them silent (src/ipam/lost-hosts.ts).
//
// A lease lost while the daemon runs (etcd told the client it expired, or the client heard nothing for twice
// the TTL) is granted again as soon as etcd answers, and then `regained` runs: meanwhile the other hosts may
// have reclaimed this host's addresses, even handed them out (src/docker/own-addresses.ts checks them).
import * as os from 'node:os';
import type { Logger } from '../log';
import type { StoreLease } from './etcd';

/** Keys of the hosts present: hosts/<host id>. */
export const PRESENCE_PREFIX = 'hosts/';
/**
 * The lease's TTL: a host is taken for gone this long after its last keepalive reached etcd. Keepalives go every
 * third of it; a member that stops answering is found by a gRPC ping within 7 s (etcd.ts) and the keepalives move
 * to another one, well inside the TTL.
 */
export const PRESENCE_TTL_S = 15;
/** How long to wait between attempts to grant the lease again after it was lost. */
const RETRY_MS = 1000;

export const presenceKey = (host: string): string => PRESENCE_PREFIX + host;

/** What Presence needs of the store: leases and keys owned by them (EtcdStore). */
export interface Leasing {
  lease(ttlSeconds: number): Promise<StoreLease>;
  putLeased(key: string, value: string, lease: StoreLease): Promise<void>;
  get(key: string): Promise<{ readonly value: string } | undefined>;
}

export interface PresenceRecord {
  readonly since: string;
  readonly hostname: string;
  readonly pid: number;
  /** The host's DNS label (--dns-host-label): its zone in the other hosts' DNS while it is present. */
  readonly label?: string;
}

export class Presence {
  private lease: StoreLease | undefined;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  /**
   * Looks for the key every third of the TTL. The client reports a lost lease only after twice the TTL without
   * an answer, or when a keepalive stream happens to be answered "expired"; seen in the cluster test, a host back
   * on the LAN went on without its key for a minute. A key found missing is a lease lost.
   */
  private readonly verifier: NodeJS.Timeout;

  private constructor(
    private readonly store: Leasing,
    readonly host: string,
    private readonly log: Logger,
    private readonly regained: () => Promise<void>,
    private readonly ttlS: number,
    private readonly label: string | undefined,
  ) {
    this.verifier = setInterval(() => void this.verify(), (ttlS * 1000) / 3);
  }

  private async verify(): Promise<void> {
    const lease = this.lease;
    if (this.closed || !lease) return;
    const e = await this.store.get(presenceKey(this.host)).catch(() => null); // null: etcd does not answer yet
    if (e === undefined) this.lost(lease, 'the presence key is gone: the lease expired while etcd was out of reach');
  }

  /** Grants the lease and writes the key; fails (STORE_UNAVAILABLE) when etcd does not answer, like any operation. */
  static async start(
    store: Leasing,
    host: string,
    log: Logger,
    regained: () => Promise<void>,
    ttlS = PRESENCE_TTL_S,
    label?: string,
  ): Promise<Presence> {
    const p = new Presence(store, host, log, regained, ttlS, label);
    try {
      await p.acquire();
    } catch (e) {
      await p.close();
      throw e;
    }
    return p;
  }

  /** Whether the lease is held now (false between its loss and the next grant). */
  get present(): boolean {
    return this.lease !== undefined;
  }

  private async acquire(): Promise<void> {
    const lease = await this.store.lease(this.ttlS);
    const rec: PresenceRecord = {
      since: new Date().toISOString(),
      hostname: os.hostname(),
      pid: process.pid,
      ...(this.label !== undefined && { label: this.label }),
    };
    try {
      await this.store.putLeased(presenceKey(this.host), JSON.stringify(rec), lease);
    } catch (e) {
      await lease.revoke().catch(() => undefined);
      throw e;
    }
    if (this.closed) {
      await lease.revoke().catch(() => undefined);
      return;
    }
    this.lease = lease;
    lease.onLost((reason) => this.lost(lease, reason));
  }

  private lost(lease: StoreLease, reason: string): void {
    if (this.closed || this.lease !== lease) return;
    this.lease = undefined;
    void lease.revoke().catch(() => undefined); // stops the client's keepalives for it
    this.log.warn(
      "cluster presence lost: etcd let this host's lease expire; after the grace period the other hosts reclaim " +
        'the addresses of its containers that do not answer on the LAN',
      { host: this.host, reason },
    );
    this.retry();
  }

  private retry(): void {
    this.timer = setTimeout(() => void this.again(), RETRY_MS);
  }

  private async again(): Promise<void> {
    if (this.closed) return;
    try {
      await this.acquire();
    } catch (e) {
      this.log.debug('cluster presence: etcd does not answer yet', { error: e });
      this.retry();
      return;
    }
    this.log.info('cluster presence regained', { host: this.host });
    await this.afterRegain();
  }

  /**
   * Runs `regained` until it succeeds, once a RETRY_MS, while the presence is held: etcd answers fitfully for a
   * moment after a host comes back (seen in CI: the check failed half-way, and a free address was never rewritten).
   */
  private async afterRegain(): Promise<void> {
    try {
      await this.regained();
    } catch (e) {
      if (this.closed || !this.lease) return;
      this.log.warn("checking this host's addresses after regaining its presence failed: trying again", { error: e });
      this.timer = setTimeout(() => void this.afterRegain(), RETRY_MS);
    }
  }

  /** Ends the lease (the key goes with it): the other hosts see this host gone at once. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.verifier);
    const lease = this.lease;
    this.lease = undefined;
    await lease?.revoke().catch(() => undefined);
  }
}
