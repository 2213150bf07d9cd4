// `macnet uninstall` on a host that ran on etcd (docs/cluster.md): frees this host's address records in etcd, its name
// records (names/<host id>/, docs/names.md) and its presence key, so that the other hosts may hand those addresses out
// at once instead of after the lost-host grace period. Runs before anything local is removed: if etcd cannot be
// reached, the command fails naming the endpoints (STORE_UNAVAILABLE) and changes nothing, so that the host id in the
// state dir, by which the records are found, is still there for the next try (--purge would remove it).
//
// Only what is this host's alone goes: address records whose `host` is this host's id (each deleted at the
// revision read, so that a record reclaimed and handed out to another host meanwhile stays), never a gateway's
// record (the LAN's router, counted by every host's networks on the subnet) nor a pool (counted likewise, without
// saying by which hosts): uninstall runs with no network left here, so this host holds none of their counts.
import type { EtcdOptions } from '../store/etcd-options';
import { presenceKey } from '../store/presence';
import { assertKnownSchema } from '../store/schema';
import { ADDRESSES, readAddressRecord, splitAddressKey } from '../ipam/keys';
import { etcdWhere, openStore } from './store-open';
import { Ipam } from '../ipam/ipam';
import { OUTBOX } from '../ipam/outbox-journal';
import { hostNamesPrefix } from '../names/records';

export interface EtcdCleanup {
  readonly where: string;
  /** The addresses whose records were deleted, as "<subnet prefix key tail>/<address>". */
  readonly freed: readonly string[];
  /** Records of this host that changed between the read and the delete (another host's now): left alone. */
  readonly changed: readonly string[];
  /** Whether a presence key of this host was still there (a daemon killed less than its TTL ago). */
  readonly presence: boolean;
  /** How many name records of this host were deleted (a daemon stopped with containers on its networks). */
  readonly names: number;
}

/** Deletes this host's address records and presence key in etcd; throws STORE_UNAVAILABLE before any delete. */
export async function freeHostInEtcd(etcd: EtcdOptions, host: string): Promise<EtcdCleanup> {
  const where = etcdWhere(etcd);
  // Loaded here only, as in store-open.ts: etcd3 and gRPC take a fifth of a second to load.
  const { EtcdStore } = await import('../store/etcd');
  const store = await EtcdStore.open(etcd);
  try {
    // A newer layout's records may not mean what this version reads in them: refused, nothing deleted.
    await assertKnownSchema(store, where);
    const mine = (await store.list(ADDRESSES)).filter((e) => {
      const rec = readAddressRecord(e.value);
      return rec.host === host && rec.owner !== 'gateway';
    });
    const freed: string[] = [];
    const changed: string[] = [];
    for (const e of mine) {
      const name = e.key.slice(ADDRESSES.length);
      if (await store.delete(e.key, e.revision)) freed.push(name);
      else changed.push(name);
    }
    // Names only this host writes; the other hosts no longer answer them once its presence is gone anyway.
    const names = await store.list(hostNamesPrefix(host));
    for (const e of names) await store.delete(e.key);
    const presence = await store.delete(presenceKey(host));
    return { where, freed, changed, presence, names: names.length };
  } finally {
    await store.close();
  }
}

/**
 * Applies the releases this host kept through an etcd outage and has not applied yet (its daemon stopped before etcd
 * was back; src/ipam/outbox-journal.ts): the pools' and gateways' counts, and its address records. Returns how many
 * were kept; throws STORE_UNAVAILABLE (nothing local changed) while etcd still fails.
 */
export async function settleKept(etcd: EtcdOptions, host: string, stateDir: string): Promise<number> {
  const opened = await openStore({ kind: 'etcd', etcd, lostHostGraceMs: 300_000 }, stateDir);
  try {
    const kept = (await opened.local.list(OUTBOX)).length;
    if (kept === 0) return 0;
    const ipam = new Ipam(opened.shared, { host, local: opened.local });
    try {
      await ipam.settleAll();
    } finally {
      ipam.close();
    }
    return kept;
  } finally {
    await opened.close();
  }
}

/** "198.18.15.0/24 198.18.15.5" for an address key's tail "LocalDefault/198.18.15.0_24/198.18.15.5". */
export function describeFreed(name: string): string {
  const split = splitAddressKey(ADDRESSES + name);
  if (!split) return name;
  const subnet = split.prefix.slice(ADDRESSES.length, -1).split('/').pop()!.replace('_', '/');
  return `${split.address} (${subnet})`;
}
