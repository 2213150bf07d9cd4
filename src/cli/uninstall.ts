// `macnet uninstall [--purge]`: after the last macnet network is gone and the daemon is stopped, removes what
// macnet made in the kernel of the namespace it runs in (src/drivers/uninstall.ts) and, with --purge, its state
// dir; says what it removed and what it leaves (the units, the package), which it never removes itself. On a host
// that ran on etcd, given the etcd options, it first frees this host's address records there (uninstall-etcd.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MacnetError } from '../errors';
import { DriverState } from '../drivers/state';
import { describeNetwork, type MacnetLink, macnetLinks, removeLinks } from '../drivers/uninstall';
import { Kernel } from '../kernel';
import { claimInstance } from '../kernel/instance';
import { assertKnownSchema } from '../store/schema';
import { SqliteStore } from '../store/sqlite';
import type { EtcdOptions } from '../store/etcd-options';
import { directoryOption, parseCommandArgs } from './args';
import { existingHostId } from './state-dir';
import { ETCD_ARGS, ETCD_HELP, parseStoreOptions } from './store-open';
import { describeFreed, freeHostInEtcd, settleKept } from './uninstall-etcd';
import { UNITS } from './units';

export const UNINSTALL_HELP = `Usage: macnet uninstall [--purge] [--state-dir DIR] [--units-dir DIR] [etcd options]

Run it after every macnet network is removed (docker network rm) and the daemon is stopped
(systemctl disable --now macnet.socket macnet.service). Removes every link macnet made in this network
namespace: probe links (mnp...), host-access links (mnh...), endpoint links a crash left (mn + 11 hex) and
the parents it created (vlan, dummy, bridge); with --purge, the state dir too. Says what it removed and what
it leaves: the systemd units and the package, which it never removes itself.

On a host that ran with --store etcd, give the daemon's etcd options (the same --etcd-... as in its unit):
first, this host's address records in etcd (those naming its host id, never a gateway's or a pool) and its
presence key are deleted, so the other hosts may use those addresses at once. If etcd does not answer, it
fails naming the endpoints (STORE_UNAVAILABLE) and removes nothing. Without the etcd options such records
are left to the other hosts, which reclaim them after their --lost-host-grace.

Refuses, removing nothing, while the state dir has networks (NETWORKS_REMAIN, naming them) or while a
daemon runs on the state dir or in this network namespace (DAEMON_ALREADY_RUNNING).

Options:
  --purge            also remove the state dir (addresses, leases, records): a later daemon starts empty
  --state-dir DIR    the daemon's state dir (default /var/lib/macnet)
  --units-dir DIR    where install-units wrote the units, for the closing note (default /etc/systemd/system)
${ETCD_HELP}`;

export interface UninstallOptions {
  readonly purge: boolean;
  readonly stateDir: string;
  readonly unitsDir: string;
  /** Given with the etcd options: this host's records there are freed first. */
  readonly etcd?: EtcdOptions;
}

export function parseUninstallArgs(argv: string[]): UninstallOptions {
  const { values } = parseCommandArgs('uninstall', argv, {
    purge: { type: 'boolean' },
    'state-dir': { type: 'string' },
    'units-dir': { type: 'string' },
    ...ETCD_ARGS,
  });
  const etcdGiven = Object.keys(ETCD_ARGS).some((k) => values[k as keyof typeof ETCD_ARGS] !== undefined);
  const choice = etcdGiven ? parseStoreOptions({ ...values, store: 'etcd' }) : undefined;
  return {
    purge: values.purge ?? false,
    stateDir: directoryOption('state-dir', values['state-dir'] ?? '/var/lib/macnet'),
    unitsDir: directoryOption('units-dir', values['units-dir'] ?? '/etc/systemd/system'),
    ...(choice?.kind === 'etcd' && { etcd: choice.etcd }),
  };
}

const say = (line: string) => process.stdout.write(`${line}\n`);

