// `macnet store migrate --to etcd`, the plan: which records of a host's SQLite state go to etcd, and what etcd
// already holds that forbids it. Pure: it reads two snapshots (the SQLite entries, in this macnet's key layout,
// and etcd's) and returns the conflicts, or the writes with how to undo each (migrate-write.ts applies them).
// Only the shared records move (ipam/..., and meta/schema on a new cluster): this host's own (its networks',
// endpoints', parents' and host-access links' records, its DHCP leases) stay in its SQLite, where a daemon on
// etcd keeps them too (docs/cluster.md); they are only counted here, for the printed plan.
import type { MigrateConflict } from '../errors';
import {
  ADDRESSES,
  CURSORS,
  POOLS,
  STICKY,
  countHost,
  splitAddressKey,
  type AddressRecord,
  type PoolRecord,
} from '../ipam/keys';
import { LEASES } from '../lan/lease-records';
import { decodeRecord, encodeRecord } from '../store/records';
import { SCHEMA_KEY, SCHEMA_VERSION } from '../store/schema';
import type { Entry, TxnOp } from '../store/types';
import { overlaps, parseCidrBig } from '../types/address';

/** How to take one write back: delete a key it created (if it still holds what was written), or a count it added. */
export type Undo =
  | { readonly kind: 'created'; readonly key: string; readonly value: string }
  /** `host`: a pool's, whose per-host count (refsByHost) goes down with the total. */
  | { readonly kind: 'counted'; readonly key: string; readonly delta: number; readonly host?: string };

export interface Step {
  readonly op: TxnOp;
  readonly undo: Undo;
}

/** What etcd holds that the plan depends on, read before it is made. */
export interface ClusterSnapshot {
  /** meta/schema: its version, or undefined when the prefix holds no key at all (a new cluster). */
  readonly schema: number | undefined;
  /** Keys under the prefix when meta/schema is absent (0 for a new cluster). */
  readonly keysWithoutSchema: number;
  readonly pools: readonly Entry[];
  readonly addresses: readonly Entry[];
  readonly stickies: readonly Entry[];
  /**
   * hosts/<this host id> when etcd holds it: the presence key of a daemon of this host id running on etcd
   * (src/store/presence.ts, which loads etcd3; store-migrate.ts reads it).
   */
  readonly present: string | undefined;
  /** Markers of an earlier migrate of this host id that did not finish (migrate-write.ts). */
  readonly markers: readonly string[];
}

export interface Counts {
  /** This host's own records, which stay in SQLite. */
  networks: number;
  endpoints: number;
  parents: number;
  hostAccess: number;
  leases: number;
  poolsNew: number;
  poolsMerged: number;
  addresses: number;
  gatewaysNew: number;
  gatewaysMerged: number;
  stickies: number;
  stickiesKept: number;
  /** Address and sticky records of a subnet without a pool (a crash's residue), and old cursors: not moved. */
  residue: number;
}

export interface Plan {
  readonly conflicts: MigrateConflict[];
  /** In order: the layout version (new cluster), pools, gateways, addresses. */
  readonly steps: Step[];
  /** Sticky names: created where etcd has none for the name, else etcd's kept (migrate-write.ts). */
  readonly stickies: { readonly key: string; readonly value: string }[];
  readonly counts: Counts;
  /** One line per pool and gateway: what happens to it (for the printed plan). */
  readonly lines: string[];
}

const DRIVER = 'driver/';
/** Every key of the IPAM (src/ipam/keys.ts): what moves to etcd, and what is deleted from SQLite after. */
export const IPAM = 'ipam/';
const subnetOfKey = (key: string, prefix: string): string => key.slice(prefix.length).split('/').slice(0, 2).join('/');
const readPool = (e: Entry) => decodeRecord<PoolRecord>(e.key, e.value, 'store migrate');
const readAddress = (e: Entry) => decodeRecord<AddressRecord>(e.key, e.value, 'store migrate');
const refsOf = (r: AddressRecord): number => r.refs ?? 1;

/**
 * The plan for `local` (the SQLite state's entries, in this macnet's layout) as host `host` on a cluster that
 * holds `cluster`. Conflicts are all collected: the user fixes them in one go.
 */
