// Keeps DHCP leases alive on behalf of containers: renews at T1, rebinds at T2, gives up at expiry (RFC 2131
// 4.4.5). Leases are plain JSON (the daemon persists them), so after a restart the daemon adds them back and
// the schedule continues from `obtainedAt`; a lease already past T1 is renewed at once, one past expiry
// expires at once. The keeper opens no socket of its own choosing: `socketFor` (the daemon's) opens one per
// attempt, in the container's namespace, and the keeper closes it when the attempt ends.
import { EventEmitter } from 'node:events';
import { isMacnetError } from '../errors';
import type { FrameSocket } from '../types/socket';
import { rebind, type RenewOptions, renew } from './client';
import { type DhcpLease, INFINITE } from './lease';

/** Time as the keeper sees it; tests pass a fake to check the schedule without waiting. */
export interface KeeperClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface LeaseKeeperOptions {
  socketFor(key: string, lease: DhcpLease): FrameSocket | Promise<FrameSocket>;
  /** Bound of one renew or rebind exchange (retransmissions included); default 5000 ms. */
  requestTimeoutMs?: number;
  /** Names the lease's link in error messages; default `lease <key>`. */
  where?(key: string): string;
  clock?: KeeperClock;
  /** The exchanges; replaced only by unit tests of the schedule. */
  client?: {
    renew(sock: FrameSocket, lease: DhcpLease, opts: RenewOptions): Promise<DhcpLease>;
    rebind(sock: FrameSocket, lease: DhcpLease, opts: RenewOptions): Promise<DhcpLease>;
  };
}

export type ExpiryReason = 'expired' | 'nak';

/**
 * Events (key first):
 * - 'renewed' (key, lease, previous): extended, same address; persist `lease`.
 * - 'changed' (key, lease, previous): extended with a different address (possible after rebinding); instead
 *   of 'renewed'. The container must be reconfigured.
 * - 'expired' (key, lease, reason): 'expired' at the end of the lease, 'nak' when the server refused to
 *   extend it. The keeper has dropped the lease; the container must stop using the address.
 * - 'error' (key, error): one attempt failed (no answer, socket could not be opened); the keeper retries.
 *   Emitted only when someone listens, so that a missing listener cannot crash the daemon from a timer.
 */
export class LeaseKeeper extends EventEmitter {
  private readonly entries = new Map<string, Entry>();
  private readonly clock: KeeperClock;
  private stopped = false;

  constructor(private readonly opts: LeaseKeeperOptions) {
    super();
    this.clock = opts.clock ?? realClock;
  }

  /** Starts keeping `lease` under `key` (replacing what was kept under it): a new lease, or one re-adopted. */
  add(key: string, lease: DhcpLease): void {
    if (this.stopped) throw new Error('LeaseKeeper.add after stop()');
    this.cancel(key);
    const e: Entry = { lease };
    this.entries.set(key, e);
    this.schedule(key, e, this.clock.now());
  }

  /** Stops keeping the lease (no message is sent; release() it if the address is given up). */
  remove(key: string): DhcpLease | undefined {
    const lease = this.entries.get(key)?.lease;
    this.cancel(key);
    return lease;
  }

