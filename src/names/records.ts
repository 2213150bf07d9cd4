// The containers' names in the store (docs/names.md): one record per container on a macnet network, written by the
// daemon of the host it runs on (src/docker/names-follow.ts) and read by every daemon's DNS (view.ts). On etcd the
// records are shared, so each host answers for every host's containers; on SQLite they are this host's own.
//
//   names/<host id>/<network id>/<container id>   NameEntry (JSON); its `host` is the host's DNS label
import type { Store, TxnOp } from '../store/types';
import type { NameRecord } from '../dns/names';
import { decodeRecord, encodeRecord } from '../store/records';

export const NAMES = 'names/';

export interface NameEntry extends NameRecord {
  readonly network: string;
  readonly container: string;
}

export const nameKey = (host: string, network: string, container: string): string =>
  `${NAMES}${host}/${network}/${container}`;
export const hostNamesPrefix = (host: string): string => `${NAMES}${host}/`;

/** A record as stored; undefined for one this version cannot read (it is then not answered for). */
export function readNameEntry(key: string, value: string | undefined): NameEntry | undefined {
  if (value === undefined) return undefined;
  try {
    const r = decodeRecord<NameEntry>(key, value, 'names');
    return typeof r.name === 'string' && typeof r.host === 'string' && Array.isArray(r.v4) && Array.isArray(r.v6)
      ? { ...r, aliases: Array.isArray(r.aliases) ? r.aliases : [] }
      : undefined;
  } catch {
    return undefined;
  }
}

/** Writes of one host's records, each only when it changed. */
export class NameWriter {
  constructor(
    private readonly store: Store,
    /** The host id: the records' keys (each daemon writes only under its own). */
    readonly host: string,
    /** The DNS label of the host (`<name>.<label>`), written into each record. */
    readonly label: string,
  ) {}

  async set(e: NameEntry): Promise<void> {
    const key = nameKey(this.host, e.network, e.container);
    const value = encodeRecord(e);
    if ((await this.store.get(key))?.value !== value) await this.store.put(key, value);
  }

  async remove(network: string, container: string): Promise<void> {
    await this.store.delete(nameKey(this.host, network, container));
  }

  /** This host's records become exactly `entries` (after a start, or after the engine's stream was lost). */
  async sync(entries: readonly NameEntry[]): Promise<void> {
    const want = new Map(entries.map((e) => [nameKey(this.host, e.network, e.container), encodeRecord(e)]));
    const have = await this.store.list(hostNamesPrefix(this.host));
    const ops: TxnOp[] = [];
    for (const e of have) if (!want.has(e.key)) ops.push({ op: 'delete', key: e.key });
    const current = new Map(have.map((e) => [e.key, e.value]));
    for (const [key, value] of want) if (current.get(key) !== value) ops.push({ op: 'put', key, value });
    // etcd takes at most 128 operations per transaction.
    for (let i = 0; i < ops.length; i += 100) await this.store.txn(ops.slice(i, i + 100));
  }
}
