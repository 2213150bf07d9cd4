// The addresses of hosts gone from a cluster store (docs/cluster.md, "A host that is gone"). A host is present
// while its key hosts/<id> lives (src/store/presence.ts, an etcd lease). The records of a host that is not
// present are reclaimed only when both hold:
// - the host has been missing for the grace period, as this daemon saw it: its own clock, so no two hosts'
//   clocks are compared (a daemon that restarts starts counting again, which only delays a reclaim);
// - two LAN probes, one scan apart, found the address silent. A container that still answers (its host cut off
//   from etcd only, or its daemon down) keeps its address however long its host is missing.
// Only subnets this host can probe itself are looked at (a network of its own there, with a vantage on the LAN:
// Lan.canProbe); a gateway's record is never reclaimed (the LAN's router, counted by networks). Each delete is
// conditional on the revision read, so hosts reclaiming at once, or the host coming back and writing its record
// again (src/docker/own-addresses.ts), never lose a newer record.
import type { Logger } from '../log';
import { PRESENCE_PREFIX } from '../store/presence';
import type { Store } from '../store/types';
import { ADDRESSES, readAddressRecord, splitAddressKey } from './keys';
import type { Lan } from '../lan';
import { isProbeLinkMac } from '../types/mac';

export interface LostHostsOptions {
  /** This daemon's host id: its own records are never reclaimed here. */
  readonly self: string;
  /** How long a host must be missing before its silent addresses are reclaimed. */
  readonly graceMs: number;
  readonly log: Logger;
}

interface Due {
  readonly key: string;
  readonly revision: number;
  readonly ip: string;
  readonly host: string;
}

/** How often the store is scanned: a quarter of the grace period, between 2 s and 30 s. */
export const scanMs = (graceMs: number): number => Math.min(Math.max(graceMs / 4, 2000), 30_000);

export class LostHosts {
  private readonly missingSince = new Map<string, number>();
  /** Keys found silent at the last scan: silent again at this one, they are reclaimed. */
  private silent = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(
    private readonly store: Store,
    private readonly lan: Pick<Lan, 'inUse' | 'canProbe'> | undefined,
    /** Told of each address reclaimed, so that this host's index of the subnet lets it go too. */
    private readonly freed: { forget(subnet: string, ip: string): Promise<void> },
    private readonly opts: LostHostsOptions,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.scan()
        .catch((e: unknown) => this.opts.log.debug('lost-host scan failed; next scan', { error: String(e) }))
        .finally(() => (this.running = undefined));
    }, scanMs(this.opts.graceMs));
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One scan; returns the addresses reclaimed ("subnet ip"). */
  async scan(now = Date.now()): Promise<string[]> {
    const present = new Set((await this.store.list(PRESENCE_PREFIX)).map((e) => e.key.slice(PRESENCE_PREFIX.length)));
    for (const h of [...this.missingSince.keys()]) if (present.has(h)) this.missingSince.delete(h);
    const due = new Map<string, Due[]>();
    for (const e of await this.store.list(ADDRESSES)) {
      const rec = readAddressRecord(e.value);
      const host = rec.host;
      if (host === undefined || host === this.opts.self || present.has(host) || rec.owner === 'gateway') continue;
      if (!this.missingSince.has(host)) {
        this.missingSince.set(host, now);
        this.opts.log.warn('a host of the cluster is gone; its silent addresses are reclaimed after the grace period', {
          host,
          graceMs: this.opts.graceMs,
        });
      }
      if (now - this.missingSince.get(host)! < this.opts.graceMs) continue;
      const split = splitAddressKey(e.key);
      const subnet = split && split.prefix.slice(ADDRESSES.length).split('/')[1]?.replace('_', '/');
      if (!split || !subnet) continue;
      const list = due.get(subnet) ?? [];
      list.push({ key: e.key, revision: e.revision, ip: split.address, host });
      due.set(subnet, list);
    }
    const silent = new Set<string>();
    const reclaimed: string[] = [];
    for (const [subnet, list] of due) {
      const lan = this.lan;
      if (!lan?.canProbe(subnet)) continue;
      const answered = await lan.inUse(
        subnet,
        list.map((d) => d.ip),
      );
      if (!answered) continue;
      this.opts.log.debug('lost-host scan: probed', {
        subnet,
        addresses: list.map((d) => d.ip),
        answered: [...answered].map(([ip, h]) => `${ip} ${h.mac} ${h.reason}`),
      });
      for (const d of list) {
        // Only a machine's answer counts. Another macnet host probing the same address at the same moment (its own
        // scan: reason 'probing'), or a macnet probe link defending it (a host whose index does not know the record
        // keeps the address warm), says nothing about whether a container uses it.
        const h = answered.get(d.ip);
        if (h?.reason === 'answered' && !isProbeLinkMac(h.mac)) continue;
        if (!this.silent.has(d.key)) {
          silent.add(d.key);
          continue;
        }
        if (!(await this.store.delete(d.key, d.revision))) continue;
        await this.freed.forget(subnet, d.ip);
        reclaimed.push(`${subnet} ${d.ip}`);
        this.opts.log.warn('reclaimed the address of a host gone for longer than the grace period', {
          address: d.ip,
          subnet,
          host: d.host,
          missingMs: now - this.missingSince.get(d.host)!,
        });
      }
    }
    this.silent = silent;
    return reclaimed;
  }
}
