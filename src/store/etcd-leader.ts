// Key-value calls go to the leader when it is known and answers this host (figure cluster, issue 19). Sent to a
// follower, every write (a proposal) and every linearizable read (a ReadIndex) is forwarded to the leader and its
// answer comes back the same way: a hop and the follower's CPU per call. On the three-member bench, all on one
// machine, the reservations' p99 was lower in 3 of 4 pairs alternating with calls spread over the members
// (docs/cluster.md, "Speed"). etcd's own Go client does not do this; a client that does must never be stuck on a
// member it cannot reach, so:
// - the leader is adopted only after it answered this host directly (a member cut off from this host is not);
// - any failed call through it drops it at once: the call's retry, and every call after, go to all the members
//   (the pool, with its breaker per member), and the leader is looked for again a second later;
// - every LEADER_RECHECK_MS the pool is asked who leads, so that a new leader is followed after an election
//   (meanwhile the old one, now a follower, forwards: slower, never wrong).
// Leases and watches stay on the pool: they are streams, and any member serves them.
import type { Etcd3 } from 'etcd3';
import { MEMBER_BACKOFF_MS } from './etcd-client';

export const LEADER_RECHECK_MS = 5000;

/** The same member, whatever the form (a trailing slash, the scheme's case). */
const sameUrl = (a: string, b: string) => a.replace(/\/+$/, '').toLowerCase() === b.replace(/\/+$/, '').toLowerCase();

export class LeaderRoute {
  private leader: { readonly client: Etcd3; readonly id: string } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private looking: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly pool: Etcd3,
    private readonly endpoints: readonly string[],
    /** A client of one endpoint, with the pool's options. */
    private readonly connect: (endpoint: string) => Etcd3,
    /** The most one look may take. */
    private readonly timeoutMs: number,
  ) {}

  /** The client for a key-value call now: the leader's when known, else the pool. */
  kv(): Etcd3 {
    return this.leader?.client ?? this.pool;
  }

  /** A call through `client` failed as a member fails: back to the pool at once; the leader is looked for later. */
  failed(client: Etcd3): void {
    if (!this.leader || this.leader.client !== client) return;
    this.drop();
    this.schedule(MEMBER_BACKOFF_MS);
  }

  /**
   * Looks for the leader now, in the background (the calls meanwhile go to the pool: a look that waits out its
   * deadline on a member that does not answer must not hold up the store's open), and every LEADER_RECHECK_MS.
   * One endpoint needs no route: it is the pool.
   */
  start(): void {
    if (this.endpoints.length < 2) return;
    void this.look().finally(() => this.schedule(LEADER_RECHECK_MS));
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.drop();
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.look().finally(() => this.schedule(LEADER_RECHECK_MS));
    }, ms);
    this.timer.unref();
  }

  private drop(): void {
    const old = this.leader;
    this.leader = undefined;
    old?.client.close();
  }

  /** One look at a time; failures leave the route as it is (the pool, or a leader that still answers). */
  private look(): Promise<void> {
    this.looking ??= this.find()
      .catch(() => undefined)
      .finally(() => (this.looking = undefined));
    return this.looking;
  }

  private async find(): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    const status = await this.pool.maintenance.status({ deadline });
    if (this.closed || (this.leader && this.leader.id === status.leader)) return;
    const { members } = await this.pool.cluster.memberList({}, { deadline });
    const member = members.find((m) => m.ID === status.leader);
    const endpoint = member && this.endpoints.find((e) => member.clientURLs.some((u) => sameUrl(u, e)));
    if (!endpoint) return this.drop(); // not one of ours (another address, a name): the pool serves
    const client = this.connect(endpoint);
    // Adopted only when it answers this host, and says it leads.
    const direct = await client.maintenance.status({ deadline }).catch(() => undefined);
    if (this.closed || !direct || direct.leader !== status.leader || direct.header.member_id !== status.leader) {
      client.close();
      return;
    }
    this.drop();
    this.leader = { client, id: status.leader };
  }
}
