// `macnet store migrate --to etcd`: a host that ran on SQLite moves its address pools into etcd (issue 19,
// docs/cluster.md), while its containers keep running (the data path needs no daemon) and its daemon is stopped.
// Reads the SQLite state, checks it against what etcd holds, refuses naming every conflict before it writes
// anything (migrate-plan.ts), then writes in etcd transactions, all or none (migrate-write.ts). Only ipam/...
// moves: this host's own records (driver/..., lan/leases/...) stay in state.db, where the daemon on etcd reads
// them. The last step deletes the moved keys from state.db in one SQLite transaction: from then on a daemon on
// etcd accepts the state dir (store-open.ts refuses one with pools in SQLite) and one on SQLite refuses it
// (STATE_MIGRATED, state-dir.ts); if that step fails, the etcd writes are undone and state.db is as it was.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fail, isMacnetError, MacnetError } from '../errors';
import { claimInstance } from '../kernel/instance';
import type { EtcdOptions } from '../store/etcd-options';
import { MemoryStore } from '../store/memory';
import { assertKnownSchema, migrate, SCHEMA_KEY, schemaVersion } from '../store/schema';
import { SqliteStore } from '../store/sqlite';
import type { Entry, Store } from '../store/types';
import { ADDRESSES, POOLS, STICKY } from '../ipam/keys';
import { directoryOption, parseCommandArgs } from './args';
import { applyPlan, CHUNK, markerPrefix } from './migrate-write';
import { IPAM, planMigration, type ClusterSnapshot, type Plan } from './migrate-plan';
import { ETCD_ARGS, ETCD_HELP, etcdWhere, parseStoreOptions } from './store-open';
import { existingHostId, newHostId, removeHostId, writeHostId } from './state-dir';

export const STORE_MIGRATE_HELP = `Usage: macnet store migrate --to etcd --etcd-endpoints URL[,URL...] [etcd options]
                            [--state-dir DIR] [--dry-run]

Moves this host's address pools from SQLite (state.db in the state dir) into etcd, where the daemon then runs
with --store etcd (docs/cluster.md). Containers keep running meanwhile; the daemon must be stopped:

  systemctl stop macnet.socket macnet.service     (or stop the daemon however it runs)
  macnet store migrate --to etcd --etcd-endpoints ...
  macnet daemon --store etcd --etcd-endpoints ...  (the same etcd options; in the unit's ExecStart)

Nothing is written while anything conflicts with what etcd holds (STORE_MIGRATE_CONFLICT names each): an
address etcd holds for another host, a pool on the same subnet with another ip-range or mode, another key
layout version, addresses of this host id already in etcd or a daemon of it running there. Then the pools
(merged with identical ones of other hosts), the gateway, the addresses (named as this host's) and the sticky
names go in etcd transactions, and their keys are deleted from state.db in one SQLite transaction: all of it,
or after a failure none. This host's own records (networks, endpoints, parents, host-access links, DHCP
leases) stay in state.db; a daemon started on SQLite there later refuses (STATE_MIGRATED).

Options:
  --to etcd                    the store to move to (required; the only one)
  --state-dir DIR              the daemon's state dir (default /var/lib/macnet); its host-id names this
                               host in etcd (made here if it has none)
  --dry-run                    check and print the plan; write nothing
${ETCD_HELP}`;

export interface StoreMigrateOptions {
  readonly stateDir: string;
  readonly etcd: EtcdOptions;
  readonly dryRun: boolean;
}

export function parseStoreArgs(argv: string[]): StoreMigrateOptions {
  const { values, positionals } = parseCommandArgs(
    'store',
    argv,
    { to: { type: 'string' }, 'state-dir': { type: 'string' }, 'dry-run': { type: 'boolean' }, ...ETCD_ARGS },
    true,
  );
  if (positionals.length !== 1 || positionals[0] !== 'migrate')
    throw new MacnetError(
      'INVALID_ARGUMENT',
      `store: ${positionals.length ? `unknown subcommand ${JSON.stringify(positionals.join(' '))}` : 'no subcommand'}` +
        '; valid: macnet store migrate --to etcd ...',
      { command: 'store' },
    );
  const to = values.to;
  if (to !== 'etcd')
    throw fail('OPTION_INVALID', {
      option: 'to',
      value: to ?? '',
      valid: 'give --to etcd (the state is read from SQLite in --state-dir; etcd is the one store to move to)',
    });
  const choice = parseStoreOptions({ ...values, store: 'etcd' });
  if (choice.kind !== 'etcd') throw new Error('unreachable: --store etcd parsed as sqlite');
  return {
    stateDir: directoryOption('state-dir', values['state-dir'] ?? '/var/lib/macnet'),
    etcd: choice.etcd,
    dryRun: values['dry-run'] ?? false,
  };
}

