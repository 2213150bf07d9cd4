// The catalogue's message templates (catalogue.ts names each code's): the wording of the message shapes that
// recur, made from the facts a call site has, so that every site that raises one says it the same way.
import { clip } from './clip';

/** A message and the machine-readable details that go with it (MacnetError's message and details). */
export interface Formatted {
  readonly message: string;
  readonly details: Record<string, unknown>;
}

/**
 * OPTION_INVALID, "SUBJECT VALUE is not valid: VALID": a command-line flag (`--log-level "x"`, the default), a
 * network's `-o` option (`option mode="x"`) or an `--ipam-opt` of a plugin call (`RequestPool: --ipam-opt
 * mode="x"`). Values from Docker are clipped.
 */
export type OptionFacts =
  | { readonly option: string; readonly value: string; readonly valid: string; readonly as?: 'flag' }
  | { readonly option: string; readonly value: unknown; readonly valid: string; readonly as: 'driver-opt' }
  | {
      readonly option: string;
      readonly value: string;
      readonly valid: string;
      readonly as: 'ipam-opt';
      readonly call: string;
    };

/** INVALID_ARGUMENT, the same shape for any other named value: `route gateway "x"`, `arp_ignore 9`. */
export interface ValueFacts {
  /** What the value is, as the message names it: "route gateway", "mtu". */
  readonly what: string;
  readonly value: unknown;
  /** What would be valid; without it the message ends at "is not valid". */
  readonly valid?: string;
  readonly details: Record<string, unknown>;
}

const notValid = (subject: string, valid: string | undefined) =>
  valid === undefined ? `${subject} is not valid` : `${subject} is not valid: ${valid}`;

export function optionInvalid(f: OptionFacts): Formatted {
  if (f.as === 'driver-opt')
    return {
      message: notValid(`option ${f.option}=${clip(f.value)}`, f.valid),
      details: { option: f.option, value: clip(f.value) },
    };
  if (f.as === 'ipam-opt')
    return {
      message: `${f.call}: ${notValid(`--ipam-opt ${f.option}=${clip(f.value)}`, f.valid)}`,
      details: { option: f.option, value: f.value },
    };
  return {
    message: notValid(`--${f.option} ${JSON.stringify(f.value)}`, f.valid),
    details: { option: f.option, value: f.value },
  };
}

export const valueInvalid = (f: ValueFacts): Formatted => ({
  message: notValid(`${f.what} ${JSON.stringify(f.value)}`, f.valid),
  details: f.details,
});

/**
 * A network Docker (or a user) names that macnet has no record of: in a plugin call (`call`, the network's id),
 * in `macnet scan` or `macnet doctor --network` as Docker resolves the name (`docker`, the socket asked) or as
 * the daemon looks up the id (`daemon`), or a subnet the DHCP client needs a network's link for.
 */
export type NetworkFacts =
  | { readonly call: string; readonly network: string }
  | { readonly call: 'scan' | 'doctor'; readonly network: string; readonly docker: string }
  | { readonly call: 'scan'; readonly network: string; readonly daemon: true }
  | { readonly call: 'DHCP'; readonly subnet: string };

export function networkNotFound(f: NetworkFacts): Formatted {
  if ('subnet' in f)
    return {
      message:
        `DHCP: no macnet network on this host uses subnet ${f.subnet} ` + '(is the network being created or removed?)',
      details: { subnet: f.subnet },
    };
  const details = { network: f.network };
  if ('docker' in f)
    return {
      message:
        `${f.call}: Docker at unix://${f.docker} has no network ${JSON.stringify(f.network)}` +
        '; `docker network ls --filter driver=macnet` lists the macnet networks',
      details,
    };
  if ('daemon' in f)
    return {
      message:
        `scan: no macnet network with id ${JSON.stringify(f.network)} (or an id starting so) on this ` +
        'daemon; `docker network ls --filter driver=macnet` lists the networks macnet serves',
      details,
    };
  return {
    message: `${f.call}: network ${f.network.slice(0, 12)} is not known to macnet (was its state dir removed?)`,
    details,
  };
}

export interface EndpointFacts {
  readonly call: string;
  readonly endpoint: string;
  readonly network: string;
}

export const endpointNotFound = (f: EndpointFacts): Formatted => ({
  message: `${f.call}: endpoint ${f.endpoint.slice(0, 12)} of network ${f.network.slice(0, 12)} is not known to macnet`,
  details: { endpoint: f.endpoint },
});

