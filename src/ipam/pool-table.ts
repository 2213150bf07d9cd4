// The IPAM's pools and the index of each subnet they share, kept in step with the store: pool records with their
// reference counts (compare-and-set, so that a second writer of the store is safe), and the purge of a subnet's
// address and sticky records with its last pool. The Ipam (ipam.ts) serialises the calls that change them.
import { fail, isMacnetError, MacnetError } from '../errors';
import type { Store, TxnOp } from '../store/types';
import { SubnetIndex, type DynamicRange } from './allocator';
import { dynamicBounds } from './spread';
import { parseAddress, parseCidrBig, type Subnet } from '../types/address';
import {
  ADDRESSES,
  POOLS,
  countHost,
  countsAddUp,
  cursorKey,
  poolIdOf,
  poolKey,
  readAddressRecord,
  splitAddressKey,
  stickyPrefix,
  subnetAddressPrefix,
  type PoolRecord,
} from './keys';
import type { StickyNames } from './sticky';
import { OutboxJournal } from './outbox-journal';
import { decodeRecord, encodeRecord } from '../store/records';

export interface Pool extends DynamicRange {
  readonly key: string;
  /** Next-fit's cursor of earlier versions: deleted with the pool. */
  readonly cursorKey: string;
  /** --ipam-opt mode=dhcp: endpoint addresses are leased from the LAN's DHCP server (src/lan/leases.ts). */
  readonly dhcp: boolean;
  /** The address space (Docker's LocalDefault or GlobalDefault), not a subnet. */
  readonly space: string;
  readonly subnet: Subnet;
  readonly range: Subnet | undefined;
  refs: number;
  /** On a store shared by hosts: this host's part of `refs` (PoolRecord.refsByHost); undefined if unknown. */
  hostRefs?: number;
}

/** Delete address keys in chunks: a cluster store bounds the operations per transaction (etcd: 128). */
const DELETE_CHUNK = 100;
/** Compare-and-set retries on a pool record before giving up (only another writer of the store can race). */
const CAS_RETRIES = 10;

/** The key of a subnet's index (and of its lock): an address space and a subnet. */
export const indexKey = (space: string, subnet: Subnet): string => `${space}|${subnet.text}`;

export class PoolTable {
  readonly pools = new Map<string, Pool>();
  /** One index per subnet of an address space, shared by the pools on it (several ip-ranges, DHCP or not). */
  readonly indexes = new Map<string, SubnetIndex>();

  constructor(
    private readonly store: Store,
    private readonly stickies: StickyNames,
    /** This daemon among the writers of a shared store (IpamOptions.host). */
    readonly host?: string,
    /** This host's own store beside a shared one (IpamOptions.local). */
    local?: Store,
  ) {
    if (host !== undefined && local) this.journal = new OutboxJournal(local);
  }

  /** The outbox's entries kept in this host's own store (outbox-journal.ts), handed to each subnet's index. */
  readonly journal: OutboxJournal | undefined;

  /**
   * Reads pools and allocations from the store, from scratch (a retry after a failed load keeps nothing).
   * `settleKept`: applies the pool releases kept in the journal (pool-release.ts), before the pools are read.
   */
  async load(settleKept?: () => Promise<void>): Promise<void> {
    this.pools.clear();
    this.indexes.clear();
    await this.journal?.load(); // before the indexes, which take their entries when made
    await settleKept?.();
    for (const e of await this.store.list(POOLS)) {
      readRecord(e.key, () => {
        const rec = decodeRecord<PoolRecord>(e.key, e.value, 'IPAM load');
        const subnet = parseCidrBig(rec.subnet).subnet;
        const range = rec.range === null ? undefined : parseCidrBig(rec.range).subnet;
        if (!Number.isInteger(rec.refs) || rec.refs < 1) throw new Error(`reference count ${rec.refs}`);
        this.add(rec.space, subnet, range, rec.refs, rec.mode === 'dhcp').hostRefs = this.hostRefs(rec);
      });
    }
    // Address keys of a subnet without a pool are the residue of a crash inside ReleasePool; they are ignored
    // here and purged when a pool on that subnet is created again.
    const byPrefix = new Map([...this.indexes.values()].map((s) => [subnetAddressPrefix(s.space, s.subnet), s]));
    for (const e of await this.store.list(ADDRESSES)) {
      const k = splitAddressKey(e.key);
      const s = k && byPrefix.get(k.prefix);
      if (!s || !k) continue;
      const v = readRecord(e.key, () => parseAddress(k.address).value);
      s.taken.add(v);
      // Only this host's records can be its crash residue (src/docker/reclaim.ts); another host's are its own.
      if (this.host === undefined || readAddressRecord(e.value).host === this.host) s.inherited.add(v);
    }
    await this.journal?.dropUntaken();
  }