const say = (line: string) => process.stdout.write(`${line}\n`);
/** A failed condition means etcd changed between the read and the write: read and plan again, this often. */
const ATTEMPTS = 3;

export async function storeMigrate(o: StoreMigrateOptions): Promise<number> {
  const file = path.join(o.stateDir, 'state.db');
  if (!fs.existsSync(file))
    throw fail('OPTION_INVALID', {
      option: 'state-dir',
      value: o.stateDir,
      valid: 'it holds no state.db: give the --state-dir of the daemon that ran on SQLite',
    });
  let instance;
  try {
    // Held to the end: no daemon starts on this state dir, or in this namespace, while its records move.
    instance = await claimInstance(o.stateDir, { createStateDir: false });
  } catch (e) {
    if (!isMacnetError(e, 'DAEMON_ALREADY_RUNNING')) throw e;
    throw new MacnetError(
      'DAEMON_ALREADY_RUNNING',
      `${e.message}. The migration needs the daemon stopped (containers keep running): stop it, run macnet ` +
        'store migrate again, then start the daemon with --store etcd and the same etcd options',
      e.details,
    );
  }
  try {
    return await migrateLocked(o, file);
  } finally {
    instance.release();
  }
}

async function migrateLocked(o: StoreMigrateOptions, file: string): Promise<number> {
  const local = await readSqlite(file);
  if (!local.some((e) => e.key.startsWith(POOLS))) {
    // Nothing to move: a host that never made a network, or one migrated (or run on etcd) already.
    say(`${file} holds no address pool: nothing to move; start the daemon with --store etcd`);
    return 0;
  }
  const where = etcdWhere(o.etcd);
  // Loaded here only, as in store-open.ts: etcd3 and gRPC take a fifth of a second to load.
  const { EtcdStore } = await import('../store/etcd');
  const etcd = await EtcdStore.open(o.etcd);
  try {
    const known = existingHostId(o.stateDir);
    const host = known ?? newHostId();
    for (let attempt = 1; ; attempt++) {
      const plan = planMigration(local, await readCluster(etcd, host), host);
      if (plan.conflicts.length) throw fail('STORE_MIGRATE_CONFLICT', { etcd: where, conflicts: plan.conflicts });
      if (o.dryRun || attempt === 1) printPlan(plan, o, file, where, host, known === undefined);
      if (o.dryRun) {
        say('dry run: nothing was written');
        return 0;
      }
      // Before the first write: the records in etcd are found by it.
      if (known === undefined) writeHostId(o.stateDir, host);
      let deleted = 0;
      const r = await applyPlan(etcd, host, plan.steps, plan.stickies, async () => {
        deleted = await deleteMoved(file);
      });
      if (r.ok) {
        say(
          `moved to ${where} in ${r.transactions} transactions: ${summary(plan)}; sticky names ${r.stickies} ` +
            `written, ${r.stickiesKept + plan.counts.stickiesKept} kept (etcd's)`,
        );
        say(
          `${file}: its ${deleted} ipam/ keys deleted; this host's own records stay there (a daemon on SQLite ` +
            'there refuses to start)',
        );
        if (r.markersLeft?.length)
          say(
            `warning: etcd failed at the very end: delete the markers ${r.markersLeft.join(', ')} ` +
              `(etcdctl del --prefix ${o.etcd.prefix ?? 'macnet/'}${markerPrefix(host)}); until then a new ` +
              'migrate of this host id refuses; the migration itself is complete',
          );
        say(
          `next: start the daemon with --store etcd and the same etcd options, and --state-dir ${o.stateDir} ` +
            `(its host-id, ${host}, names this host in etcd)`,
        );
        return 0;
      }
      if (known === undefined && r.leftover.length === 0) removeHostId(o.stateDir);
      if (r.changed && attempt < ATTEMPTS) {
        say(`etcd changed while writing (another host); everything written was undone; trying again`);
        continue;
      }
      const undone = r.leftover.length
        ? `could not undo (etcd failed meanwhile; delete them with etcdctl, prefix ${o.etcd.prefix ?? 'macnet/'}): ` +
          `${r.leftover.join(', ')}; the state dir keeps host-id for them`
        : 'everything written was undone';
      const cause = r.error instanceof Error ? r.error.message : String(r.error);
      const why = r.changed
        ? `etcd kept changing while writing (${ATTEMPTS} attempts)`
        : r.lastFailed
          ? `everything was in etcd, but deleting the moved ipam/ keys from ${file} in one transaction failed ` +
            `(${cause}; fix its cause: free space, permissions, the file's health)`
          : `a write failed: ${cause}`;
      throw new MacnetError(
        isMacnetError(r.error) ? r.error.code : 'STORE_ERROR',
        `store migrate to ${where}: ${why}; ${undone}; the SQLite state is unchanged: migrate again`,
        { leftover: r.leftover },
        r.error,
      );
    }
  } finally {
    await etcd.close();
  }
}