export const poolNotFound = (f: { readonly call: string; readonly poolId: string }): Formatted => ({
  message: `${f.call}: no pool with ID ${clip(f.poolId)} (was its network removed?)`,
  details: { poolId: clip(f.poolId) },
});

/** An etcd operation that failed: what was asked of which endpoints, why, and the last error seen. */
export interface EtcdFacts {
  readonly op: string;
  readonly key: string;
  readonly endpoints: readonly string[];
  readonly timeoutMs: number;
  readonly reason: string;
  /** The last error, described (src/store/etcd-errors.ts). */
  readonly lastError: string;
  /** A write etcd received but did not confirm: it may or may not have been applied (details.applied 'unknown'). */
  readonly unconfirmed?: boolean;
}

/** A stored record macnet cannot read: its key, what was reading it ("IPAM load") and why. */
export interface RecordFacts {
  readonly context: string;
  readonly record: string;
  readonly error: string;
}

/** STORE_ERROR: an etcd request refused, or a record that cannot be read (src/store/records.ts). */
export const storeError = (f: EtcdFacts | RecordFacts): Formatted =>
  'record' in f
    ? { message: `${f.context}: unreadable record ${f.record}: ${f.error}`, details: { key: f.record } }
    : etcdFailed(f);

export const etcdFailed = (f: EtcdFacts): Formatted => ({
  message:
    `store ${f.op} ${JSON.stringify(f.key)} on etcd ${f.endpoints.join(',')}: ` +
    `${f.reason}; last error: ${f.lastError}`,
  details: {
    op: f.op,
    key: f.key,
    endpoints: [...f.endpoints],
    timeoutMs: f.timeoutMs,
    ...(f.unconfirmed && { applied: 'unknown' }),
  },
});

/** One record of a SQLite state that etcd cannot take as it is (`macnet store migrate`, src/cli/migrate-plan.ts). */
export interface MigrateConflict {
  /** The etcd key (under the prefix) the conflict is about. */
  readonly key: string;
  /** What clashes, in words: the address and its owner, the pools that differ, the versions. */
  readonly what: string;
  /** The other host, when etcd names one. */
  readonly host?: string;
}

/** STORE_MIGRATE_CONFLICT: every conflict found, each named, before anything was written. */
export interface MigrateConflictFacts {
  /** The etcd store: endpoints and prefix. */
  readonly etcd: string;
  readonly conflicts: readonly MigrateConflict[];
}

/** Conflicts named in the message; the rest are counted (all are in the details). */
const CONFLICTS_SHOWN = 20;

export function migrateConflict(f: MigrateConflictFacts): Formatted {
  const n = f.conflicts.length;
  const shown = f.conflicts.slice(0, CONFLICTS_SHOWN).map((c) => `${c.key}: ${c.what}`);
  if (n > CONFLICTS_SHOWN) shown.push(`and ${n - CONFLICTS_SHOWN} more`);
  return {
    message:
      `store migrate to ${f.etcd}: ${n} conflict${n === 1 ? '' : 's'} with what etcd holds; nothing was written ` +
      `to etcd and the SQLite state is unchanged: ${shown.join('; ')}`,
    details: { etcd: f.etcd, conflicts: f.conflicts.map((c) => ({ ...c })) },
  };
}

/**
 * An address in use by another machine: on the LAN (`mac` answered a probe, or is probing for it right now), or
 * offered by the DHCP server while a container or the gateway on this host (`holder`) already uses it.
 */
export type ConflictFacts =
  | {
      readonly address: string;
      readonly mac: string;
      readonly reason: 'answered' | 'probing';
      readonly subnet: string;
    }
  | { readonly address: string; readonly server: string; readonly holder: string };

export function addressConflict(f: ConflictFacts): Formatted {
  if ('server' in f)
    return {
      message:
        `the DHCP server ${f.server} offered ${f.address}, which ${f.holder} ` +
        "on this host already uses (a static --ip or the gateway inside the server's " +
        "range?); declined it: keep static addresses out of the server's range",
      details: { address: f.address, server: f.server },
    };
  return {
    message:
      `address ${f.address} is in use on the LAN by ${f.mac} (` +
      `${f.reason === 'answered' ? 'it answered a probe' : 'it is probing for the address right now'}` +
      '); pick another address, or create the network with -o conflict=warn to use it anyway',
    details: { address: f.address, mac: f.mac, subnet: f.subnet },
  };
}
