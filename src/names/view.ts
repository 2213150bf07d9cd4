// Every host's container names as the DNS answers them (src/dns/names.ts), kept from the store's name records
// through a watch (Store.watch): started before the first read, so nothing written in between is lost, and read
// again from scratch when the watch says it missed changes.
//
// In a cluster (`presence`), a host's names are answered only while the host is present (its leased key
// hosts/<id>, src/store/presence.ts), and for a grace period after its key went: a crashed or cut-off host's
// records stay in etcd (nothing else may delete them), and its addresses may be reclaimed and handed to another
// container once it is gone (src/ipam/lost-hosts.ts), so its names must not point there. The grace covers a
// daemon restarted on purpose (its key is revoked at a clean stop and made again at start), so that other hosts'
// answers do not blink. This host's own names are always answered: it knows its containers are there.
import type { Change, Store, StoreWatch } from '../store/types';
import { Names } from '../dns/names';
import { NAMES, readNameEntry, type NameEntry } from './records';
import { PRESENCE_PREFIX } from '../store/presence';

export interface NameViewOptions {
  /** Answer a host's names only while its presence key exists (etcd); off: every record (SQLite). */
  readonly presence: boolean;
  /** This host's id: its names are answered whatever its presence key says. */
  readonly self: string;
  /** How long a host's names are still answered after its presence key went. */
  readonly graceMs: number;
  /** This host's DNS label: a zone of ours always (src/dns/answer.ts). */
  readonly selfLabel?: string;
}

const hostOfName = (key: string): string => key.slice(NAMES.length).split('/')[0]!;

export class NameView {
  readonly names = new Names();
  /** Every record read, answered or not (a host's names come back with its presence). */
  private readonly records = new Map<string, NameEntry>();
  private readonly present = new Set<string>();
  /** Each present host's DNS label, from its presence record: its zone, answered while its names are. */
  private readonly labels = new Map<string, string>();
  /** Hosts whose key went, still answered until their timer fires. */
  private readonly leaving = new Map<string, NodeJS.Timeout>();
  private watches: StoreWatch[] = [];
  private held: Change[] | undefined = [];

  constructor(
    private readonly store: Store,
    private readonly o: NameViewOptions = { presence: false, self: '', graceMs: 0 },
  ) {}

  async start(): Promise<void> {
    const handlers = {
      onChanges: (cs: readonly Change[]) => (this.held ? this.held.push(...cs) : this.apply(cs)),
      onReset: () => void this.load().catch(() => undefined),
    };
    this.watches.push(await this.store.watch(NAMES, handlers));
    if (this.o.presence) this.watches.push(await this.store.watch(PRESENCE_PREFIX, handlers));
    await this.load();
  }

  async close(): Promise<void> {
    for (const t of this.leaving.values()) clearTimeout(t);
    this.leaving.clear();
    const ws = this.watches.splice(0);
    for (const w of ws) await w.close();
  }

  /** Whether a host's names are answered now. */
  answered(host: string): boolean {
    return !this.o.presence || host === this.o.self || this.present.has(host) || this.leaving.has(host);
  }

  private async load(): Promise<void> {
    this.held ??= [];
    const [entries, hosts] = await Promise.all([
      this.store.list(NAMES),
      this.o.presence ? this.store.list(PRESENCE_PREFIX) : Promise.resolve([]),
    ]);
    this.names.clear();
    this.records.clear();
    this.present.clear();
    // A host whose key is missing at a (re)load has been gone for an unknown time: not answered, no grace.
    for (const t of this.leaving.values()) clearTimeout(t);
    this.leaving.clear();
    this.labels.clear();
    for (const h of hosts) {
      this.present.add(h.key.slice(PRESENCE_PREFIX.length));
      this.learnLabel(h.key.slice(PRESENCE_PREFIX.length), h.value);
    }
    this.zonesChanged();
    for (const e of entries) this.setRecord(e.key, readNameEntry(e.key, e.value));
    const held = this.held;
    this.held = undefined;
    this.apply(held);
  }

  private apply(changes: readonly Change[]): void {
    for (const c of changes) {
      if (c.key.startsWith(PRESENCE_PREFIX)) this.presenceChanged(c.key.slice(PRESENCE_PREFIX.length), c.type, c.value);
      else this.setRecord(c.key, c.type === 'put' ? readNameEntry(c.key, c.value) : undefined);
    }
  }

  private setRecord(key: string, e: NameEntry | undefined): void {
    if (e) this.records.set(key, e);
    else this.records.delete(key);
    this.names.set(key, e && this.answered(hostOfName(key)) ? e : undefined);
  }

  private presenceChanged(host: string, type: Change['type'], value: string | undefined): void {
    if (type === 'put') {
      this.learnLabel(host, value);
      const wasAnswered = this.answered(host);
      clearTimeout(this.leaving.get(host));
      this.leaving.delete(host);
      this.present.add(host);
      if (!wasAnswered) this.showHost(host, true);
      this.zonesChanged();
      return;
    }
    if (!this.present.delete(host) || host === this.o.self) return;
    const timer = setTimeout(() => {
      this.leaving.delete(host);
      if (!this.answered(host)) this.showHost(host, false);
      this.zonesChanged();
    }, this.o.graceMs);
    timer.unref();
    this.leaving.set(host, timer);
  }

  private learnLabel(host: string, value: string | undefined): void {
    try {
      const label = (JSON.parse(value ?? '{}') as { label?: unknown }).label;
      if (typeof label === 'string' && label) this.labels.set(host, label);
    } catch {
      // A presence record this version cannot read: the host is present, without a zone.
    }
  }

  /** The zones: this host's label, and those of the hosts whose names are answered. */
  private zonesChanged(): void {
    const zones = [...this.labels].filter(([h]) => this.answered(h)).map(([, l]) => l);
    this.names.setZones(this.o.selfLabel ? [this.o.selfLabel, ...zones] : zones);
  }

  private showHost(host: string, show: boolean): void {
    for (const [key, e] of this.records) if (hostOfName(key) === host) this.names.set(key, show ? e : undefined);
  }
}
