// Networks: validate (kernel and store read only) → setup (parent link, records) → teardown, with undo in
// reverse when a step fails.
import { randomBytes } from 'node:crypto';
import { MacnetError, isMacnetError } from '../errors';
import type { Kernel, Link } from '../kernel';
import type { Logger } from '../log';
import { cidrsOverlap } from '../types/address';
import { ENDPOINT_LINK_PATTERN, endpointLinkName } from './endpoint';
import type { NetworkConfig } from './network-config';
import { checkSharing, kindOf } from './kinds';
import { type DriverState, type ParentRecord, networkKey, parentKey, putJson } from './state';
import { encodeRecord } from '../store/records';

const ARPHRD_ETHER = 1;
const IFF_LOOPBACK = 0x8;

/** What validation found out about the parent, so that setup does not look again. */
export interface ParentPlan {
  /** The parent link exists already. */
  readonly existing?: Link;
  /** macnet must create it (a missing base.vid, or the implicit parent of a network without one). */
  readonly create?: ParentRecord['kind'];
  /** Another network's record for a parent macnet created and still manages. */
  readonly managed?: ParentRecord;
}

function describeNet(c: NetworkConfig): string {
  return `${c.kind} network ${c.id.slice(0, 12)}`;
}

export async function validateNetwork(k: Kernel, state: DriverState, c: NetworkConfig): Promise<ParentPlan> {
  const managed = (await state.parent(c.parent.name))?.record;
  let plan: ParentPlan;
  const parent = await k.links.find(c.parent.name);
  if (parent) {
    if (parent.flags & IFF_LOOPBACK) {
      throw new MacnetError(
        'PARENT_INVALID',
        `option parent=${JSON.stringify(c.parent.name)}: a loopback interface ` +
          'is not a valid macvlan/ipvlan parent; use an Ethernet interface',
        { option: 'parent', value: c.parent.name },
      );
    }
    if (parent.hwType !== ARPHRD_ETHER) {
      throw new MacnetError(
        'PARENT_INVALID',
        `option parent=${JSON.stringify(c.parent.name)}: not an Ethernet-like interface (hardware ` +
          `type ${parent.hwType}); macvlan and ipvlan need Ethernet (a NIC, bond, bridge or vlan)`,
        { option: 'parent', value: c.parent.name },
      );
    }
    checkMtu(c, parent);
    plan = { existing: parent, ...(managed && { managed }) };
  } else if (c.parent.vlan) {
    const base = await k.links.find(c.parent.vlan.base);
    if (!base) {
      throw new MacnetError(
        'PARENT_NOT_FOUND',
        `option parent=${JSON.stringify(c.parent.name)}: the base interface ${JSON.stringify(c.parent.vlan.base)}` +
          ` of vlan ${c.parent.vlan.id} was not found on the host; ${await ethernetLinks(k)}`,
        { option: 'parent', value: c.parent.name },
      );
    }
    if (base.flags & IFF_LOOPBACK || base.hwType !== ARPHRD_ETHER) {
      throw new MacnetError(
        'PARENT_INVALID',
        `option parent=${JSON.stringify(c.parent.name)}: the base interface ` +
          `${JSON.stringify(base.name)} cannot carry an 802.1q vlan (not Ethernet)`,
        { option: 'parent', value: c.parent.name },
      );
    }
    checkMtu(c, base);
    plan = { create: 'vlan', ...(managed && { managed }) };
  } else if (c.parent.implicit) {
    plan = { create: 'dummy' };
  } else {
    throw new MacnetError(
      'PARENT_NOT_FOUND',
      `option parent=${JSON.stringify(c.parent.name)}: the parent ` +
        `interface was not found on the host; ${await ethernetLinks(k)}`,
      { option: 'parent', value: c.parent.name },
    );
  }
  for (const other of await state.networks()) {
    if (other.config.id === c.id || other.config.parent.name !== c.parent.name) continue;
    const o = other.config;
    const who = `${describeNet(o)} already uses parent ${JSON.stringify(c.parent.name)}`;
    checkSharing(c, o, who);
    for (const s of c.subnets) {
      // The same subnet again is one LAN segment shared by networks with different ip-ranges (Docker v27+
      // allows it; the IPAM keeps one address set per subnet). Partial overlaps are always a mistake.
      const clash = o.subnets.find((x) => x.subnet !== s.subnet && cidrsOverlap(x.subnet, s.subnet));
      if (clash) {
        throw new MacnetError(
          'SUBNET_OVERLAP',
          `subnet ${s.subnet} overlaps ${clash.subnet} of ${describeNet(o)} on the same parent ` +
            `${JSON.stringify(c.parent.name)}; networks sharing a parent need disjoint subnets`,
          { option: 'subnet', value: s.subnet, network: o.id },
        );
      }
    }
  }
  return plan;
}

/** For PARENT_NOT_FOUND messages: what the user could have meant. */
async function ethernetLinks(k: Kernel): Promise<string> {
  const names = (await k.links.list())
    .filter((l) => !(l.flags & IFF_LOOPBACK) && l.hwType === ARPHRD_ETHER && !ENDPOINT_LINK_PATTERN.test(l.name))
    .map((l) => l.name);
  if (!names.length) return 'this host has no Ethernet interface';
  return (
    `Ethernet interfaces here: ${names.slice(0, 12).join(', ')}` +
    `${names.length > 12 ? `, and ${names.length - 12} more` : ''}`
  );
}

