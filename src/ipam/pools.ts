// RequestPool's input, validated before any state is touched: the address space, --ipam-opt keys, --subnet
// (Pool), --ip-range (SubPool) and the V6 flag; and the choice of a subnet from the default pools when Docker
// sends no Pool (`docker network create` without --subnet).
import { clip, fail, MacnetError } from '../errors';
import { alignUp, containsSubnet, overlaps, parseCidrBig, subnetOf, usableRange, type Subnet } from '../types/address';

export const LOCAL_SPACE = 'LocalDefault';
export const GLOBAL_SPACE = 'GlobalDefault';
export const ADDRESS_SPACES: readonly string[] = [LOCAL_SPACE, GLOBAL_SPACE];

/** RequestAddress Options value that marks the network's gateway (libnetwork's netlabel.Gateway). */
export const GATEWAY_REQUEST_TYPE = 'com.docker.network.gateway';
export const REQUEST_ADDRESS_TYPE = 'RequestAddressType';
export const ENDPOINT_NAME = 'com.docker.network.endpoint.name';

/** --ipam-opt keys of macnet's own. None yet: only Docker's com.docker.* keys pass. */
export const IPAM_OPTIONS: readonly string[] = ['mode'];
export const IPAM_MODES = ['pool', 'dhcp'] as const;

export interface DefaultPool {
  readonly base: Subnet;
  /** Prefix length of each subnet taken from `base`. */
  readonly size: number;
}

/**
 * The library's default (`new Ipam(store)`): RFC 2544 benchmarking and RFC 3849 documentation space, never a
 * real LAN's, so never a clash with one; the tests' ranges.
 */
export const DEFAULT_POOLS: readonly { base: string; size: number }[] = [
  { base: '198.18.128.0/17', size: 24 },
  { base: '2001:db8:ff00::/40', size: 64 },
];

/**
 * The daemon's default (docs/ipam.md): private and unique local ranges, which containers on a real host may use;
 * 172.31.0.0/16 is the last /16 of Docker's own default pools.
 */
export const DAEMON_POOLS: readonly { base: string; size: number }[] = [
  { base: '172.31.0.0/16', size: 24 },
  { base: 'fd6d:6163:6e65::/48', size: 64 },
];

/** A default pool as `--default-address-pool` takes it: "base=172.31.0.0/16,size=24". */
export const poolOption = (p: { base: string; size: number }): string => `base=${p.base},size=${p.size}`;

export interface PoolRequest {
  addressSpace: string;
  pool?: string;
  subPool?: string;
  options?: Record<string, string>;
  v6: boolean;
}

export interface ValidPoolRequest {
  readonly space: string;
  /** Undefined: take one from the default pools. */
  readonly subnet?: Subnet;
  readonly range?: Subnet;
  /** IPv4 addresses leased from the LAN's DHCP server (--ipam-opt mode=dhcp). */
  readonly dhcp?: boolean;
}

const invalid = (message: string, details: Record<string, unknown>) =>
  new MacnetError('IPAM_POOL_INVALID', message, details);

export function checkOptions(options: Record<string, string> | undefined, call: string): void {
  for (const key of Object.keys(options ?? {})) {
    // Docker adds its own com.docker.* keys; anything else is a user's --ipam-opt that would silently do nothing.
    if (key.startsWith('com.docker.') || IPAM_OPTIONS.includes(key)) continue;
    const known = 'mode (pool | dhcp)';
    throw new MacnetError(
      'OPTION_UNKNOWN',
      `${call}: unknown --ipam-opt ${clip(key)}; macnet's IPAM options: ${known}`,
      { option: key, known: IPAM_OPTIONS },
    );
  }
}

/** Parses a subnet or ip-range that must be written with its host bits zero, as Docker itself requires. */
function parseNetwork(text: string, what: string): Subnet {
  let parsed;
  try {
    parsed = parseCidrBig(text);
  } catch (e) {
    throw invalid(`invalid ${what} ${clip(text)}: ${(e as Error).message.slice(0, 200)}`, { [what]: clip(text) });
  }
  if (parsed.address.value !== parsed.subnet.base) {
    throw invalid(`invalid ${what} ${text}: it has host bits set, it should be ${parsed.subnet.text}`, {
      [what]: text,
    });
  }
  return parsed.subnet;
}

