// The names macnet's DNS answers for (answer.ts's NameTable), kept from name records: one per container endpoint on
// a macnet network, on any host (docs/names.md). A record gives the container's name, its network aliases, the host
// it runs on and its addresses. Each name and alias answers bare (`web`) and with its host (`web.host-a`); a name
// on two hosts answers with both hosts' addresses, and `<name>.<host>` picks one. Names are case-insensitive.
import type { NameTable } from './answer';

export interface NameRecord {
  /** The container's name, without Docker's leading '/'. */
  readonly name: string;
  readonly aliases: readonly string[];
  /** The host id of the daemon that wrote it. */
  readonly host: string;
  readonly v4: readonly string[];
  readonly v6: readonly string[];
}

/** A DNS label: what a container name, alias or host id must be to be answered for (RFC 1123, dots allowed). */
const NAME = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

export class Names implements NameTable {
  private readonly records = new Map<string, NameRecord>();
  /** name → record keys, for bare and host-qualified names alike. */
  private readonly byName = new Map<string, Set<string>>();
  private readonly byAddress = new Map<string, Set<string>>();
  /** The host labels answered for (NameTable.isZone), lower case: set by whoever knows the hosts (the view). */
  private zones: ReadonlySet<string> = new Set();

  /** Sets (or with undefined removes) the record stored under `key`. */
  set(key: string, rec: NameRecord | undefined): void {
    const old = this.records.get(key);
    if (old) this.index(key, old, false);
    if (rec) {
      this.records.set(key, rec);
      this.index(key, rec, true);
    } else this.records.delete(key);
  }

  setZones(labels: Iterable<string>): void {
    this.zones = new Set([...labels].map((l) => l.toLowerCase()));
  }

  isZone(label: string): boolean {
    return this.zones.has(label.toLowerCase());
  }

  clear(): void {
    this.records.clear();
    this.byName.clear();
    this.byAddress.clear();
  }

  addresses(name: string): { v4: string[]; v6: string[] } | undefined {
    const keys = this.byName.get(name.toLowerCase());
    if (!keys?.size) return undefined;
    const v4 = new Set<string>();
    const v6 = new Set<string>();
    for (const k of keys) {
      const r = this.records.get(k)!;
      r.v4.forEach((a) => v4.add(a));
      r.v6.forEach((a) => v6.add(a));
    }
    return { v4: [...v4].sort(), v6: [...v6].sort() };
  }

  names(address: string): string[] {
    const keys = this.byAddress.get(address);
    if (!keys?.size) return [];
    // The host-qualified name: unique across hosts, where the bare one may not be.
    return [...keys]
      .map((k) => this.records.get(k)!)
      .map((r) => `${r.name}.${r.host}`.toLowerCase())
      .sort();
  }

  private index(key: string, r: NameRecord, add: boolean): void {
    const host = r.host.toLowerCase();
    for (const n of [r.name, ...r.aliases].map((x) => x.toLowerCase())) {
      for (const full of [n, `${n}.${host}`]) if (NAME.test(full)) change(this.byName, full, key, add);
    }
    for (const a of [...r.v4, ...r.v6]) change(this.byAddress, a, key, add);
  }
}

function change(map: Map<string, Set<string>>, k: string, key: string, add: boolean): void {
  let s = map.get(k);
  if (add) {
    if (!s) map.set(k, (s = new Set()));
    s.add(key);
  } else if (s) {
    s.delete(key);
    if (s.size === 0) map.delete(k);
  }
}
