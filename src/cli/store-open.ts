// The daemon's store: SQLite in the state dir (the default), or etcd shared by several hosts (issue 19,
// docs/cluster.md). Its options are checked here before the daemon touches anything, and the store is opened and
// its key layout migrated here, so that daemon.ts only wires services.
//
// With etcd, the pool (ipam/...) and the layout version (meta/schema) are shared by every host on the same etcd
// and prefix; what only concerns one host (its driver records: networks, endpoints, parents and host-access
// links; its DHCP leases, renewed by it alone) lives under hosts/<host id>/, a view of the same store
// (store/scoped.ts). The host id is made once and kept in the state dir, beside the instance claim.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fail, MacnetError } from '../errors';
import { DEFAULT_PREFIX, DEFAULT_REQUEST_TIMEOUT_MS, type EtcdOptions } from '../store/etcd-options';
import { migrate, type Migrated } from '../store/schema';
import { scoped } from '../store/scoped';
import { SqliteStore } from '../store/sqlite';
import type { Store } from '../store/types';

/** Read from the environment when --etcd-password-file is not given (never a command-line value: ps shows those). */
export const ETCD_PASSWORD_ENV = 'MACNET_ETCD_PASSWORD';

/** The command-line options of this file, for parseCommandArgs. */
export const ETCD_ARGS = {
  'etcd-endpoints': { type: 'string' },
  'etcd-cacert': { type: 'string' },
  'etcd-cert': { type: 'string' },
  'etcd-key': { type: 'string' },
  'etcd-user': { type: 'string' },
  'etcd-password-file': { type: 'string' },
  'etcd-prefix': { type: 'string' },
} as const;

export const STORE_ARGS = { store: { type: 'string' }, ...ETCD_ARGS } as const;

/** The etcd options' help, shared by the daemon's and `macnet store migrate`'s. */
export const ETCD_HELP = `\
  --etcd-endpoints URL[,URL...]
                               etcd members' client URLs, http:// or https:// (all the same scheme)
  --etcd-cacert FILE           the CA that signed the members' certificates (needed with https://)
  --etcd-cert FILE, --etcd-key FILE
                               this host's client certificate and its key (members with --client-cert-auth)
  --etcd-user USER             etcd user; the password is read from --etcd-password-file FILE (first line)
                               or from the environment variable ${ETCD_PASSWORD_ENV}, never from the
                               command line
  --etcd-prefix PREFIX         every key under PREFIX, ending in / (default ${DEFAULT_PREFIX})
                               (a request unanswered for ${DEFAULT_REQUEST_TIMEOUT_MS} ms fails: STORE_UNAVAILABLE)
`;

export const STORE_HELP = `\
  --store sqlite|etcd          where the state lives: SQLite in the state dir (default), or etcd,
                               shared by every host on the same etcd and prefix (docs/cluster.md)
${ETCD_HELP}`;

export type StoreChoice = { readonly kind: 'sqlite' } | { readonly kind: 'etcd'; readonly etcd: EtcdOptions };

type Values = { [K in keyof typeof STORE_ARGS]?: string };

/** A file an option names: readable now (by this user), or OPTION_INVALID with the errno. */
function readableFile(option: string, file: string): string {
  try {
    if (!fs.statSync(file).isFile()) throw Object.assign(new Error('not a regular file'), { code: 'not a file' });
    fs.accessSync(file, fs.constants.R_OK);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw fail('OPTION_INVALID', {
      option,
      value: file,
      valid: `cannot read it (${err.code ?? err.message}): give a readable file`,
    });
  }
  return file;
}

