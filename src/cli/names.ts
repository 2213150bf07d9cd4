// Names across hosts (docs/names.md), wired: the name records of every host as the DNS answers them (a watched view
// of the store: etcd's shared one, or this host's SQLite), the DNS server on each host-access address of this host,
// and the follower of the Docker Engine's events that writes this host's records. Names are a convenience beside the
// data path: a part that cannot start (the engine not answering yet, port 53 taken on an address) is logged and
// tried again, and never stops the daemon.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { fail } from '../errors';
import { DnsServer } from '../dns/server';
import { upstreamsOf } from '../dns/forward';
import { EngineApi } from '../docker/engine';
import { NamesFollower } from '../docker/names-follow';
import type { NetworkDriver } from '../drivers/driver';
import type { Logger } from '../log';
import { NameWriter } from '../names/records';
import { NameView } from '../names/view';
import { PRESENCE_TTL_S } from '../store/presence';
import type { Store } from '../store/types';
import { dockerSocket } from './scan';

/** How often the DNS's addresses are brought in line with the host-access links (networks come and go). */
export const LISTEN_EVERY_MS = 2000;
/**
 * How long another host's names are still answered after its presence key went (src/names/view.ts): one lease TTL,
 * so a daemon restarted on purpose (key revoked, made again) never blinks, and a crashed host's names go within
 * two TTLs, long before its addresses can be reclaimed (--lost-host-grace, minutes).
 */
export const NAMES_GRACE_MS = PRESENCE_TTL_S * 1000;

export interface NamesOptions {
  readonly enabled: boolean;
  /** The Docker Engine API's unix socket (--docker-host). */
  readonly dockerSocket: string;
  /** This host's DNS label: `<name>.<label>` (--dns-host-label). */
  readonly label: string;
}

export const NAMES_ARGS = {
  'no-dns': { type: 'boolean' },
  'docker-host': { type: 'string' },
  'dns-host-label': { type: 'string' },
} as const;

export const NAMES_HELP = [
  '  --no-dns                     no names across hosts: no DNS on the host-access addresses, no name records',
  '  --docker-host URL            the Docker Engine API the names come from (default DOCKER_HOST, else',
  '                               unix:///var/run/docker.sock)',
  '  --dns-host-label LABEL       this host in names: <container>.<LABEL> (default the host name, lower case)',
  '',
].join('\n');

/** A DNS label (RFC 1123): letters, digits and '-', 1 to 63, not starting or ending with '-'. */
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function parseNamesOptions(values: {
  'no-dns'?: boolean;
  'docker-host'?: string;
  'dns-host-label'?: string;
}): NamesOptions {
  const given = values['dns-host-label'];
  if (given !== undefined && !LABEL.test(given.toLowerCase()))
    throw fail('OPTION_INVALID', {
      option: 'dns-host-label',
      value: given,
      valid: "give a DNS label: letters, digits and '-', 1 to 63 characters, not starting or ending with '-'",
    });
  const label = given?.toLowerCase() ?? labelOf(os.hostname());
  return { enabled: !values['no-dns'], dockerSocket: dockerSocket(values['docker-host']), label };
}

/**
 * The default label: the host name's first part, made a DNS label (a machine without a name, "(none)" in a bare VM,
 * or with characters DNS does not take still starts: only a label given on purpose is refused).
 */
export function labelOf(hostname: string): string {
  const cleaned = (hostname.split('.')[0] ?? '')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return cleaned || 'host';
}

export interface NamesDeps {
  readonly store: Store;
  readonly hostId: string;
  /** A cluster store with presence keys (etcd): other hosts' names are answered while they are present. */
  readonly presence: boolean;
  readonly driver: NetworkDriver;
  readonly log: Logger;
}

/** Starts the names; returns what stops them. */
export async function startNames(d: NamesDeps, o: NamesOptions): Promise<() => Promise<void>> {
  if (!o.enabled) return async () => undefined;
  const log = d.log.child({ part: 'names' });
  const view = new NameView(d.store, {
    presence: d.presence,
    self: d.hostId,
    graceMs: NAMES_GRACE_MS,
    selfLabel: o.label,
  });
  try {
    await view.start();
  } catch (e) {
    log.error('names: not started: the name records could not be read', { error: (e as Error).message });
    return async () => view.close();
  }
  const dns: DnsServer = new DnsServer({
    table: view.names,
    upstreams: () => upstreamsOf(readOr('/etc/resolv.conf'), dns.addresses),
    log,
  });
  const follower = new NamesFollower(
    new EngineApi(o.dockerSocket),
    d.driver,
    new NameWriter(d.store, d.hostId, o.label),
    log,
  );
  follower.start();
  const refused = new Set<string>();
  let busy = false;
  const listen = async () => {
    if (busy) return;
    busy = true;
    try {
      const want = new Set(await d.driver.hostAccessAddresses());
      for (const a of dns.addresses) if (!want.has(a)) await dns.stopListening(a);
      for (const a of want) {
        if (dns.addresses.includes(a)) continue;
        try {
          await dns.listenOn(a);
          refused.delete(a);
          log.info('names: DNS listening', { address: a, port: 53 });
        } catch (e) {
          if (!refused.has(a))
            log.warn('names: DNS cannot listen on a host-access address (tried again every 2 s)', {
              address: a,
              port: 53,
              error: (e as Error).message,
            });
          refused.add(a);
        }
      }
    } catch (e) {
      log.warn('names: host-access addresses not read', { error: (e as Error).message });
    } finally {
      busy = false;
    }
  };
  await listen();
  const timer = setInterval(() => void listen(), LISTEN_EVERY_MS);
  return async () => {
    clearInterval(timer);
    await follower.close();
    await dns.close();
    await view.close();
  };
}

function readOr(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
