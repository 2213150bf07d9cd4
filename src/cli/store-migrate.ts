// `macnet store migrate --to etcd`: a host that ran on SQLite moves its networks' records into etcd (issue 19,
// docs/cluster.md), while its containers keep running (the data path needs no daemon) and its daemon is stopped.
// Reads the SQLite state, checks it against what etcd holds, refuses naming every conflict before it writes
// anything (migrate-plan.ts), then writes in etcd transactions, all or none (migrate-write.ts). The SQLite file is
// kept under another name, so that a daemon started on SQLite later does not take up the state etcd now has.
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
import { applyPlan, CHUNK } from './migrate-write';
import { planMigration, type ClusterSnapshot, type Plan } from './migrate-plan';
import {
  ETCD_HELP,
  etcdWhere,
  existingHostId,
  MIGRATED,
  newHostId,
  parseStoreOptions,
  ETCD_ARGS,
  writeHostId,
} from './store-open';

export const STORE_MIGRATE_HELP = `Usage: macnet store migrate --to etcd --etcd-endpoints URL[,URL...] [etcd options]
                            [--state-dir DIR] [--dry-run]

Moves this host's macnet records from SQLite (state.db in the state dir) into etcd, where the daemon then runs
with --store etcd (docs/cluster.md). Containers keep running meanwhile; the daemon must be stopped:

  systemctl stop macnet.socket macnet.service     (or stop the daemon however it runs)
  macnet store migrate --to etcd --etcd-endpoints ...
  macnet daemon --store etcd --etcd-endpoints ...  (the same etcd options; in the unit's ExecStart)

Nothing is written while anything conflicts with what etcd holds (STORE_MIGRATE_CONFLICT names each): an
address etcd holds for another host, a pool on the same subnet with another ip-range or mode, another key
layout version, this host's id already in etcd. Then the pools (merged with identical ones of other hosts),
the gateway, the addresses, the sticky names and this host's own records (networks, endpoints, parents,
host-access links, DHCP leases) go in etcd transactions: all of them, or after a failure none. state.db is
kept, renamed state.db.migrated-<time>; a daemon started on SQLite there later refuses (STATE_MIGRATED).

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
      valid:
        fs.existsSync(o.stateDir) && fs.readdirSync(o.stateDir).some((f) => f.startsWith(MIGRATED))
          ? `it holds no state.db but ${MIGRATED}...: it was migrated already`
          : 'it holds no state.db: give the --state-dir of the daemon that ran on SQLite',
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
      const r = await applyPlan(etcd, host, plan.steps, plan.stickies);
      if (r.ok) {
        const kept = keepSqlite(file);
        say(
          `moved to ${where} in ${r.transactions} transactions: ${summary(plan)}; sticky names ${r.stickies} ` +
            `written, ${r.stickiesKept + plan.counts.stickiesKept} kept (etcd's)`,
        );
        say(`the SQLite state is kept as ${kept.join(', ')} (a daemon on SQLite there refuses to start)`);
        say(
          `next: start the daemon with --store etcd and the same etcd options, and --state-dir ${o.stateDir} ` +
            `(its host-id, ${host}, names this host in etcd)`,
        );
        return 0;
      }
      if (known === undefined && r.leftover.length === 0) fs.rmSync(path.join(o.stateDir, 'host-id'), { force: true });
      if (r.changed && attempt < ATTEMPTS) {
        say(`etcd changed while writing (another host); everything written was undone; trying again`);
        continue;
      }
      const undone = r.leftover.length
        ? `could not undo (etcd failed meanwhile; delete them with etcdctl, prefix ${o.etcd.prefix ?? 'macnet/'}): ` +
          `${r.leftover.join(', ')}; the state dir keeps host-id for them`
        : 'everything written was undone';
      const why = r.changed
        ? `etcd kept changing while writing (${ATTEMPTS} attempts)`
        : `a write failed: ${r.error instanceof Error ? r.error.message : String(r.error)}`;
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
 * so that the file is read only (it is the state to go back to).
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
  const schema = (await store.get(SCHEMA_KEY)) ? await schemaVersion(store, 'etcd') : undefined;
  return {
    schema,
    keysWithoutSchema: schema === undefined ? (await store.list('')).length : 0,
    pools: await store.list(POOLS),
    addresses: await store.list(ADDRESSES),
    stickies: await store.list(STICKY),
    hostKeys: (await store.list(`hosts/${host}/`)).map((e) => e.key),
  };
}

function summary(plan: Plan): string {
  const c = plan.counts;
  return (
    `${c.networks} networks, ${c.endpoints} endpoints, ${c.parents} parents, ${c.hostAccess} host-access links, ` +
    `${c.leases} DHCP leases; pools ${c.poolsNew} new, ${c.poolsMerged} merged; gateways ${c.gatewaysNew} new, ` +
    `${c.gatewaysMerged} merged; ${c.addresses} addresses`
  );
}

function printPlan(plan: Plan, o: StoreMigrateOptions, file: string, where: string, host: string, newId: boolean) {
  const id = newId ? ` (a new host id, ${o.dryRun ? 'made for this run only' : 'written to host-id'})` : '';
  say(`migrating ${file} to ${where} as host ${host}${id}`);
  for (const l of plan.lines) say(`  ${l}`);
  say(`  ${summary(plan)}`);
  say(
    `  sticky names: ${plan.counts.stickies} to write, ${plan.counts.stickiesKept} kept (etcd has the name)` +
      (plan.counts.residue ? `; ${plan.counts.residue} records of subnets without a pool left behind` : ''),
  );
  say(`  ${plan.steps.length} writes in ${Math.ceil(plan.steps.length / (CHUNK - 1))} transactions, then the names`);
  if (o.dryRun) say(`  ${file} would be renamed ${path.basename(file)}.migrated-<time>`);
}

/** Renames state.db (and its WAL files, if any are left) so that no daemon on SQLite reads it again. */
function keepSqlite(file: string): string[] {
  const stamp = new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const kept: string[] = [];
  for (const suffix of ['', '-wal', '-shm']) {
    const from = `${file}${suffix}`;
    if (!fs.existsSync(from)) continue;
    const to = path.join(path.dirname(file), `${MIGRATED}${stamp}${suffix}`);
    fs.renameSync(from, to);
    kept.push(to);
  }
  return kept;
}
