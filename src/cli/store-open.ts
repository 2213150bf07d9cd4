// The daemon's store: SQLite in the state dir (the default), or etcd shared by several hosts (issue 19,
// docs/cluster.md). Its options are checked here before the daemon touches anything, and the store is opened and
// its key layout migrated here, so that daemon.ts only wires services.
//
// With etcd, the pool (ipam/...) and the layout version (meta/schema) are shared by every host on the same etcd
// and prefix; what only concerns one host (its driver records: networks, endpoints, parents and host-access
// links; its DHCP leases, renewed by it alone) stays in SQLite in the state dir, as on a single host. So an etcd
// outage never reaches the driver: a container removed meanwhile loses its link and record at once, and only
// the release of its address waits for etcd (src/ipam/outbox.ts). The host id, this host's name in the shared
// address records, is made once and kept in the state dir, beside the instance claim.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fail } from '../errors';
import { DEFAULT_PREFIX, DEFAULT_REQUEST_TIMEOUT_MS, type EtcdOptions } from '../store/etcd-options';
import { migrate, type Migrated } from '../store/schema';
import { SqliteStore } from '../store/sqlite';
import type { Store } from '../store/types';
import type { Leasing } from '../store/presence';
import { hostId, refuseMigrated, refuseUnmigrated } from './state-dir';

/** Read from the environment when --etcd-password-file is not given (never a command-line value: ps shows those). */
export const ETCD_PASSWORD_ENV = 'MACNET_ETCD_PASSWORD';

/** --lost-host-grace's default: minutes, so that a host rebooting or briefly cut off keeps its addresses. */
export const DEFAULT_LOST_HOST_GRACE_S = 300;

/** The etcd connection's command-line options, for parseCommandArgs. */
export const ETCD_ARGS = {
  'etcd-endpoints': { type: 'string' },
  'etcd-cacert': { type: 'string' },
  'etcd-cert': { type: 'string' },
  'etcd-key': { type: 'string' },
  'etcd-user': { type: 'string' },
  'etcd-password-file': { type: 'string' },
  'etcd-prefix': { type: 'string' },
} as const;

/**
 * The daemon's: the etcd connection (ETCD_ARGS, which `macnet store migrate` takes too) and what only a running
 * daemon uses.
 */
export const STORE_ARGS = { store: { type: 'string' }, ...ETCD_ARGS, 'lost-host-grace': { type: 'string' } } as const;

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
${ETCD_HELP}  --lost-host-grace SECONDS    how long a host must be gone from etcd before the other hosts reclaim the
                               addresses of its containers that do not answer on the LAN (default
                               ${DEFAULT_LOST_HOST_GRACE_S}; 5 to 86400)
`;

export type StoreChoice =
  { readonly kind: 'sqlite' } | { readonly kind: 'etcd'; readonly etcd: EtcdOptions; readonly lostHostGraceMs: number };

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
  const grace = v['lost-host-grace'] ?? String(DEFAULT_LOST_HOST_GRACE_S);
  if (!/^\d+$/.test(grace) || Number(grace) < 5 || Number(grace) > 86_400)
    throw fail('OPTION_INVALID', { option: 'lost-host-grace', value: grace, valid: 'give seconds from 5 to 86400' });
  return {
    kind,
    lostHostGraceMs: Number(grace) * 1000,
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
  /** What is this host's alone: the driver's records and DHCP leases (SQLite; the same store as `shared` there). */
  readonly local: Store;
  readonly migrated: Migrated;
  /** With etcd: this host's id among the hosts sharing it (hostId). */
  readonly host?: string;
  /** With etcd: leases, for this host's presence (src/store/presence.ts). */
  readonly leasing?: Leasing;
  /** Where the state is, for messages and the "ready" line. */
  readonly where: string;
  close(): Promise<void>;
}

/** An etcd store as messages name it: its endpoints and prefix. */
export const etcdWhere = (etcd: EtcdOptions): string =>
  `etcd ${etcd.endpoints.join(',')} prefix ${etcd.prefix ?? DEFAULT_PREFIX}`;

/** Opens the chosen store and brings its layout up to date; on failure nothing stays open. */
export async function openStore(choice: StoreChoice, stateDir: string): Promise<OpenedStore> {
  const file = path.join(stateDir, 'state.db');
  const sqlite = SqliteStore.open(file);
  let shared: Store | undefined;
  try {
    const migrated = await migrate(sqlite, file);
    if (choice.kind === 'sqlite') {
      await refuseMigrated(sqlite, stateDir, file);
      return { shared: sqlite, local: sqlite, migrated, where: file, close: () => sqlite.close() };
    }
    const where = etcdWhere(choice.etcd);
    await refuseUnmigrated(sqlite, file, where);
    // Fails within the request deadline (DEFAULT_REQUEST_TIMEOUT_MS) with STORE_UNAVAILABLE naming the endpoints.
    // Loaded here only: etcd3 and gRPC take a fifth of a second to load, which no SQLite host should pay.
    const { EtcdStore } = await import('../store/etcd');
    const etcd = await EtcdStore.open(choice.etcd);
    shared = etcd;
    const host = hostId(stateDir);
    return {
      shared: etcd,
      local: sqlite,
      migrated: await migrate(etcd, where),
      host,
      leasing: etcd,
      where,
      close: async () => {
        await etcd.close();
        await sqlite.close();
      },
    };
  } catch (e) {
    await shared?.close();
    await sqlite.close();
    throw e;
  }
}
