// The link kinds macnet knows, and the questions that involve more than one of them. A new kind is a file
// beside macvlan.ts and an entry in KINDS.
import { MacnetError } from '../../errors';
import type { DriverKind, NetworkConfig } from '../network-config';
import { invalid, oneOf } from '../options';
import { ipvlan } from './ipvlan';
import type { LinkKind } from './kind';
import { macvlan } from './macvlan';

export type { EndpointAddresses, HostLinkFields, LanVantage, LinkKind, MacSource, StaticRoute } from './kind';

/** In the order messages list them; the first is the default. */
export const KINDS: readonly LinkKind[] = [macvlan, ipvlan];
const DEFAULT = KINDS[0]!;

export const kindNamed = (name: DriverKind): LinkKind => {
  const k = KINDS.find((x) => x.name === name);
  if (!k) throw new MacnetError('STORE_ERROR', `unknown link kind ${JSON.stringify(name)} in a record`, { kind: name });
  return k;
};

export const kindOf = (c: Pick<NetworkConfig, 'kind'>): LinkKind => kindNamed(c.kind);

/** The -o keys of every kind, for the option table. */
export const kindOptions = (): Record<string, string> =>
  Object.assign({}, ...KINDS.map((k) => k.options)) as Record<string, string>;

/** -o kind, else the kind one of whose own options is given (ipvlan_mode → ipvlan), else the default. */
export function chooseKind(opts: Readonly<Record<string, string>>): LinkKind {
  const named =
    opts.kind === undefined
      ? undefined
      : kindNamed(
          oneOf(
            'kind',
            opts.kind,
            KINDS.map((k) => k.name),
            DEFAULT.name,
          ),
        );
  const implied = KINDS.find((k) => k.impliedByOptions && Object.keys(k.options).some((o) => opts[o] !== undefined));
  if (implied && named && named !== implied)
    throw invalid(
      'kind',
      named.name,
      `${Object.keys(implied.options).join(' and ')} need kind=${implied.name} (or no kind)`,
    );
  return implied ?? named ?? DEFAULT;
}

/** The name of the parent macnet creates for a network without one (Docker's dm-/di- convention). */
export const implicitParentName = (kind: DriverKind, networkId: string): string =>
  `${kindNamed(kind).implicitPrefix}-${networkId.slice(0, 12)}`;

/** Refuses network `c` on the parent that network `held` already uses (PARENT_IN_USE); `who` names `held`. */
export function checkSharing(c: NetworkConfig, held: NetworkConfig, who: string): void {
  kindOf(held).refuseBeside(held, c, who);
  kindOf(c).refuseOnto(c, held, who);
  if (held.kind !== c.kind) {
    throw new MacnetError(
      'PARENT_IN_USE',
      `${who}; ${KINDS.filter((k) => k.name === c.kind || k.name === held.kind)
        .map((k) => k.name)
        .join(' and ')} cannot share a parent (the kernel allows one kind per parent)`,
      { option: 'parent', value: c.parent.name, network: held.id },
    );
  }
  kindOf(c).refuseSameKind(c, held, who);
}

/** A netlink link kind (Link.kind) is one macnet makes as endpoint or host-access children of a parent. */
export const isChildLinkKind = (kind: string | undefined): boolean =>
  KINDS.some((k) => k.childLinkKinds.includes(kind ?? ''));