function checkMtu(c: NetworkConfig, parent: Link): void {
  if (c.mtu !== undefined && c.mtu > parent.mtu) {
    throw new MacnetError(
      'MTU_TOO_LARGE',
      `option mtu=${c.mtu} is larger than the MTU ${parent.mtu} of ` +
        `parent ${JSON.stringify(parent.name)}; use at most ${parent.mtu}`,
      { option: 'mtu', value: c.mtu, parentMtu: parent.mtu },
    );
  }
}

/** Creates a parent macnet manages. Without dummy support (this kernel may lack it) an empty bridge serves. */
export async function createParent(k: Kernel, rec: ParentRecord, log: Logger): Promise<ParentRecord> {
  if (rec.kind === 'vlan') {
    await k.links.create({ kind: 'vlan', name: rec.name, parent: rec.vlan!.base, id: rec.vlan!.id, up: true });
    return rec;
  }
  if (rec.kind === 'dummy') {
    try {
      await k.links.create({ kind: 'dummy', name: rec.name, up: true });
      return rec;
    } catch (e) {
      if (!isMacnetError(e, 'KERNEL_FEATURE_MISSING')) throw e;
      log.info('kernel has no dummy links: an empty bridge serves as the internal parent', { parent: rec.name });
    }
  }
  await k.links.create({ kind: 'bridge', name: rec.name, up: true });
  return { ...rec, kind: 'bridge' };
}

export async function setupNetwork(
  k: Kernel,
  state: DriverState,
  c: NetworkConfig,
  plan: ParentPlan,
  log: Logger,
): Promise<void> {
  // Record the intent first: a crash between the kernel work and the final write then leaves a
  // 'creating' record that the next start tears down, never an unaccounted link.
  let parentRec: ParentRecord | undefined = plan.managed
    ? { ...plan.managed, networks: [...plan.managed.networks.filter((n) => n !== c.id), c.id] }
    : plan.create
      ? { name: c.parent.name, kind: plan.create, ...(c.parent.vlan && { vlan: c.parent.vlan }), networks: [c.id] }
      : undefined;
  await state.commit(`create ${describeNet(c)}`, [
    { op: 'create', key: networkKey(c.id), value: encodeRecord({ config: c, state: 'creating' }) },
    ...(parentRec ? [putJson(parentKey(parentRec.name), parentRec)] : []),
  ]);
  let createdLink = false;
  try {
    if (plan.create && !plan.existing) {
      parentRec = await createParent(k, parentRec!, log);
      createdLink = true;
      await state.commit(`create ${describeNet(c)}`, [putJson(parentKey(parentRec.name), parentRec)]);
    }
    if (kindOf(c).trialChildAtCreate) await trialChild(k, c);
    await state.commit(`create ${describeNet(c)}`, [putJson(networkKey(c.id), { config: c, state: 'ready' })]);
  } catch (e) {
    if (createdLink)
      await k.links
        .deleteIfExists(c.parent.name)
        .catch((u) => log.error('undo: could not delete parent', { parent: c.parent.name, error: u }));
    await state.deleteNetwork(c.id);
    if (parentRec) {
      const rest = parentRec.networks.filter((n) => n !== c.id);
      if (rest.length) await state.putParent({ ...parentRec, networks: rest });
      else await state.deleteParent(parentRec.name);
    }
    throw e;
  }
}

/**
 * A network the kernel (or this parent) cannot carry is refused at create, not at its first container (for the
 * kinds that ask, LinkKind trialChildAtCreate): a throwaway child as an endpoint's is created on the parent and
 * deleted again. It is named like an endpoint link, so that reconcile removes it should the daemon die in between.
 */
async function trialChild(k: Kernel, c: NetworkConfig): Promise<void> {
  const name = endpointLinkName(randomBytes(6).toString('hex'));
  await k.links.create(kindOf(c).childSpec(c, name));
  await k.links.deleteIfExists(name);
}

/** Idempotent: an unknown network is success. Removes the parent macnet created with its last network. */
export async function teardownNetwork(k: Kernel, state: DriverState, id: string, log: Logger): Promise<void> {
  const rec = await state.network(id);
  if (!rec) return;
  const c = rec.config;
  for (const ep of await state.endpoints(id)) {
    // Docker deletes endpoints first; these are leftovers of a crash. Their links, if still here, go too.
    await k.links.deleteIfExists(ep.linkName);
    await state.deleteEndpoint(id, ep.endpointId);
  }
  const p = await state.parent(c.parent.name);
  if (p) {
    const rest = p.record.networks.filter((n) => n !== id);
    if (rest.length === 0) {
      if (await k.links.deleteIfExists(c.parent.name))
        log.info('removed parent macnet created', { parent: c.parent.name });
      await state.deleteParent(c.parent.name);
    } else {
      await state.putParent({ ...p.record, networks: rest });
    }
  }
  await state.deleteNetwork(id);
}
