// A network's configuration: parsed and validated from Docker's CreateNetwork request into a frozen, typed
// value before anything touches the kernel or the store. Checks that need the kernel (does the parent
// exist, its MTU) or the other networks (overlap, sharing) are in network.ts; everything here is pure.
import { clip, MacnetError } from '../errors';
import { type Family, canonicalIp, networkOf, parseCidr } from '../types/address';
import { IFNAME_MAX } from '../kernel/validate';
import { KINDS, chooseKind, implicitParentName, kindOptions } from './kinds';
import type { NetworkConfig, ParentSpec, SubnetConfig } from './network-config';
import { parseHostAccess } from './host-access-options';
import { invalid, oneOf, truthy } from './options';

export type { DriverKind, KindModes, NetworkConfig, ParentSpec, SubnetConfig } from './network-config';
export { implicitParentName } from './kinds';

/** The -o keys macnet understands, with the values each takes; shown in OPTION_UNKNOWN messages. */
export const NETWORK_OPTIONS: Readonly<Record<string, string>> = Object.freeze({
  parent: 'an interface name, or name.vid for an 802.1q sub-interface',
  kind: KINDS.map((k) => k.name).join(' | '),
  ...kindOptions(),
  mtu: "an integer, at most the parent's MTU",
  conflict: 'refuse | warn (a static --ip that a LAN machine answers for)',
  mac: "random | stable (each container's MAC derived from the network and the container's name, or its address)",
  host_access: 'true | false (the host and its own containers reach each other)',
  host_access_address: "the host's address on the network: one IPv4 and/or one IPv6 address, comma-separated",
  dns: "true | false (macnet's DNS for the containers: turns on host_access's link, which it listens on)",
});

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
  const kind = chooseKind(opts);
  const modes = kind.parseModes(opts);
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
  kind.checkMac(mac);
  const parent = opts.parent
    ? parseParent(opts.parent)
    : { name: implicitParentName(kind.name, req.NetworkID), implicit: true };
  kind.checkParent(modes, parent);
  const subnets = [...parseIpData(4, req.IPv4Data), ...parseIpData(6, req.IPv6Data)];
  const hostAccess = parseHostAccess(opts, kind.hostAccessRefusal(modes), subnets);
  return Object.freeze({
    id: req.NetworkID,
    kind: kind.name,
    macvlanMode: modes.macvlanMode,
    ipvlanMode: modes.ipvlanMode,
    ipvlanFlag: modes.ipvlanFlag,
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