export async function uninstall(o: UninstallOptions): Promise<number> {
  if (fs.existsSync(o.stateDir) && !fs.statSync(o.stateDir).isDirectory()) {
    throw new MacnetError('OPTION_INVALID', `--state-dir ${JSON.stringify(o.stateDir)} is not a directory`, {
      option: 'state-dir',
      value: o.stateDir,
    });
  }
  // Held to the end: no daemon starts on this state dir or in this namespace while links and state go.
  const instance = await claimInstance(o.stateDir, { createStateDir: false });
  try {
    const file = path.join(o.stateDir, 'state.db');
    const host = fs.existsSync(o.stateDir) ? existingHostId(o.stateDir) : undefined;
    const store = fs.existsSync(file) ? SqliteStore.open(file) : undefined;
    let links: MacnetLink[];
    try {
      let state: DriverState | undefined;
      if (store) {
        // Read only; a newer layout's records may not mean what this version reads in them.
        await assertKnownSchema(store, file);
        state = new DriverState(store);
        const networks = await state.networks();
        if (networks.length) {
          throw new MacnetError(
            'NETWORKS_REMAIN',
            `${networks.length} macnet network${networks.length === 1 ? '' : 's'} remain${
              networks.length === 1 ? 's' : ''
            } in ${o.stateDir}: ${networks.map(describeNetwork).join(', ')}; nothing was removed: remove ` +
              'them first with the daemon running (docker network ls --filter driver=macnet; docker network rm), ' +
              'then stop the daemon and run macnet uninstall again',
            { networks: networks.map((n) => n.config.id) },
          );
        }
      }
      // Before anything local goes: with --purge the host id, by which etcd's records are found, goes too.
      if (host !== undefined && o.etcd) await freeInEtcd(o.etcd, host, o.stateDir);
      await Kernel.with(undefined, async (k) => {
        links = await macnetLinks(k, state);
        await removeLinks(k, links);
      });
    } finally {
      await store?.close();
    }
    for (const l of links!) say(`removed ${l.role} ${l.name} (${l.kind}${l.parent ? ` on ${l.parent}` : ''})`);
    if (links!.length === 0) say('no links of macnet in this network namespace');
    if (!fs.existsSync(o.stateDir)) say(`no state dir at ${o.stateDir}`);
    else if (o.purge) {
      fs.rmSync(o.stateDir, { recursive: true, force: true });
      say(`removed the state dir ${o.stateDir}`);
    } else say(`kept the state dir ${o.stateDir} (--purge removes it)`);
    if (host !== undefined && !o.etcd)
      say(
        o.purge
          ? `left in etcd: the address records of host ${host}, if any (its host id went with the state dir): the ` +
              'other hosts reclaim them after their --lost-host-grace (with the etcd options, macnet uninstall ' +
              'frees them at once)'
          : `left in etcd: the address records of this host (${host}), if any: run macnet uninstall again with ` +
              "the daemon's etcd options (--etcd-endpoints ...) to free them now; otherwise the other hosts " +
              'reclaim them after their --lost-host-grace',
      );
    else if (host === undefined && o.etcd) say('no host id in the state dir: this host has no records in etcd');
  } finally {
    instance.release();
  }
  const units = UNITS.map((u) => path.join(o.unitsDir, u)).filter((f) => fs.existsSync(f));
  say(
    units.length
      ? `left in place: the systemd units ${units.join(' and ')}; to remove them: systemctl disable --now ` +
          `${UNITS.join(' ')}; rm ${units.join(' ')}; systemctl daemon-reload`
      : `left in place: no systemd units of macnet in ${o.unitsDir}`,
  );
  say('left in place: the macnet package; to remove it: npm uninstall -g macnet');
  return 0;
}

/** This host's records in etcd, freed and said; throws (nothing deleted) when etcd cannot be reached. */
async function freeInEtcd(etcd: EtcdOptions, host: string, stateDir: string): Promise<void> {
  const kept = await settleKept(etcd, host, stateDir);
  if (kept) say(`applied ${kept} release(s) kept in ${stateDir} while etcd was unreachable`);
  const done = await freeHostInEtcd(etcd, host);
  say(
    done.freed.length
      ? `freed ${done.freed.length} address record(s) of this host (${host}) in ${done.where}: ` +
          done.freed.map(describeFreed).join(', ')
      : `no address record of this host (${host}) in ${done.where}`,
  );
  if (done.changed.length)
    say(`left in etcd: ${done.changed.map(describeFreed).join(', ')}: changed meanwhile (another host's now)`);
  if (done.names) say(`removed ${done.names} name record(s) of this host in ${done.where}`);
  if (done.presence) say(`removed this host's presence key in ${done.where}`);
}