  pool(poolId: string, call: string): Pool {
    const p = this.pools.get(poolId);
    if (!p) {
      throw fail('IPAM_POOL_NOT_FOUND', { call, poolId });
    }
    return p;
  }

  indexOf(p: Pick<Pool, 'space' | 'subnet'>): SubnetIndex | undefined {
    return this.indexes.get(indexKey(p.space, p.subnet));
  }

  /** The index of `subnet` (canonical text) in any address space, with its space. */
  *indexesOf(subnet: string): Iterable<SubnetIndex> {
    for (const s of this.indexes.values()) if (s.subnet.text === subnet) yield s;
  }

  /** Every pool of the index's subnet and space: their reference counts add up to the networks using it. */
  poolsOf(s: SubnetIndex): Pool[] {
    return [...this.pools.values()].filter((p) => p.space === s.space && p.subnet.text === s.subnet.text);
  }

  add(space: string, subnet: Subnet, range: Subnet | undefined, refs: number, dhcp = false): Pool {
    const sk = indexKey(space, subnet);
    if (!this.indexes.has(sk)) {
      const remembered = (key: string, v: bigint) => this.stickies.set(key, v);
      this.indexes.set(sk, new SubnetIndex(space, subnet, this.store, this.host, remembered, this.journal));
    }
    const { lo, hi } = dynamicBounds(subnet, range);
    const p: Pool = {
      poolId: poolIdOf(space, subnet, range, dhcp),
      key: poolKey(space, subnet, range, dhcp),
      cursorKey: cursorKey(space, subnet, range, dhcp),
      space,
      subnet,
      range,
      refs,
      lo,
      hi,
      dhcp,
      label: dhcp
        ? `subnet ${subnet.text} (DHCP)`
        : range
          ? `ip-range ${range.text} of subnet ${subnet.text}`
          : `subnet ${subnet.text}`,
    };
    this.pools.set(p.poolId, p);
    return p;
  }

  async create(space: string, subnet: Subnet, range: Subnet | undefined, dhcp: boolean): Promise<void> {
    const key = poolKey(space, subnet, range, dhcp);
    // Address records of a subnet without a pool are residue (a crash inside ReleasePool). First on the subnet
    // here is not enough: on a cluster store another host's pool may hold them, in use.
    const firstOnSubnet = !this.indexes.has(indexKey(space, subnet));
    if (firstOnSubnet && !(await this.poolInStore(space, subnet))) await this.purgeAddresses(space, subnet, key);
    const rec: PoolRecord = {
      id: poolIdOf(space, subnet, range, dhcp),
      space,
      subnet: subnet.text,
      range: range?.text ?? null,
      refs: 1,
      ...(this.host !== undefined && { refsByHost: { [this.host]: 1 } }),
      ...(dhcp && { mode: 'dhcp' as const }),
    };
    // A cursor of an earlier version (next-fit) is residue: gone with the pool.
    if (
      await this.store.txn([
        { op: 'create', key, value: encodeRecord(rec) },
        { op: 'delete', key: cursorKey(space, subnet, range, dhcp) },
      ])
    ) {
      this.add(space, subnet, range, 1, dhcp).hostRefs = this.hostRefs(rec);
      return;
    }
    // Created meanwhile by another writer of the store: join it.
    const p = this.add(space, subnet, range, 0, dhcp);
    await this.changeRefs(p, +1);
  }