  get(key: string): DhcpLease | undefined {
    return this.entries.get(key)?.lease;
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  /** Clears every timer and aborts attempts in flight, closing their sockets. Idempotent. */
  stop(): void {
    this.stopped = true;
    for (const key of [...this.entries.keys()]) this.cancel(key);
  }

  private cancel(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    if (e.timer !== undefined) this.clock.clearTimeout(e.timer);
    e.timer = undefined;
    e.abort?.abort(new Error('lease no longer kept'));
    e.sock?.close();
    e.sock = undefined;
  }

  private schedule(key: string, e: Entry, now: number): void {
    const { lease } = e;
    if (lease.leaseSeconds === INFINITE) return; // RFC 2132 9.2: nothing to renew
    const t = times(lease);
    if (now >= t.expiry) return this.later(key, e, 0, () => this.expire(key, e, 'expired'));
    this.later(key, e, Math.max(0, (e.retryAt ?? t.renew) - now), () => void this.attempt(key, e));
  }

  /** setTimeout for delays beyond its 2^31-1 ms limit (about 24.8 days, shorter than many leases' T1). */
  private later(key: string, e: Entry, ms: number, fn: () => void): void {
    const step = Math.min(ms, MAX_TIMER_MS);
    e.timer = this.clock.setTimeout(() => {
      e.timer = undefined;
      if (this.entries.get(key) !== e) return;
      if (step < ms) this.later(key, e, ms - step, fn);
      else fn();
    }, step);
  }

  private expire(key: string, e: Entry, reason: ExpiryReason): void {
    this.cancel(key);
    this.emit('expired', key, e.lease, reason);
  }

  private async attempt(key: string, e: Entry): Promise<void> {
    const now = this.clock.now();
    const t = times(e.lease);
    if (now >= t.expiry) return this.expire(key, e, 'expired');
    const rebinding = now >= t.rebind;
    // The phase's end: renewing goes on until T2, rebinding until the lease is over.
    const limit = rebinding ? t.expiry : t.rebind;
    const abort = new AbortController();
    e.abort = abort;
    try {
      const sock = await this.opts.socketFor(key, e.lease);
      if (abort.signal.aborted) {
        sock.close();
        return;
      }
      e.sock = sock;
      const fn = rebinding ? (this.opts.client?.rebind ?? rebind) : (this.opts.client?.renew ?? renew);
      const next = await fn(sock, e.lease, {
        timeoutMs: Math.max(1, Math.min(this.opts.requestTimeoutMs ?? 5000, limit - now)),
        signal: abort.signal,
        where: this.opts.where?.(key) ?? `lease ${key}`,
      });
      if (abort.signal.aborted) return;
      const previous = e.lease;
      e.lease = next;
      e.retryAt = undefined;
      this.schedule(key, e, this.clock.now());
      this.emit(next.address === previous.address ? 'renewed' : 'changed', key, next, previous);
    } catch (err) {
      if (abort.signal.aborted) return;
      if (isMacnetError(err, 'DHCP_NAK')) {
        // RFC 2131 3.2 / 4.4.5: a NAK ends the lease now; the client starts over (the daemon's decision).
        if (this.listenerCount('error') > 0) this.emit('error', key, err);
        return this.expire(key, e, 'nak');
      }
      if (this.listenerCount('error') > 0) this.emit('error', key, err);
      const at = this.clock.now();
      e.retryAt = Math.min(limit, at + Math.max(minRetryMs(e.lease), (limit - at) / 2));
      this.schedule(key, e, at);
    } finally {
      if (e.abort === abort) e.abort = undefined;
      e.sock?.close();
      e.sock = undefined;
    }
  }
}

interface Entry {
  lease: DhcpLease;
  timer?: unknown;
  abort?: AbortController | undefined;
  sock?: FrameSocket | undefined;
  /** After a failed attempt: when to try again (RFC 2131 4.4.5 halving), instead of T1. */
  retryAt?: number | undefined;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/** Absolute ms epoch times of T1, T2 and expiry. */
export function times(l: DhcpLease): { renew: number; rebind: number; expiry: number } {
  return {
    renew: l.obtainedAt + l.renewSeconds * 1000,
    rebind: l.obtainedAt + l.rebindSeconds * 1000,
    expiry: l.obtainedAt + l.leaseSeconds * 1000,
  };
}

/**
 * RFC 2131 4.4.5: after a failed attempt wait half the time left in the phase, but at least 60 s. For short
 * leases (tests, captive LANs with 2-minute leases) 60 s would skip most of the window, so the minimum
 * shrinks to 1/16 of the lease (7.5 s for 2 minutes), and never below 1 s.
 */
export function minRetryMs(l: DhcpLease): number {
  return Math.max(1000, Math.min(60_000, (l.leaseSeconds * 1000) / 16));
}

// Unref'd: a daemon that stops keeping leases must be able to exit; stop() clears them anyway.
const realClock: KeeperClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};
