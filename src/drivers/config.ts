// A network's configuration: parsed and validated from Docker's CreateNetwork request into a frozen, typed
// value before anything touches the kernel or the store. Checks that need the kernel (does the parent
// exist, its MTU) or the other networks (overlap, sharing) are in network.ts; everything here is pure.
import { clip, MacnetError } from '../errors';
import type { IpvlanFlag, IpvlanMode, MacvlanMode } from '../kernel';
import { type Family, canonicalIp, networkOf, parseCidr } from '../types/address';
import { IFNAME_MAX } from '../kernel/validate';

export type DriverKind = 'macvlan' | 'ipvlan';

export interface SubnetConfig {
  readonly family: Family;
  /** Network address and prefix, canonical: "198.18.15.0/24". */
  readonly subnet: string;
  /** Plain IP, when Docker's IP data has one. */
  readonly gateway?: string;
  readonly auxAddresses: Readonly<Record<string, string>>;
}

export interface ParentSpec {
  /** The interface the children hang off; for "eth0.50" the vlan link itself. */
  readonly name: string;
  /** Set when the parent is an 802.1q sub-interface written as base.vid (created if missing). */
  readonly vlan?: { readonly base: string; readonly id: number };
  /** No parent given: macnet creates one for this network alone (an internal network). */
  readonly implicit: boolean;
}

export interface NetworkConfig {
  readonly id: string;
  readonly kind: DriverKind;
  readonly macvlanMode: MacvlanMode;
  readonly ipvlanMode: IpvlanMode;
  readonly ipvlanFlag: IpvlanFlag;
  readonly parent: ParentSpec;
  readonly mtu?: number;
  readonly internal: boolean;
  readonly ipv6: boolean;
  /** What a static address that answers on the LAN gets: refused (default) or a warning in the log. */
  readonly conflict?: 'refuse' | 'warn';
  /** Container MACs: random (default) or derived from the network and the container (-o mac=stable). */
  readonly mac?: 'random' | 'stable';
  readonly subnets: readonly SubnetConfig[];
  /** -o host_access=true: the host and its own containers reach each other (docs/driver.md, "Host access"). */
  readonly hostAccess?: boolean;
  /** -o host_access_address: the host's address on this network, at most one per family; absent: chosen. */
  readonly hostAccessAddresses?: readonly string[];
}

/** The -o keys macnet understands, with the values each takes; shown in OPTION_UNKNOWN messages. */
export const NETWORK_OPTIONS: Readonly<Record<string, string>> = Object.freeze({
  parent: 'an interface name, or name.vid for an 802.1q sub-interface',
  kind: 'macvlan | ipvlan',
  macvlan_mode: 'bridge | vepa | private | passthru',
  ipvlan_mode: 'l2 | l3 | l3s',
  ipvlan_flag: 'bridge | private | vepa',
  mtu: "an integer, at most the parent's MTU",
  conflict: 'refuse | warn (a static --ip that a LAN machine answers for)',
  mac: "random | stable (each container's MAC derived from the network and the container's name, or its address)",
  host_access: 'true | false (the host and its own containers reach each other)',
  host_access_address: "the host's address on the network: one IPv4 and/or one IPv6 address, comma-separated",
});

const MACVLAN_MODES: readonly MacvlanMode[] = ['bridge', 'vepa', 'private', 'passthru'];
const IPVLAN_MODES: readonly IpvlanMode[] = ['l2', 'l3', 'l3s'];
const IPVLAN_FLAGS: readonly IpvlanFlag[] = ['bridge', 'private', 'vepa'];

export interface IpData {
  AddressSpace?: string;
  Pool?: string;
  Gateway?: string;
  AuxAddresses?: Record<string, string>;
}

export interface CreateNetworkRequest {
  NetworkID?: unknown;
  Options?: Record<string, unknown>;
  IPv4Data?: IpData[] | null;
  IPv6Data?: IpData[] | null;
}

const invalid = (option: string, value: unknown, valid: string) =>
  new MacnetError('OPTION_INVALID', `option ${option}=${clip(value)} is not valid: ${valid}`, {
    option,
    value: clip(value),
  });

function oneOf<T extends string>(option: string, value: string, valid: readonly T[], dflt: string): T {
  if (!(valid as readonly string[]).includes(value)) {
    throw invalid(option, value, `use one of ${valid.join(', ')} ('${dflt}' is the default)`);
  }
  return value as T;
}

/** Docker sends booleans in Options as booleans or as strings, depending on the engine version. */
const truthy = (v: unknown): boolean => v === true || v === 'true' || v === '1';

