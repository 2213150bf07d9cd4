// What the state dir says about where its state lives, checked before a daemon serves from it: its host id (this
// host's name in the address records of a cluster store), and whether its address pools are in SQLite (a single
// host's, or a host not yet migrated) or in etcd (a host that ran on etcd, or `macnet store migrate` moved them).
// A daemon started on the wrong store would see networks without pools, or pools that are no longer the truth.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MacnetError } from '../errors';
import { POOLS } from '../ipam/keys';
import type { Store } from '../store/types';

const HOST_ID = 'host-id';
/** The driver's network records (src/drivers/state.ts): what shows that the state dir served networks. */
const NETWORKS = 'driver/networks/';

/**
 * A state dir whose SQLite still holds address pools was a single host's: starting it on etcd would leave its
 * containers' addresses out of the cluster's pool (and its networks without pools). `macnet store migrate --to
 * etcd` moves them first.
 */
export async function refuseUnmigrated(sqlite: Store, file: string, where: string): Promise<void> {
  const pools = await sqlite.list(POOLS);
  if (pools.length === 0) return;
  throw new MacnetError(
    'STORE_ERROR',
    `${file} holds the address pools of ${pools.length} network(s) of this host on SQLite; starting on ${where} ` +
      "would leave their addresses out of the cluster's pool: nothing was changed; stop here, run " +
      '`macnet store migrate --to etcd` with the same etcd options, then start the daemon with --store etcd',
    { path: file, pools: pools.length },
  );
}

/**
 * The reverse: a state dir whose networks' pools are in etcd (it has a host id, and networks but no pool in
 * SQLite). On SQLite the daemon would find networks without pools, hand out addresses etcd gives other hosts, and
 * its containers' addresses would be reclaimed by the cluster once it is taken for gone. Only a state dir with a
 * host id can be one: a fresh one, or one that always ran on SQLite, has none (hostId makes it on etcd only).
 */
export async function refuseMigrated(sqlite: Store, stateDir: string, file: string): Promise<void> {
  const id = existingHostId(stateDir);
  if (id === undefined) return;
  const networks = await sqlite.list(NETWORKS);
  if (networks.length === 0 || (await sqlite.list(POOLS)).length > 0) return;
  throw new MacnetError(
    'STATE_MIGRATED',
    `${file} holds ${networks.length} network(s) whose address pools are in etcd (this state dir ran on etcd ` +
      `as host ${id}, or macnet store migrate moved them there): the daemon did not start; start it with ` +
      '--store etcd and the etcd options of the cluster',
    { path: file, host: id, networks: networks.length },
  );
}

/**
 * This host's name among the hosts of one etcd: made at its first start on etcd (the host name and a random
 * part, so that two hosts with one name differ), kept in the state dir so that a restart finds its records.
 */
export function hostId(stateDir: string): string {
  const known = existingHostId(stateDir);
  if (known !== undefined) return known;
  const id = newHostId();
  writeHostId(stateDir, id);
  return id;
}

/** The host id the state dir holds, if any (`macnet store migrate` makes one only once it writes to etcd). */
export function existingHostId(stateDir: string): string | undefined {
  const file = path.join(stateDir, HOST_ID);
  try {
    const id = fs.readFileSync(file, 'utf8').trim();
    if (/^[\w.-]+$/.test(id)) return id;
    // Never replaced by a new one: this host's records in etcd are found by it.
    throw new MacnetError(
      'STORE_ERROR',
      `${file} holds ${JSON.stringify(id.slice(0, 40))}, not a host id: restore it ` +
        '(the address records in etcd name their host by it)',
      { path: file },
    );
  } catch (e) {
    if (e instanceof MacnetError) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return undefined;
}

export function newHostId(): string {
  const name = os.hostname().replace(/[^\w.-]/g, '-') || 'host';
  return `${name}-${crypto.randomBytes(4).toString('hex')}`;
}

export function writeHostId(stateDir: string, id: string): void {
  fs.writeFileSync(path.join(stateDir, HOST_ID), `${id}\n`, { mode: 0o600 });
}

export function removeHostId(stateDir: string): void {
  fs.rmSync(path.join(stateDir, HOST_ID), { force: true });
}