export function validatePoolRequest(r: PoolRequest): ValidPoolRequest {
  // dockerd always sends one of the spaces GetDefaultAddressSpaces named; a hand-made request may send none.
  const space = r.addressSpace || LOCAL_SPACE;
  if (!ADDRESS_SPACES.includes(space)) {
    throw invalid(
      `RequestPool: unknown address space ${clip(space)}; macnet's IPAM has ${ADDRESS_SPACES.join(' and ')}`,
      { addressSpace: clip(space) },
    );
  }
  checkOptions(r.options, 'RequestPool');
  const family = r.v6 ? 6 : 4;
  const mode = r.options?.mode ?? 'pool';
  if (!(IPAM_MODES as readonly string[]).includes(mode)) {
    throw fail('OPTION_INVALID', {
      as: 'ipam-opt',
      call: 'RequestPool',
      option: 'mode',
      value: mode,
      valid:
        "use pool (the default: macnet hands out the subnet's addresses) or dhcp (leases from the LAN's DHCP server)",
    });
  }
  // DHCPv4 only: an IPv6 pool of a mode=dhcp network is macnet's own pool (probed, next-fit) as usual.
  const dhcp = mode === 'dhcp' && !r.v6;
  if (dhcp && !r.pool) {
    throw invalid(
      "RequestPool: --ipam-opt mode=dhcp needs --subnet, the LAN's IPv4 subnet that " +
        'its DHCP server serves (e.g. --subnet 192.168.1.0/24 --gateway 192.168.1.1)',
      { option: 'mode' },
    );
  }
  if (dhcp && r.subPool) {
    throw invalid(
      `RequestPool: --ip-range ${r.subPool} has no effect with --ipam-opt mode=dhcp: the ` +
        "DHCP server picks the addresses; leave --ip-range out (or limit the server's range)",
      { subPool: r.subPool },
    );
  }
  if (!r.pool) {
    if (r.subPool)
      throw invalid(`invalid ip-range ${r.subPool}: an ip-range needs a subnet (--subnet)`, { subPool: r.subPool });
    return { space };
  }
  const subnet = parseNetwork(r.pool, 'subnet');
  if (subnet.family !== family) {
    throw invalid(`invalid subnet ${subnet.text}: an IPv${subnet.family} subnet in a request for IPv${family}`, {
      subnet: subnet.text,
      v6: r.v6,
    });
  }
  if (!r.subPool) return dhcp ? { space, subnet, dhcp } : { space, subnet };
  const range = parseNetwork(r.subPool, 'ip-range');
  if (!containsSubnet(subnet, range)) {
    throw invalid(`invalid ip-range ${range.text}: parent subnet ${subnet.text} doesn't contain ip-range`, {
      subnet: subnet.text,
      range: range.text,
    });
  }
  const u = usableRange(subnet);
  if (range.last < u.first || range.base > u.last) {
    throw invalid(
      `invalid ip-range ${range.text}: it holds no usable address of ` +
        `subnet ${subnet.text} (only its network or broadcast address)`,
      { subnet: subnet.text, range: range.text },
    );
  }
  return { space, subnet, range };
}

export function parseDefaultPools(list: readonly { base: string; size: number }[]): DefaultPool[] {
  return list.map(({ base, size }) => {
    let subnet: Subnet;
    try {
      subnet = parseNetwork(base, 'subnet');
    } catch (e) {
      throw new MacnetError('INVALID_ARGUMENT', `default pool base ${JSON.stringify(base)}: ${(e as Error).message}`, {
        base,
      });
    }
    if (!Number.isInteger(size) || size < subnet.prefix || size > subnet.bits) {
      throw new MacnetError(
        'INVALID_ARGUMENT',
        `default pool ${subnet.text}: size /${size} must be a prefix length from ${subnet.prefix} to ${subnet.bits}`,
        { base, size },
      );
    }
    return { base: subnet, size };
  });
}

/**
 * The first block of each default pool's size, in the order the pools are given and ascending within each,
 * that overlaps no subnet in `used`. Skips past each overlapping subnet in one step, so a /40 of /64s with
 * many networks is not walked block by block.
 */
export function chooseDefaultSubnet(
  pools: readonly DefaultPool[],
  family: 4 | 6,
  used: readonly Subnet[],
): Subnet | undefined {
  for (const p of pools) {
    if (p.base.family !== family) continue;
    const blockSize = 1n << BigInt(p.base.bits - p.size);
    let at = p.base.base;
    while (at + blockSize - 1n <= p.base.last) {
      const block = subnetOf(family, at, p.size);
      const hit = used.filter((u) => overlaps(u, block));
      if (!hit.length) return block;
      const end = hit.reduce((m, u) => (u.last > m ? u.last : m), block.last);
      at = alignUp(end + 1n, blockSize);
    }
  }
  return undefined;
}

/** chooseDefaultSubnet, or IPAM_NO_DEFAULT_POOL naming the default pools (RequestPool without --subnet). */
export function defaultSubnet(defaults: DefaultPool[], space: string, family: 4 | 6, taken: Subnet[]): Subnet {
  const subnet = chooseDefaultSubnet(defaults, family, taken);
  if (subnet) return subnet;
  const bases = defaults.filter((d) => d.base.family === family).map((d) => `${d.base.text} (/${d.size} each)`);
  throw new MacnetError(
    'IPAM_NO_DEFAULT_POOL',
    `RequestPool: no --subnet given and no free IPv${family} subnet ` +
      `left in the default pools: ${bases.join(', ') || 'none configured'}`,
    { space, v6: family === 6, defaultPools: bases },
  );
}
