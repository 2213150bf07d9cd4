// ipvlan: every container a child of the parent carrying the parent's MAC; the kernel tells them apart by IP.
// The mode (l2, l3, l3s) is per parent; in l3 and l3s the parent routes, so containers get device routes.
import { MacnetError } from '../../errors';
import type { IpvlanFlag, IpvlanMode } from '../../kernel';
import { cidrContains, parseCidr } from '../../types/address';
import type { KindModes, NetworkConfig } from '../network-config';
import { invalid, oneOf } from '../options';
import type { LinkKind, StaticRoute } from './kind';

const MODES: readonly IpvlanMode[] = ['l2', 'l3', 'l3s'];
const FLAGS: readonly IpvlanFlag[] = ['bridge', 'private', 'vepa'];

function parseModes(opts: Readonly<Record<string, string>>): KindModes {
  if (opts.macvlan_mode !== undefined)
    throw invalid(
      'macvlan_mode',
      opts.macvlan_mode,
      'an ipvlan network takes ipvlan_mode and ipvlan_flag, not macvlan_mode',
    );
  return {
    macvlanMode: 'bridge',
    ipvlanMode: oneOf('ipvlan_mode', opts.ipvlan_mode ?? 'l2', MODES, 'l2'),
    ipvlanFlag: oneOf('ipvlan_flag', opts.ipvlan_flag ?? 'bridge', FLAGS, 'bridge'),
  };
}

function joinRoutes(
  c: NetworkConfig,
  ep: { ipv4?: string; ipv6?: string },
): { StaticRoutes?: StaticRoute[] } | undefined {
  if (c.ipvlanMode === 'l2') return undefined;
  if (c.internal) {
    // l3 routes between the network's subnets inside the parent; without a default route the container
    // still needs device routes to the network's other subnets (Docker's L3NilParent scenario).
    const mine = [ep.ipv4, ep.ipv6].filter((a): a is string => !!a).map((a) => parseCidr(a));
    const others = c.subnets.filter((s) =>
      mine.some((m) => m.family === s.family && !cidrContains(s.subnet, m.address)),
    );
    return others.length ? { StaticRoutes: others.map((s) => ({ Destination: s.subnet, RouteType: 1 })) } : {};
  }
  // l3/l3s: the parent routes; the container's default route points at the device, not a gateway.
  const StaticRoutes: StaticRoute[] = [];
  if (ep.ipv4) StaticRoutes.push({ Destination: '0.0.0.0/0', RouteType: 1 });
  if (ep.ipv6) StaticRoutes.push({ Destination: '::/0', RouteType: 1 });
  return { StaticRoutes };
}

export const ipvlan: LinkKind = {
  name: 'ipvlan',
  options: { ipvlan_mode: 'l2 | l3 | l3s', ipvlan_flag: 'bridge | private | vepa' },
  impliedByOptions: true,
  implicitPrefix: 'di',
  childLinkKinds: ['ipvlan'],
  // The kernel (or this parent) may not carry the mode or flag: refused at create, not at the first container.
  trialChildAtCreate: true,

  parseModes,
  checkMac(mac) {
    if (mac === 'stable')
      throw invalid('mac', 'stable', "ipvlan children all use the parent's MAC; mac=stable is for macvlan networks");
  },
  checkParent: () => undefined,
  hostAccessRefusal: (modes) =>
    modes.ipvlanFlag === 'bridge'
      ? undefined
      : `ipvlan_flag=${modes.ipvlanFlag} cannot have host access: only the bridge ` +
        'flag lets ipvlan children reach each other; use ipvlan_flag=bridge',

  wholeParent: () => false,
  operMode: (c) => `${c.ipvlanMode}/${c.ipvlanFlag}`,
  // ipvlan children all carry the parent's MAC; that is the point of ipvlan. Docker's driver ignores one too.
  macSource: () => 'parent',
  leaseMacIsContainers: () => false,
  // The parent's MAC is every container's: probes and DHCP go out from the parent itself.
  lanVantage: () => 'parent',

  childSpec: (c, name) => ({ kind: 'ipvlan', name, parent: c.parent.name, mode: c.ipvlanMode, flag: c.ipvlanFlag }),
  joinRoutes,

  // The kernel keeps one ipvlan mode per parent: the host's child takes the network's, with the bridge flag
  // (the only one that lets it reach the containers).
  hostLinkFields: (c) => ({ kind: 'ipvlan', ipvlanMode: c.ipvlanMode }),
  // The parent's MAC, as every ipvlan child: `mac` is not used.
  hostLinkSpec: (name, parent, fields) => ({
    kind: 'ipvlan',
    name,
    parent,
    mode: fields.ipvlanMode ?? 'l2',
    flag: 'bridge',
  }),

  refuseBeside: () => undefined,
  refuseOnto: () => undefined,
  refuseSameKind(c, held, who) {
    throw new MacnetError(
      'PARENT_IN_USE',
      `${who}; ipvlan networks cannot share a parent (the ipvlan mode is per parent); ` +
        `use a vlan sub-interface such as ${c.parent.vlan?.base ?? c.parent.name}.<vid>`,
      { option: 'parent', value: c.parent.name, network: held.id },
    );
  },
};
