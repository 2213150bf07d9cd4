// parent.*: the parent as the kernel has it now, over netlink: it exists, is up, has carrier, its MTU; and who
// uses it already. A passthru macvlan takes a parent alone (the kernel refuses every further child, EINVAL), and
// the kernel gives a parent to macvlan or to ipvlan, never both (the second kind's first child gets EBUSY): each
// would make `docker network create -d macnet` fail, or worse its first `docker run`.
import { Kernel, type Link } from '../kernel';
import { childrenOf, type Child } from './children';
import type { DoctorContext, DoctorNetwork, Finding } from './finding';

/** ARPHRD_LOOPBACK: not a candidate parent when we list the links a user may have meant. */
const ARPHRD_LOOPBACK = 772;
const LIST_AT_MOST = 12;

const where = (c: Child) => (c.netns === 'host' ? 'in the host namespace' : `in namespace ${c.netns}`);
const names = (cs: readonly Child[]) => cs.map((c) => `${c.name} (${where(c)})`).join(', ');

function missing(parent: string, links: readonly Link[]): Finding {
  const candidates = links.filter((l) => l.hwType !== ARPHRD_LOOPBACK).map((l) => l.name);
  const shown = candidates.slice(0, LIST_AT_MOST).join(', ');
  const more = candidates.length > LIST_AT_MOST ? ` and ${candidates.length - LIST_AT_MOST} more` : '';
  return {
    check: 'parent.exists',
    severity: 'blocking',
    summary:
      `parent ${JSON.stringify(parent)} does not exist; ` +
      (candidates.length ? `the links here are ${shown}${more}` : 'this host has no link besides loopback'),
    fix: 'give an existing interface: macnet doctor --parent IF, and -o parent=IF at docker network create',
    detail: { parent, links: candidates.join(',') },
  };
}

/** `vlanOf`: the name.vid that is not there yet and will be made on p (its base), which is then judged. */
function state(p: Link, vlanOf?: { name: string; id: string }): Finding[] {
  const detail = { parent: p.name, index: p.index, mtu: p.mtu, operstate: p.operstate, mac: p.mac ?? null };
  const facts = `(${p.kind ?? 'device'}, MTU ${p.mtu}${p.mac ? `, MAC ${p.mac}` : ''})`;
  const out: Finding[] = [
    vlanOf
      ? {
          check: 'parent.exists',
          severity: 'ok',
          summary:
            `parent ${vlanOf.name} is not there yet: macnet creates it as vlan ${vlanOf.id} on ${p.name}, ` +
            `which exists ${facts}`,
          detail: { ...detail, parent: vlanOf.name, base: p.name, vlan: Number(vlanOf.id), kind: p.kind ?? null },
        }
      : {
          check: 'parent.exists',
          severity: 'ok',
          summary: `parent ${p.name} exists ${facts}`,
          detail: { ...detail, kind: p.kind ?? null },
        },
  ];
  out.push(
    p.up
      ? { check: 'parent.up', severity: 'ok', summary: `${p.name} is up`, detail }
      : {
          check: 'parent.up',
          severity: 'blocking',
          summary: `${p.name} is down: its macvlan and ipvlan children send and receive nothing`,
          fix: `ip link set ${p.name} up (and make it come up at boot in the host's network configuration)`,
          detail,
        },
  );
  if (!p.up) {
    // The kernel reports carrier (IFF_LOWER_UP) only for a link that is up.
    out.push({
      check: 'parent.carrier',
      severity: 'warn',
      summary: `carrier of ${p.name} unknown while it is down`,
      fix: `bring ${p.name} up, then run macnet doctor again`,
      detail,
    });
  } else if (!p.lowerUp) {
    out.push({
      check: 'parent.carrier',
      severity: 'blocking',
      summary: `${p.name} has no carrier (operstate ${p.operstate}): nothing is plugged in, or the other end is down`,
      fix: `check the cable or the switch port (for a veth: bring its peer up); ip link show ${p.name} says NO-CARRIER`,
      detail,
    });
  } else {
    out.push({ check: 'parent.carrier', severity: 'ok', summary: `${p.name} has carrier`, detail });
  }
  return out;
}