  /**
   * Adds `delta` to the pool's reference count in the store (compare-and-set); deletes the pool at 0. `tag`: a
   * release's id, written with the count (PoolRecord.settled) so that it can be kept and applied once
   * (pool-release.ts) if the store does not answer.
   */
  async changeRefs(p: Pool, delta: number, tag?: string): Promise<void> {
    for (let i = 0; i < CAS_RETRIES; i++) {
      const e = await this.store.get(p.key);
      const rec: PoolRecord = e
        ? decodeRecord<PoolRecord>(e.key, e.value, 'IPAM pool update')
        : {
            id: p.poolId,
            space: p.space,
            subnet: p.subnet.text,
            range: p.range?.text ?? null,
            refs: 0,
            ...(this.host !== undefined && { refsByHost: {} }),
            ...(p.dhcp && { mode: 'dhcp' as const }),
          };
      this.count(rec, delta, tag);
      let ok: boolean;
      if (rec.refs > 0) {
        ok = e
          ? await this.store.update(p.key, encodeRecord(rec), e.revision)
          : await this.store.create(p.key, encodeRecord(rec));
      } else {
        ok =
          !e ||
          (await this.store.txn([
            { op: 'delete', key: p.key, revision: e.revision },
            { op: 'delete', key: p.cursorKey },
          ]));
      }
      if (ok) {
        p.refs = Math.max(rec.refs, 0);
        p.hostRefs = this.hostRefs(rec);
        return;
      }
    }
    throw new MacnetError(
      'STORE_ERROR',
      `pool ${p.poolId}: its record kept changing under ${CAS_RETRIES} compare-and-set attempts`,
      { poolId: p.poolId, key: p.key },
    );
  }

  /** Adds `delta` to a pool record's counts, this host's among them; `tag` as in changeRefs. */
  count(rec: PoolRecord, delta: number, tag?: string): void {
    // Counts that do not add up (a migration or an earlier version changed refs alone) stay unknown for good.
    const next = this.host === undefined ? { ...rec, refs: rec.refs + delta } : countHost(rec, this.host, delta);
    if (next.refsByHost === undefined) delete rec.refsByHost;
    else rec.refsByHost = next.refsByHost;
    rec.refs = next.refs;
    if (this.host !== undefined && tag !== undefined) rec.settled = { ...rec.settled, [this.host]: tag };
  }

  /** This host's references in a pool record; undefined on a single host, or if its per-host counts are unknown. */
  hostRefs(rec: PoolRecord): number | undefined {
    return this.host === undefined || !countsAddUp(rec) ? undefined : (rec.refsByHost![this.host] ?? 0);
  }

  /** Whether the store holds a pool on `subnet` (of any ip-range, DHCP or not). */
  async poolInStore(space: string, subnet: Subnet): Promise<boolean> {
    const base = poolKey(space, subnet);
    return (await this.store.list(base)).some((e) => e.key === base || e.key.startsWith(`${base}/`));
  }

  /**
   * Deletes a subnet's address and sticky records (its last pool went, or a first pool comes after a crash).
   * `unlessPool`: only while that pool key does not exist, so that a host creating the pool meanwhile (a cluster
   * store) keeps the records it made.
   */
  async purgeAddresses(space: string, subnet: Subnet, unlessPool?: string): Promise<void> {
    // The names' previous addresses go too: a network made again later is a new network.
    const keys = [
      ...(await this.store.list(subnetAddressPrefix(space, subnet))),
      ...(await this.store.list(stickyPrefix(space, subnet))),
    ].map((e) => e.key);
    this.stickies.purge(stickyPrefix(space, subnet));
    await this.deleteKeys(keys, unlessPool);
  }

  /**
   * Deletes `keys` in chunks; a crash in between leaves the rest for the next load or purge. `unlessKey`: each
   * chunk only while that key does not exist (created and deleted again in the same transaction: a condition
   * that writes nothing); the first chunk refused ends the deletion.
   */
  async deleteKeys(keys: readonly string[], unlessKey?: string): Promise<void> {
    const guard: TxnOp[] = unlessKey
      ? [
          { op: 'create', key: unlessKey, value: '' },
          { op: 'delete', key: unlessKey },
        ]
      : [];
    for (let i = 0; i < keys.length; i += DELETE_CHUNK) {
      const chunk = keys.slice(i, i + DELETE_CHUNK).map((key): TxnOp => ({ op: 'delete', key }));
      if (!(await this.store.txn([...guard, ...chunk]))) return;
    }
  }
}

/**
 * Runs `fn` on a stored record; a record macnet cannot read, or whose content fails `fn`'s checks, is a STORE_ERROR
 * naming its key (the codec's own, src/store/records.ts, passes through).
 */
function readRecord<T>(key: string, fn: () => T, call = 'load'): T {
  try {
    return fn();
  } catch (e) {
    if (isMacnetError(e)) throw e;
    throw fail('STORE_ERROR', { context: `IPAM ${call}`, record: key, error: (e as Error).message }, e);
  }
}
