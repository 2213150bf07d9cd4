// What `macnet uninstall` removes from the kernel: every link macnet makes in the namespace it runs in, found by
// name and kind as the daemon's start-up reconcile finds them (driver.ts): probe links ("mnp" + 10 hex,
// macvlan), host-access links ("mnh" + 10 hex, of a link kind's child kinds), endpoint links a crash left before Docker
// moved them ("mn" + 11 hex), and the parents macnet created for a network (vlan, dummy, bridge: their records).
// Called only with no network left and no daemon running (the CLI checks both), so none of them is in use.
import { MacnetError } from '../errors';
import type { Kernel, Link } from '../kernel';
import { ENDPOINT_LINK_PATTERN } from './endpoint';
import { HOST_LINK_PATTERN } from './host-access';
import { isProbeLink } from '../lan';
import { isChildLinkKind } from './kinds';
import type { DriverState, NetworkRecord } from './state';

export interface MacnetLink {
  readonly name: string;
  readonly kind: string;
  readonly role: 'probe link' | 'host-access link' | 'endpoint link' | 'parent';
  /** The link it sits on, when it has one in this namespace. */
  readonly parent?: string;
}

function roleOf(l: Link, parents: ReadonlySet<string>): MacnetLink['role'] | undefined {
  if (isProbeLink(l)) return 'probe link';
  if (isChildLinkKind(l.kind) && HOST_LINK_PATTERN.test(l.name)) return 'host-access link';
  if (isChildLinkKind(l.kind) && ENDPOINT_LINK_PATTERN.test(l.name)) return 'endpoint link';
  if (parents.has(l.name)) return 'parent';
  return undefined;
}

/** macnet's links in the kernel's namespace; children first, so that parents go last. */
export async function macnetLinks(k: Kernel, state: DriverState | undefined): Promise<MacnetLink[]> {
  const made = new Map((state ? await state.parents() : []).map((p) => [p.name, p.kind as string]));
  const all = await k.links.list();
  const byIndex = new Map(all.map((l) => [l.index, l.name]));
  const found: MacnetLink[] = [];
  for (const l of all) {
    // A parent record's link must still be of the kind macnet made: an operator may have made one of that name.
    // (Only a kind of the record's: a device without a kind, loopback or a NIC, is never one macnet made.)
    const parents = new Set(l.kind !== undefined && made.get(l.name) === l.kind ? [l.name] : []);
    const role = roleOf(l, parents);
    if (!role) continue;
    const parent =
      l.parentIndex === undefined || l.parentNetnsId !== undefined ? undefined : byIndex.get(l.parentIndex);
    found.push({ name: l.name, kind: l.kind ?? 'device', role, ...(parent && { parent }) });
  }
  return found.sort((a, b) => Number(a.role === 'parent') - Number(b.role === 'parent'));
}

/** Deletes the links; a link already gone counts as removed. Every link is tried; the failures are thrown together. */
export async function removeLinks(k: Kernel, links: readonly MacnetLink[]): Promise<void> {
  const failed: string[] = [];
  for (const l of links) {
    try {
      await k.links.deleteIfExists(l.name);
    } catch (e) {
      failed.push(`${l.name}: ${(e as Error).message}`);
    }
  }
  if (failed.length) {
    throw new MacnetError('KERNEL_ERROR', `could not remove ${failed.length} link(s): ${failed.join('; ')}`, {
      links: failed.length,
    });
  }
}

/** A network as the refusal names it: short id, parent, subnets. */
export const describeNetwork = (n: NetworkRecord): string =>
  `${n.config.id.slice(0, 12)} (parent ${n.config.parent.name}, ` +
  `${n.config.subnets.map((s) => s.subnet).join(', ') || 'no subnet'}` +
  `${n.state === 'creating' ? ', being created' : ''})`;