/** A child of --network's own: in one of its containers' namespaces, or its endpoint link not moved yet. */
function ownChild(c: Child, network: DoctorNetwork | undefined): boolean {
  if (!network?.own) return false;
  return c.netns === 'host'
    ? network.own.links.includes(c.name)
    : c.netnsInode !== undefined && network.own.netns.includes(c.netnsInode);
}

function users(p: Link, children: readonly Child[], network: DoctorNetwork | undefined): Finding[] {
  // Without --network the question is whether a macvlan network (the default kind) can use the parent.
  const ownMacs = network?.ownMacs ?? true;
  const allPassthru = children.filter((c) => c.port === 'macvlan-port' && c.mode === 'passthru');
  // The network's own passthru child is the network working, not something in its way.
  const passthru = allPassthru.filter((c) => !ownChild(c, network));
  const own = allPassthru.filter((c) => ownChild(c, network));
  const ipvlan = children.filter((c) => c.port === 'ipvlan-port');
  const macvlan = children.filter((c) => c.port === 'macvlan-port');
  const detail = { parent: p.name, macvlanChildren: macvlan.length, ipvlanChildren: ipvlan.length };
  return [
    passthru.length
      ? {
          check: 'parent.passthru',
          severity: 'blocking',
          summary:
            `${p.name} is taken by a passthru macvlan, ${names(passthru)}: passthru takes the parent alone, the ` +
            'kernel refuses any further macvlan or ipvlan child',
          fix:
            'use another parent, or remove that network (docker network rm) or link ' +
            `(ip link del ${passthru[0]!.name})`,
          detail: { ...detail, passthru: names(passthru) },
        }
      : own.length
        ? {
            check: 'parent.passthru',
            severity: 'ok',
            summary: `${p.name} is taken by network ${network!.name}'s own passthru child, ${names(own)}`,
            detail: { ...detail, ownPassthru: names(own) },
          }
        : { check: 'parent.passthru', severity: 'ok', summary: `no passthru macvlan on ${p.name}`, detail },
    ipvlan.length && ownMacs
      ? {
          check: 'parent.ipvlan',
          severity: 'blocking',
          summary:
            `${p.name} has ipvlan children, ${names(ipvlan)}: the kernel gives a parent to macvlan or to ipvlan, ` +
            'never both, so a macvlan network on it fails (EBUSY); ipvlan networks (-o kind=ipvlan) work',
          fix: `use -o kind=ipvlan on ${p.name}, or another parent for macvlan networks`,
          detail: { ...detail, ipvlan: names(ipvlan) },
        }
      : {
          check: 'parent.ipvlan',
          severity: 'ok',
          summary: ipvlan.length
            ? `${p.name} has ipvlan children, ${names(ipvlan)}: the network's containers use no macvlan child`
            : `no ipvlan children on ${p.name}`,
          detail,
        },
  ];
}

/**
 * The check: parent.exists, parent.up, parent.carrier, parent.passthru, parent.ipvlan. Nothing without a parent
 * (--parent or --network); only parent.exists when it is missing (name.vid whose base exists is not missing).
 */
export async function checkParentLive(ctx: DoctorContext): Promise<Finding[]> {
  const parent = ctx.parent;
  if (parent === undefined) return [];
  return Kernel.with(undefined, async (k) => {
    // A name the kernel cannot have (too long, a slash) is a missing parent too.
    const p = await k.links.find(parent).catch(() => undefined);
    if (!p) {
      // name.vid that is not there yet is no missing parent when its base is: macnet creates the vlan on it
      // (docs/driver.md), so the base's state decides, and the new vlan has no children yet.
      const vlan = /^(.+)\.(\d{1,4})$/.exec(parent);
      const base = vlan ? await k.links.find(vlan[1]!).catch(() => undefined) : undefined;
      if (!base) return [missing(parent, await k.links.list())];
      return [...state(base, { name: parent, id: vlan![2]! }), ...users({ ...base, name: parent }, [], ctx.network)];
    }
    const children = await childrenOf(k, p, ctx);
    return [...state(p), ...users(p, children, ctx.network)];
  });
}