/**
 * Every entry of the SQLite state, in this macnet's key layout: an older layout is migrated on a copy in memory,
 * so that a dry run, a conflict or a failed write leaves the file exactly as it was (deleteMoved, the last step,
 * is the only write to it).
 */
async function readSqlite(file: string): Promise<Entry[]> {
  const sqlite = SqliteStore.open(file);
  let entries: Entry[];
  try {
    await assertKnownSchema(sqlite, file);
    entries = await sqlite.list('');
  } finally {
    await sqlite.close();
  }
  const copy = new MemoryStore();
  for (const e of entries) await copy.put(e.key, e.value);
  await migrate(copy, file);
  return copy.list('');
}

async function readCluster(store: Store, host: string): Promise<ClusterSnapshot> {
  // Loaded here, not at the top: presence.ts loads etcd3, which no other macnet command should pay for.
  const { presenceKey } = await import('../store/presence');
  const schema = (await store.get(SCHEMA_KEY)) ? await schemaVersion(store, 'etcd') : undefined;
  return {
    schema,
    keysWithoutSchema: schema === undefined ? (await store.list('')).length : 0,
    pools: await store.list(POOLS),
    addresses: await store.list(ADDRESSES),
    stickies: await store.list(STICKY),
    present: (await store.get(presenceKey(host)))?.key,
    markers: (await store.list(markerPrefix(host))).map((e) => e.key),
  };
}

function summary(plan: Plan): string {
  const c = plan.counts;
  return (
    `pools ${c.poolsNew} new, ${c.poolsMerged} merged; gateways ${c.gatewaysNew} new, ${c.gatewaysMerged} merged; ` +
    `${c.addresses} addresses; staying in SQLite: ${c.networks} networks, ${c.endpoints} endpoints, ` +
    `${c.parents} parents, ${c.hostAccess} host-access links, ${c.leases} DHCP leases`
  );
}

function printPlan(plan: Plan, o: StoreMigrateOptions, file: string, where: string, host: string, newId: boolean) {
  const id = newId ? ` (a new host id, ${o.dryRun ? 'made for this run only' : 'written to host-id'})` : '';
  say(`migrating ${file} to ${where} as host ${host}${id}`);
  for (const l of plan.lines) say(`  ${l}`);
  say(`  ${summary(plan)}`);
  say(
    `  sticky names: ${plan.counts.stickies} to write, ${plan.counts.stickiesKept} kept (etcd has the name)` +
      (plan.counts.residue
        ? `; ${plan.counts.residue} records of subnets without a pool, or old cursors, not moved`
        : ''),
  );
  say(`  ${plan.steps.length} writes in ${Math.ceil(plan.steps.length / (CHUNK - 1))} transactions, then the names`);
  if (o.dryRun) say(`  then ${file}'s ipam/ keys would be deleted in one transaction`);
}

/**
 * The last step: the moved keys out of state.db, in one transaction, so that the daemon on etcd accepts the state
 * dir. Every ipam/ key goes (what was not moved is a crash's residue, never read on etcd). The file's key layout
 * is brought up to date first, as the daemon does at every start, so that the keys are those that were read (an
 * older layout was read through a migrated copy). Returns how many were deleted.
 */
async function deleteMoved(file: string): Promise<number> {
  const sqlite = SqliteStore.open(file);
  try {
    await migrate(sqlite, file);
    const keys = await sqlite.list(IPAM);
    try {
      // At the revisions read: nothing else writes the file (the instance claim is held), so this holds.
      if (!(await sqlite.txn(keys.map((e) => ({ op: 'delete', key: e.key, revision: e.revision })))))
        throw new Error(`${file} changed while migrating`);
    } catch (e) {
      // A commit that raised but went through after all is not undone in etcd: read back.
      if ((await sqlite.list(POOLS)).length === 0) return keys.length;
      throw e;
    }
    return keys.length;
  } finally {
    await sqlite.close();
  }
}