export function planMigration(local: readonly Entry[], cluster: ClusterSnapshot, host: string): Plan {
  const conflicts: MigrateConflict[] = [];
  const steps: Step[] = [];
  const lines: string[] = [];
  const counts: Counts = {
    networks: 0,
    endpoints: 0,
    parents: 0,
    hostAccess: 0,
    leases: 0,
    poolsNew: 0,
    poolsMerged: 0,
    addresses: 0,
    gatewaysNew: 0,
    gatewaysMerged: 0,
    stickies: 0,
    stickiesKept: 0,
    residue: 0,
  };
  const plan: Plan = { conflicts, steps, stickies: [], counts, lines };

  // The layout first: records of another layout would not mean what this macnet writes in them.
  if (cluster.schema === undefined) {
    if (cluster.keysWithoutSchema > 0)
      conflicts.push({
        key: SCHEMA_KEY,
        what:
          `etcd holds ${cluster.keysWithoutSchema} keys under the prefix but no key layout version: not a macnet ` +
          'cluster of a known version; give another --etcd-prefix',
      });
    else {
      const value = String(SCHEMA_VERSION);
      steps.push({ op: { op: 'create', key: SCHEMA_KEY, value }, undo: { kind: 'created', key: SCHEMA_KEY, value } });
    }
  } else if (cluster.schema !== SCHEMA_VERSION)
    conflicts.push({
      key: SCHEMA_KEY,
      what:
        `etcd holds key layout version ${cluster.schema}, this macnet writes ${SCHEMA_VERSION}: ` +
        (cluster.schema > SCHEMA_VERSION
          ? 'migrate with the macnet version the cluster runs'
          : 'start a daemon of this version on the cluster first (it migrates the layout), then migrate'),
    });
  if (conflicts.length) return plan;

  if (cluster.present !== undefined)
    conflicts.push({
      key: cluster.present,
      host,
      what:
        `a daemon of this host id (${host}, from this state dir's host-id) runs on etcd right now: ` +
        'stop it (one daemon per state dir), or give the state dir that ran on SQLite',
    });
  if (cluster.markers.length)
    conflicts.push({
      key: cluster.markers[0]!,
      host,
      what:
        `an earlier macnet store migrate of this host id did not finish (${cluster.markers.length} markers): ` +
        'etcd may hold part of its writes (docs/cluster.md, "An interrupted migration")',
    });
  const mine = cluster.addresses.filter((e) => readAddress(e).host === host);
  if (mine.length)
    conflicts.push({
      key: `${ADDRESSES}...`,
      host,
      what: `etcd already holds ${mine.length} address records of this host id (${host}), e.g. ${mine[0]!.key}`,
    });

  const ours = new Map<string, Entry[]>();
  const take = (family: string, e: Entry) => ours.set(family, [...(ours.get(family) ?? []), e]);
  for (const e of local) {
    if (e.key === SCHEMA_KEY) continue;
    if (e.key.startsWith(POOLS)) take('pools', e);
    else if (e.key.startsWith(ADDRESSES)) take('addresses', e);
    else if (e.key.startsWith(STICKY)) take('stickies', e);
    else if (e.key.startsWith(CURSORS)) counts.residue++;
    else if (e.key.startsWith(IPAM))
      conflicts.push({
        key: e.key,
        what: 'an address record this macnet does not know: it cannot tell how to move it',
      });
    else if (e.key.startsWith(DRIVER) || e.key.startsWith(LEASES)) take('host', e);
  }

  // Pools: new, or the same as one the cluster has (its count grows by this host's networks); never another
  // ip-range or mode on the same subnet, nor a subnet overlapping another in the same address space.
  const clusterPools = cluster.pools.map((e) => ({ e, rec: readPool(e) }));
  const subnets = new Set<string>();
  for (const e of ours.get('pools') ?? []) {
    const rec = readPool(e);
    subnets.add(subnetOfKey(e.key, POOLS));
    const net = parseCidrBig(rec.subnet).subnet;
    const same = clusterPools.filter((p) => p.rec.space === rec.space && p.rec.subnet === rec.subnet);
    const clash = clusterPools.find(
      (p) =>
        p.rec.space === rec.space && p.rec.subnet !== rec.subnet && overlaps(parseCidrBig(p.rec.subnet).subnet, net),
    );
    const twin = same.find((p) => p.e.key === e.key);
    if (clash)
      conflicts.push({
        key: e.key,
        what: `this host's subnet ${rec.subnet} overlaps subnet ${clash.rec.subnet}, which etcd holds in ${rec.space}`,
      });
    if (!twin && same.length)
      conflicts.push({
        key: e.key,
        what:
          `this host's pool ${rec.id} differs from etcd's on subnet ${rec.subnet}: ` +
          `${same.map((p) => p.rec.id).join(', ')} ` +
          '(the same network needs the same --ip-range and --ipam-opt mode on every host)',
      });
    if (clash || (!twin && same.length)) continue;
    if (twin) {
      // This host's networks counted as its own (refsByHost): its --reclaim-after may then look at the subnet.
      const merged = countHost(twin.rec, host, rec.refs);
      steps.push({
        op: { op: 'update', key: e.key, value: encodeRecord(merged), revision: twin.e.revision },
        undo: { kind: 'counted', key: e.key, delta: rec.refs, host },
      });
      lines.push(`pool ${rec.id}: merged with etcd's, networks ${twin.rec.refs} + ${rec.refs}`);
      counts.poolsMerged++;
    } else {
      const created = countHost({ ...rec, refs: 0, refsByHost: {} }, host, rec.refs);
      steps.push({
        op: { op: 'create', key: e.key, value: encodeRecord(created) },
        undo: { kind: 'counted', key: e.key, delta: rec.refs, host },
      });
      lines.push(`pool ${rec.id}: new in etcd, ${rec.refs} network${rec.refs === 1 ? '' : 's'}`);
      counts.poolsNew++;
    }
  }

  // Addresses: each created only where etcd has none (conditional, so that a race with another host is caught
  // too); the gateway, the LAN's router that every host's network names, is counted instead.
  const held = new Map(cluster.addresses.map((e) => [e.key, e]));
  const gateways: Step[] = [];
  const addresses: Step[] = [];
  for (const e of ours.get('addresses') ?? []) {
    const k = splitAddressKey(e.key);
    if (!k || !subnets.has(subnetOfKey(e.key, ADDRESSES))) {
      counts.residue++;
      continue;
    }
    const rec = readAddress(e);
    const other = held.get(e.key);
    const theirs = other && readAddress(other);
    if (theirs && theirs.owner === 'gateway' && rec.owner === 'gateway') {
      const merged = { ...theirs, refs: refsOf(theirs) + refsOf(rec) };
      gateways.push({
        op: { op: 'update', key: e.key, value: encodeRecord(merged), revision: other!.revision },
        undo: { kind: 'counted', key: e.key, delta: refsOf(rec) },
      });
      lines.push(`gateway ${k.address}: merged with etcd's, networks ${refsOf(theirs)} + ${refsOf(rec)}`);
      counts.gatewaysMerged++;
    } else if (theirs)
      conflicts.push({
        key: e.key,
        ...(theirs.host !== undefined && { host: theirs.host }),
        what:
          `address ${k.address} is held in etcd by host ${theirs.host ?? '(unnamed)'} (owner ${theirs.owner}); ` +
          `this host has it for ${rec.owner}`,
      });
    else {
      const value = encodeRecord({ ...rec, host });
      const step: Step =
        rec.owner === 'gateway'
          ? { op: { op: 'create', key: e.key, value }, undo: { kind: 'counted', key: e.key, delta: refsOf(rec) } }
          : { op: { op: 'create', key: e.key, value }, undo: { kind: 'created', key: e.key, value } };
      if (rec.owner === 'gateway') {
        gateways.push(step);
        lines.push(`gateway ${k.address}: new in etcd`);
        counts.gatewaysNew++;
      } else {
        addresses.push(step);
        counts.addresses++;
      }
    }
  }
  steps.push(...gateways, ...addresses);

  // This host's own records stay in SQLite (and everything else outside ipam/): counted for the plan only.
  for (const e of ours.get('host') ?? []) {
    if (e.key.startsWith(`${DRIVER}networks/`)) counts.networks++;
    else if (e.key.startsWith(`${DRIVER}endpoints/`)) counts.endpoints++;
    else if (e.key.startsWith(`${DRIVER}parents/`)) counts.parents++;
    else if (e.key.startsWith(`${DRIVER}hostaccess/`)) counts.hostAccess++;
    else if (e.key.startsWith(LEASES)) counts.leases++;
  }

  // A container name's last address: etcd's record, if any, is kept (it may be newer: another host's container
  // of that name); otherwise this host's.
  const named = new Set(cluster.stickies.map((e) => e.key));
  for (const e of ours.get('stickies') ?? []) {
    if (!subnets.has(subnetOfKey(e.key, STICKY))) counts.residue++;
    else if (named.has(e.key)) counts.stickiesKept++;
    else plan.stickies.push({ key: e.key, value: e.value });
  }
  counts.stickies = plan.stickies.length;
  return plan;
}