/** "eth0.50" → base eth0, vid 50. Errors name the value and the expected format (Docker's wording). */
export function parseParent(value: string): ParentSpec {
  // The kernel counts bytes (IFNAMSIZ 16 with the NUL): 8 two-byte characters are 16 bytes, one too many.
  const bytes = Buffer.byteLength(value);
  if (bytes > IFNAME_MAX || /[\s/:\0]/.test(value) || value === '.' || value === '..') {
    throw new MacnetError(
      'OPTION_INVALID',
      `option parent=${clip(value)} is not a valid interface name (${bytes} bytes): use 1 to ${IFNAME_MAX} bytes ` +
        "(the kernel's limit) without spaces, NUL, '/' or ':'",
      { option: 'parent', value: clip(value) },
    );
  }
  if (value === 'lo') {
    throw new MacnetError(
      'PARENT_INVALID',
      'option parent="lo": the loopback interface is not a valid macvlan/ipvlan parent link; use an Ethernet interface',
      { option: 'parent', value },
    );
  }
  if (!value.includes('.')) return { name: value, implicit: false };
  const parts = value.split('.');
  if (parts.length !== 2 || !parts[0] || !/^\d+$/.test(parts[1]!)) {
    throw new MacnetError(
      'PARENT_INVALID',
      `option parent=${JSON.stringify(value)}: required interface ` +
        'name format is name.vlan_id, e.g. eth0.10 for vlan 10',
      { option: 'parent', value },
    );
  }
  const id = Number(parts[1]);
  if (id < 1 || id > 4094) {
    throw new MacnetError(
      'PARENT_INVALID',
      `option parent=${JSON.stringify(value)}: vlan id must be between 1 and 4094, received ${id}`,
      { option: 'parent', value },
    );
  }
  return { name: value, vlan: { base: parts[0], id }, implicit: false };
}

/** The name of the parent macnet creates for a network without one (Docker's dm-/di- convention). */
export const implicitParentName = (kind: DriverKind, networkId: string): string =>
  `${kind === 'macvlan' ? 'dm' : 'di'}-${networkId.slice(0, 12)}`;

function parseIpData(family: Family, list: IpData[] | null | undefined): SubnetConfig[] {
  const out: SubnetConfig[] = [];
  for (const d of list ?? []) {
    let c;
    try {
      c = parseCidr(String(d.Pool ?? ''));
    } catch {
      throw new MacnetError(
        'NETWORK_CONFIG_INVALID',
        `IPv${family} pool ${clip(d.Pool)} is not a subnet in CIDR form, e.g. 198.18.15.0/24`,
        { value: clip(d.Pool) },
      );
    }
    if (c.family !== family)
      throw new MacnetError('NETWORK_CONFIG_INVALID', `IPv${family} data holds an IPv${c.family} pool ${d.Pool}`, {
        value: d.Pool,
      });
    const subnet = networkOf(c.address, c.prefix);
    const inside = (ip: string, what: string): string => {
      let a;
      try {
        a = parseCidr(ip.split('/')[0]!);
      } catch {
        throw new MacnetError(
          'NETWORK_CONFIG_INVALID',
          `${what}${clip(ip)} is not an IP address: give an address inside ${subnet}`,
          { value: clip(ip), subnet },
        );
      }
      if (a.family !== family || networkOf(a.address, c.prefix) !== subnet) {
        throw new MacnetError(
          'NETWORK_CONFIG_INVALID',
          `${what}${ip.split('/')[0]} is not in subnet ${subnet}: give an address inside it`,
          { value: ip, subnet },
        );
      }
      return canonicalIp(a.address);
    };
    const aux: Record<string, string> = {};
    for (const [k, v] of Object.entries(d.AuxAddresses ?? {})) aux[k] = inside(String(v), `--aux-address ${k}=`);
    out.push(
      Object.freeze({
        family,
        subnet,
        ...(d.Gateway ? { gateway: inside(String(d.Gateway), '--gateway ') } : {}),
        auxAddresses: Object.freeze(aux),
      }),
    );
  }
  return out;
}

