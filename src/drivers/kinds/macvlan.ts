// macvlan: each container a child of the parent with a MAC of its own. The mode decides whether children reach
// each other (bridge), only through the switch (vepa), never (private), or whether one child takes the whole
// parent (passthru).
import { MacnetError } from '../../errors';
import type { MacvlanMode } from '../../kernel';
import type { KindModes, NetworkConfig } from '../network-config';
import { invalid, oneOf } from '../options';
import type { LinkKind } from './kind';

const MODES: readonly MacvlanMode[] = ['bridge', 'vepa', 'private', 'passthru'];

const passthru = (c: KindModes): boolean => c.macvlanMode === 'passthru';

export const macvlan: LinkKind = {
  name: 'macvlan',
  options: { macvlan_mode: 'bridge | vepa | private | passthru' },
  impliedByOptions: false,
  implicitPrefix: 'dm',
  childLinkKinds: ['macvlan'],
  trialChildAtCreate: false,

  parseModes: (opts) => ({
    macvlanMode: oneOf('macvlan_mode', opts.macvlan_mode ?? 'bridge', MODES, 'bridge'),
    ipvlanMode: 'l2',
    ipvlanFlag: 'bridge',
  }),
  checkMac: () => undefined,
  checkParent(modes, parent) {
    if (parent.implicit && passthru(modes)) {
      throw invalid(
        'macvlan_mode',
        'passthru',
        'passthru needs a parent (-o parent=IFACE): it hands the whole parent to one container',
      );
    }
  },
  hostAccessRefusal(modes) {
    if (passthru(modes))
      return (
        'a passthru network cannot have host access: passthru gives the whole parent to ' +
        'one container, so there is no second child for the host; use macvlan_mode=bridge'
      );
    // The kernel forwards between two macvlan children only when both are in bridge mode.
    if (modes.macvlanMode !== 'bridge')
      return (
        `macvlan_mode=${modes.macvlanMode} cannot have host access: the kernel forwards between ` +
        'macvlan children only when both are in bridge mode; use macvlan_mode=bridge'
      );
    return undefined;
  },

  wholeParent: passthru,
  operMode: (c) => c.macvlanMode,
  // passthru keeps the parent's own MAC unless the user asks: setting one would change the parent's.
  macSource: (c) => (passthru(c) ? 'own-if-given' : 'own'),
  leaseMacIsContainers: () => true,
  lanVantage: (c) => (passthru(c) ? 'none' : 'probe-link'),

  childSpec: (c: NetworkConfig, name, mac) => ({
    kind: 'macvlan',
    name,
    parent: c.parent.name,
    mode: c.macvlanMode,
    ...(mac && { mac }),
  }),
  joinRoutes: () => undefined,

  hostLinkFields: () => ({ kind: 'macvlan' }),
  // bridge: the only mode in which the kernel forwards between the host's child and the containers'.
  // A MAC of its own, the same each time the link is made: containers keep the host's address in their neighbour
  // caches, and a link re-made (after a reboot, or another daemon's start-up removed it) must not strand them.
  hostLinkSpec: (name, parent, _fields, mac) => ({ kind: 'macvlan', name, parent, mode: 'bridge', mac }),

  refuseBeside(held, c, who) {
    if (passthru(held)) {
      throw new MacnetError(
        'PARENT_IN_USE',
        `${who} in passthru mode, which takes the whole parent; use another parent or a vlan sub-interface`,
        { option: 'parent', value: c.parent.name, network: held.id },
      );
    }
  },
  refuseOnto(c, held, who) {
    if (passthru(c)) {
      throw new MacnetError(
        'PARENT_IN_USE',
        `cannot use macvlan_mode passthru: ${who}; passthru needs a parent of its own`,
        { option: 'macvlan_mode', value: 'passthru', network: held.id },
      );
    }
  },
  // macvlan networks share a parent freely, each in its own mode (the kernel keeps the mode per child).
  refuseSameKind: () => undefined,
};