/** Checks the store options (before anything is touched) and reads the password, if any. */
export function parseStoreOptions(v: Values, env: NodeJS.ProcessEnv = process.env): StoreChoice {
  const kind = v.store ?? 'sqlite';
  if (kind !== 'sqlite' && kind !== 'etcd')
    throw fail('OPTION_INVALID', { option: 'store', value: kind, valid: 'use sqlite or etcd' });
  const etcdGiven = (Object.keys(STORE_ARGS) as (keyof Values)[]).filter((k) => k !== 'store' && v[k] !== undefined);
  if (kind === 'sqlite') {
    const first = etcdGiven[0];
    if (first)
      throw fail('OPTION_INVALID', {
        option: first,
        value: v[first]!,
        valid: 'etcd options need --store etcd (the store is sqlite)',
      });
    return { kind };
  }
  const list = v['etcd-endpoints'];
  if (list === undefined || list.trim() === '')
    throw fail('OPTION_INVALID', {
      option: 'etcd-endpoints',
      value: list ?? '',
      valid: '--store etcd needs the members: URL[,URL...], e.g. https://198.18.0.1:2379',
    });
  const endpoints = list.split(',').map((u) => endpoint(u.trim()));
  const tls = endpoints[0]!.startsWith('https:');
  if (endpoints.some((u) => u.startsWith('https:') !== tls))
    throw fail('OPTION_INVALID', {
      option: 'etcd-endpoints',
      value: list,
      valid: 'give every member with the same scheme, all http:// or all https://',
    });
  const ca = v['etcd-cacert'];
  const cert = v['etcd-cert'];
  const key = v['etcd-key'];
  if (tls && ca === undefined)
    throw fail('OPTION_INVALID', {
      option: 'etcd-cacert',
      value: '',
      valid: "https:// endpoints need the CA that signed the members' certificates: --etcd-cacert FILE",
    });
  if (!tls)
    for (const [option, value] of [
      ['etcd-cacert', ca],
      ['etcd-cert', cert],
      ['etcd-key', key],
    ] as const)
      if (value !== undefined)
        throw fail('OPTION_INVALID', { option, value, valid: 'TLS files need https:// endpoints' });
  if ((cert === undefined) !== (key === undefined)) {
    const [option, value, other] = cert === undefined ? ['etcd-key', key!, 'cert'] : ['etcd-cert', cert, 'key'];
    throw fail('OPTION_INVALID', { option, value, valid: `give --etcd-${other} FILE with it` });
  }
  const user = v['etcd-user'];
  const pwFile = v['etcd-password-file'];
  let password: string | undefined;
  if (pwFile !== undefined) {
    if (user === undefined)
      throw fail('OPTION_INVALID', {
        option: 'etcd-password-file',
        value: pwFile,
        valid: 'give --etcd-user USER with it',
      });
    password = fs.readFileSync(readableFile('etcd-password-file', pwFile), 'utf8').split('\n')[0]!;
    if (password === '')
      throw fail('OPTION_INVALID', {
        option: 'etcd-password-file',
        value: pwFile,
        valid: 'its first line is empty: write the password there',
      });
  } else if (user !== undefined) {
    password = env[ETCD_PASSWORD_ENV];
    if (!password)
      throw fail('OPTION_INVALID', {
        option: 'etcd-user',
        value: user,
        valid: `give the password in --etcd-password-file FILE or the environment variable ${ETCD_PASSWORD_ENV}`,
      });
  }
  if (user !== undefined && (user === '' || /[\s:]/.test(user)))
    throw fail('OPTION_INVALID', { option: 'etcd-user', value: user, valid: 'give a user name without spaces or ":"' });
  const prefix = v['etcd-prefix'] ?? DEFAULT_PREFIX;
  // Ending in "/": "macnet" would also cover "macnet2/...", another cluster's keys.
  if (!/^[\x21-\x7e]*\/$/.test(prefix) || prefix.startsWith('/'))
    throw fail('OPTION_INVALID', {
      option: 'etcd-prefix',
      value: prefix,
      valid: 'give printable characters without spaces, ending in / and not starting with it, e.g. macnet/',
    });
  return {
    kind,
    etcd: {
      endpoints,
      prefix,
      ...(tls && {
        tls: {
          ca: readableFile('etcd-cacert', ca!),
          ...(cert !== undefined && { cert: readableFile('etcd-cert', cert), key: readableFile('etcd-key', key!) }),
        },
      }),
      ...(user !== undefined && { auth: { user, password: password! } }),
    },
  };
}