export function parseNetworkRequest(req: CreateNetworkRequest): NetworkConfig {
  if (req.NetworkID === undefined || req.NetworkID === null || req.NetworkID === '') {
    throw new MacnetError(
      'PLUGIN_REQUEST_INVALID',
      'CreateNetwork: field NetworkID is missing: give the id dockerd assigned to the network (64 hex characters)',
      { field: 'NetworkID' },
    );
  }
  if (typeof req.NetworkID !== 'string' || !/^[0-9a-zA-Z]{12,}$/.test(req.NetworkID)) {
    throw new MacnetError(
      'PLUGIN_REQUEST_INVALID',
      `CreateNetwork: NetworkID ${clip(req.NetworkID)} is not a Docker network id: ` +
        'give the id dockerd assigned to the network (64 hex characters)',
      { value: clip(req.NetworkID) },
    );
  }
  const top = req.Options ?? {};
  const generic = (top['com.docker.network.generic'] ?? {}) as Record<string, unknown>;
  if (typeof generic !== 'object' || generic === null) {
    throw new MacnetError(
      'PLUGIN_REQUEST_INVALID',
      'CreateNetwork: Options["com.docker.network.generic"] is not an object',
    );
  }
  const opts: Record<string, string> = {};
  for (const [k, v] of Object.entries(generic)) {
    if (k.startsWith('com.docker.network.') && k !== 'com.docker.network.driver.mtu') continue; // Docker's own
    if (k !== 'com.docker.network.driver.mtu' && !(k in NETWORK_OPTIONS)) {
      throw new MacnetError(
        'OPTION_UNKNOWN',
        `unknown option ${clip(k)}: macnet knows ${Object.keys(NETWORK_OPTIONS).join(', ')} ` +
          "(and Docker's com.docker.network.* keys)",
        { option: k },
      );
    }
    if (typeof v !== 'string' && typeof v !== 'boolean' && !(typeof v === 'number' && Number.isFinite(v))) {
      throw new MacnetError('OPTION_INVALID', `option ${k} ${clip(v)} is not valid: give a string (-o ${k}=VALUE)`, {
        option: k,
        value: clip(v),
      });
    }
    opts[k] = String(v);
  }
  let kind: DriverKind = 'macvlan';
  if (opts.kind !== undefined) kind = oneOf('kind', opts.kind, ['macvlan', 'ipvlan'] as const, 'macvlan');
  if (opts.ipvlan_mode !== undefined || opts.ipvlan_flag !== undefined) {
    if (opts.kind === 'macvlan')
      throw invalid('kind', 'macvlan', 'ipvlan_mode and ipvlan_flag need kind=ipvlan (or no kind)');
    kind = 'ipvlan';
  }
  if (kind === 'ipvlan' && opts.macvlan_mode !== undefined)
    throw invalid(
      'macvlan_mode',
      opts.macvlan_mode,
      'an ipvlan network takes ipvlan_mode and ipvlan_flag, not macvlan_mode',
    );
  const macvlanMode = oneOf('macvlan_mode', opts.macvlan_mode ?? 'bridge', MACVLAN_MODES, 'bridge');
  const ipvlanMode = oneOf('ipvlan_mode', opts.ipvlan_mode ?? 'l2', IPVLAN_MODES, 'l2');
  const ipvlanFlag = oneOf('ipvlan_flag', opts.ipvlan_flag ?? 'bridge', IPVLAN_FLAGS, 'bridge');
  let mtu: number | undefined;
  for (const key of ['mtu', 'com.docker.network.driver.mtu']) {
    const v = opts[key];
    if (v === undefined || v === '' || v === '0') continue;
    if (!/^\d+$/.test(v) || Number(v) < 68 || Number(v) > 65535)
      throw invalid(key, v, "use an integer from 68 to 65535, at most the parent's MTU");
    if (mtu !== undefined && mtu !== Number(v))
      throw invalid(
        key,
        v,
        `it contradicts mtu=${mtu}; give only one of mtu and com.docker.network.driver.mtu, or the same value to both`,
      );
    mtu = Number(v);
  }
  const conflict = oneOf('conflict', opts.conflict ?? 'refuse', ['refuse', 'warn'] as const, 'refuse');
  const mac = oneOf('mac', opts.mac ?? 'random', ['random', 'stable'] as const, 'random');
  if (mac === 'stable' && kind === 'ipvlan')
    throw invalid('mac', 'stable', "ipvlan children all use the parent's MAC; mac=stable is for macvlan networks");
  const parent = opts.parent
    ? parseParent(opts.parent)
    : { name: implicitParentName(kind, req.NetworkID), implicit: true };
  if (parent.implicit && kind === 'macvlan' && macvlanMode === 'passthru') {
    throw invalid(
      'macvlan_mode',
      'passthru',
      'passthru needs a parent (-o parent=IFACE): it hands the whole parent to one container',
    );
  }
  const subnets = [...parseIpData(4, req.IPv4Data), ...parseIpData(6, req.IPv6Data)];
  const hostAccess = parseHostAccess(opts, kind, macvlanMode, ipvlanFlag, subnets);
  return Object.freeze({
    id: req.NetworkID,
    kind,
    macvlanMode,
    ipvlanMode,
    ipvlanFlag,
    parent: Object.freeze(parent),
    ...(mtu !== undefined ? { mtu } : {}),
    conflict,
    ...(mac === 'stable' ? { mac } : {}),
    // Docker v28+ makes a network without a parent internal; so does macnet: its parent reaches nothing.
    internal: truthy(top['com.docker.network.internal']) || parent.implicit,
    ipv6: truthy(top['com.docker.network.enable_ipv6']) || subnets.some((s) => s.family === 6),
    subnets: Object.freeze(subnets),
    ...(hostAccess && {
      hostAccess: true,
      ...(hostAccess.length && { hostAccessAddresses: Object.freeze(hostAccess) }),
    }),
  });
}

/**
 * host_access and host_access_address; undefined when host access is off, else the given addresses (may be
 * empty: chosen at create). The kernel forwards between two macvlan children only when both are in bridge
 * mode, and between ipvlan children only with the bridge flag, so the other modes cannot have host access.
 */
function parseHostAccess(
  opts: Record<string, string>,
  kind: DriverKind,
  macvlanMode: MacvlanMode,
  ipvlanFlag: IpvlanFlag,
  subnets: readonly SubnetConfig[],
): string[] | undefined {
  const flag = opts.host_access;
  if (flag !== undefined && !['true', 'false', '1', '0'].includes(flag))
    throw invalid('host_access', flag, "use true or false ('false' is the default)");
  const given = opts.host_access_address;
  const on = flag === undefined ? given !== undefined && given !== '' : truthy(flag);
  if (!on) {
    if (given)
      throw invalid(
        'host_access_address',
        given,
        'it needs host access: drop host_access=false (host_access_address turns host access on)',
      );
    return undefined;
  }
  if (kind === 'macvlan' && macvlanMode === 'passthru') {
    throw invalid(
      'host_access',
      flag ?? 'true',
      'a passthru network cannot have host access: passthru gives the whole parent to ' +
        'one container, so there is no second child for the host; use macvlan_mode=bridge',
    );
  }
  if (kind === 'macvlan' && macvlanMode !== 'bridge') {
    throw invalid(
      'host_access',
      flag ?? 'true',
      `macvlan_mode=${macvlanMode} cannot have host access: the kernel forwards between ` +
        'macvlan children only when both are in bridge mode; use macvlan_mode=bridge',
    );
  }
  if (kind === 'ipvlan' && ipvlanFlag !== 'bridge') {
    throw invalid(
      'host_access',
      flag ?? 'true',
      `ipvlan_flag=${ipvlanFlag} cannot have host access: only the bridge ` +
        'flag lets ipvlan children reach each other; use ipvlan_flag=bridge',
    );
  }
  const out: string[] = [];
  for (const part of (given ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)) {
    const valid =
      'give one IPv4 and/or one IPv6 address, comma-separated, each ' +
      "inside one of the network's subnets and not its gateway";
    let ip: string;
    try {
      const c = parseCidr(part);
      if (part.includes('/')) throw new TypeError('a prefix');
      ip = c.address;
    } catch {
      throw invalid('host_access_address', given, `${JSON.stringify(part)} is not an IP address; ${valid}`);
    }
    const fam = part.includes(':') ? 6 : 4;
    if (out.some((o) => o.includes(':') === (fam === 6)))
      throw invalid('host_access_address', given, `two IPv${fam} addresses; ${valid}`);
    const s = subnets.find((x) => x.family === fam && networkOf(ip, Number(x.subnet.split('/')[1])) === x.subnet);
    if (!s)
      throw invalid(
        'host_access_address',
        given,
        `${ip} is in none of the network's IPv${fam} subnets (${
          subnets
            .filter((x) => x.family === fam)
            .map((x) => x.subnet)
            .join(', ') || 'none'
        }); ${valid}`,
      );
    if (s.gateway === ip) throw invalid('host_access_address', given, `${ip} is the gateway of ${s.subnet}; ${valid}`);
    const prefix = Number(s.subnet.split('/')[1]);
    const hostBits = (fam === 4 ? 32 : 128) - prefix;
    if (
      hostBits > 1 &&
      (ip === s.subnet.split('/')[0] || (fam === 4 && networkOf(ip, prefix) === s.subnet && isBroadcast(ip, prefix)))
    ) {
      throw invalid(
        'host_access_address',
        given,
        `${ip} is the ${ip === s.subnet.split('/')[0] ? 'network' : 'broadcast'} address of ${s.subnet}; ${valid}`,
      );
    }
    out.push(ip);
  }
  return out;
}

const isBroadcast = (ip: string, prefix: number): boolean => {
  const n = ip
    .split('.')
    .map(Number)
    .reduce((a, b) => a * 256 + b, 0);
  const hostMask = 2 ** (32 - prefix) - 1;
  return n % (hostMask + 1) === hostMask;
};