/** One member's client URL: http(s)://host:port and nothing else. */
function endpoint(u: string): string {
  let url: URL | undefined;
  try {
    url = new URL(u);
  } catch {
    /* refused below */
  }
  if (
    !url ||
    (url.protocol !== 'http:' && url.protocol !== 'https:') ||
    !url.hostname ||
    (url.pathname !== '/' && url.pathname !== '') ||
    url.search ||
    url.hash ||
    url.username
  )
    throw fail('OPTION_INVALID', {
      option: 'etcd-endpoints',
      value: u,
      valid: 'give http://HOST:PORT or https://HOST:PORT for each member, comma-separated',
    });
  return `${url.protocol}//${url.host}`;
}

export interface OpenedStore {
  /** What every host shares: the IPAM's pools and addresses, the layout version. */
  readonly shared: Store;
  /** What is this host's alone: the driver's records and DHCP leases (the same store as `shared` on SQLite). */
  readonly local: Store;
  readonly migrated: Migrated;
  /** With etcd: this host's id among the hosts sharing it (hostId). */
  readonly host?: string;
  /** Where the state is, for messages and the "ready" line. */
  readonly where: string;
  close(): Promise<void>;
}

/** The name `macnet store migrate` gives state.db once its records are in etcd (store-migrate.ts). */
export const MIGRATED = 'state.db.migrated-';

/**
 * A state dir whose records moved to etcd: a daemon on SQLite there would start empty and take the running
 * containers' networks for unknown (and remove links of theirs), so it is refused.
 */
function refuseMigrated(stateDir: string, file: string): void {
  if (fs.existsSync(file) || !fs.existsSync(stateDir)) return;
  const kept = fs
    .readdirSync(stateDir)
    .filter((f) => f.startsWith(MIGRATED) && !/-(wal|shm)$/.test(f))
    .sort();
  const last = kept[kept.length - 1];
  if (last === undefined) return;
  throw new MacnetError(
    'STATE_MIGRATED',
    `${file}: this state dir was moved to etcd by macnet store migrate (kept as ${last}); nothing was changed: ` +
      'start the daemon with --store etcd and the etcd options the migration was given; to go back to SQLite ' +
      `(the records as they were at the migration), rename ${last} to state.db`,
    { path: file, kept: last },
  );
}

/** An etcd store as messages name it: its endpoints and prefix. */
export const etcdWhere = (etcd: EtcdOptions): string =>
  `etcd ${etcd.endpoints.join(',')} prefix ${etcd.prefix ?? DEFAULT_PREFIX}`;

/** Opens the chosen store and brings its layout up to date; on failure nothing stays open. */
export async function openStore(choice: StoreChoice, stateDir: string): Promise<OpenedStore> {
  if (choice.kind === 'sqlite') {
    const file = path.join(stateDir, 'state.db');
    refuseMigrated(stateDir, file);
    const store = SqliteStore.open(file);
    try {
      const migrated = await migrate(store, file);
      return { shared: store, local: store, migrated, where: file, close: () => store.close() };
    } catch (e) {
      await store.close();
      throw e;
    }
  }
  const where = etcdWhere(choice.etcd);
  // Fails within the request deadline (DEFAULT_REQUEST_TIMEOUT_MS) with STORE_UNAVAILABLE naming the endpoints.
  // Loaded here only: etcd3 and gRPC take a fifth of a second to load, which no SQLite host should pay.
  const { EtcdStore } = await import('../store/etcd');
  const store = await EtcdStore.open(choice.etcd);
  try {
    const migrated = await migrate(store, where);
    const host = hostId(stateDir);
    const local = scoped(store, `hosts/${host}/`);
    return { shared: store, local, migrated, host, where, close: () => store.close() };
  } catch (e) {
    await store.close();
    throw e;
  }
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
  const file = path.join(stateDir, 'host-id');
  try {
    const id = fs.readFileSync(file, 'utf8').trim();
    if (/^[\w.-]+$/.test(id)) return id;
    // Never replaced by a new one: this host's records in etcd are found by it.
    throw new MacnetError(
      'STORE_ERROR',
      `${file} holds ${JSON.stringify(id.slice(0, 40))}, not a host id: restore it ` +
        '(its records in etcd are under hosts/<id>/)',
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
  fs.writeFileSync(path.join(stateDir, 'host-id'), `${id}\n`, { mode: 0o600 });
}
