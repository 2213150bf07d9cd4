// lan.new-mac: does the LAN pass frames from a MAC it has never seen? Hypervisors' virtual switches (VMware
// without forged transmits / promiscuous mode, Hyper-V without MAC spoofing, Azure, AWS) and switch port
// security drop them, and nothing on the host can tell but trying: a temporary macvlan child of the parent, with
// a fresh random locally administered MAC, asks the gateway (ARP; NDP where the parent has IPv6) while the parent
// asks too, from its own MAC. The parent answered and the child did not: frames from extra MACs are dropped.
// The child is created directly inside a throwaway namespace held by an fd (ScratchNetns): it never exists in
// the host's namespace, and the kernel removes it with the namespace however this process ends.
import { isMacnetError } from '../errors';
import { Kernel, type Link, ScratchNetns } from '../kernel';
import { linkLocalOf } from '../probe/packets';
import { type Family, ipFamily } from '../types/address';
import { signedMac } from '../types/mac';
import { askAll, Asker, type Question } from './ask-gateway';
import type { DoctorContext, Finding } from './finding';

export interface NewMacOptions {
  /** Questions per family (default 3), `gapMs` apart (default 400 ms). */
  rounds?: number;
  gapMs?: number;
}

const CHECK = 'lan.new-mac';
/** 02: locally administered, unicast, and none of macnet's signatures (types/mac.ts): `macnet scan` elsewhere
 *  must not take the probe for another host's container. */
const DOCTOR_MAC_FIRST_OCTET = 0x02;
const CHILD = 'dr-newmac';

const notChecked = (summary: string, fix: string, detail: Finding['detail'] = {}): Finding => ({
  check: CHECK,
  severity: 'warn',
  summary: `not checked: ${summary}`,
  fix,
  detail,
});

/** The default route's gateway of `family` through the parent, read over netlink. */
export async function defaultGateway(k: Kernel, p: Link, family: Family): Promise<string | undefined> {
  const routes = await k.routes.list({ family });
  return routes.find((r) => r.dst === 'default' && r.gateway && r.oif === p.index)?.gateway;
}

/** Gateways to ask: ctx.gateway for its family, the parent's default routes' for the others. */
async function question(k: Kernel, p: Link, given?: string): Promise<Question & { parentV6Source?: string }> {
  const gf = given ? ipFamily(given) : undefined;
  const v4 = gf === 4 ? given : await defaultGateway(k, p, 4);
  const addrs = await k.addresses.list({ link: p.index, family: 6 });
  // NDP only where the parent speaks IPv6: its own address is the source of its question.
  const own = addrs.find((a) => a.address.startsWith('fe80:')) ?? addrs[0];
  const v6 = own ? (gf === 6 ? given : await defaultGateway(k, p, 6)) : undefined;
  return { ...(v4 && { v4 }), ...(v6 && { v6 }), ...(own && { parentV6Source: own.address }) };
}

function verdict(ctx: DoctorContext, q: Question, parent: Asker, child: Asker, detail: Finding['detail']): Finding {
  const fams = [...(q.v4 ? (['v4'] as const) : []), ...(q.v6 ? (['v6'] as const) : [])];
  const got = (a: Asker, f: 'v4' | 'v6') => a.answers[`${f}Ms`] !== undefined;
  const gw = [q.v4, q.v6].filter(Boolean).join(' and ');
  const dropped = fams.filter((f) => got(parent, f) && !got(child, f));
  if (dropped.length) {
    const env = ctx.environment;
    const fix = env.switchFix
      ? `${env.switchFix}; or use -o kind=ipvlan (its containers use the parent's MAC)`
      : "use -o kind=ipvlan (its containers use the parent's MAC), or allow more MACs on the switch port " +
        '(port security, MAC limit)';
    return {
      check: CHECK,
      severity: 'blocking',
      summary:
        `the LAN drops frames from new MACs: the gateway ${gw} answered the parent but not a macvlan child with a ` +
        `new MAC (${dropped.map((f) => (f === 'v4' ? 'ARP' : 'NDP')).join(', ')})` +
        (env.name !== 'bare-metal' && env.name !== 'unknown' ? `; this host runs on ${env.name}` : ''),
      fix,
      detail,
    };
  }
  if (fams.some((f) => got(child, f))) {
    return {
      check: CHECK,
      severity: 'ok',
      summary: `the gateway ${gw} answered a new MAC: the LAN accepts it`,
      detail,
    };
  }
  return {
    check: CHECK,
    severity: 'warn',
    summary:
      `the gateway ${gw} answered neither the parent nor the new MAC: cannot tell whether the LAN drops new ` + 'MACs',
    fix: 'name a machine that answers ARP: macnet doctor --network NET (its gateway), or check the gateway address',
    detail,
  };
}

/** The check: lan.new-mac (nothing without a parent). */
export async function checkNewMac(ctx: DoctorContext, opts: NewMacOptions = {}): Promise<Finding[]> {
  const parent = ctx.parent;
  if (parent === undefined) return [];
  // A network whose containers send from the parent's MAC (ipvlan, passthru) shows the LAN no new MAC: nothing to
  // ask, and no frame sent.
  if (ctx.network && !ctx.network.ownMacs)
    return [
      {
        check: CHECK,
        severity: 'ok',
        summary:
          `${ctx.network.name}'s containers send from ${parent}'s own MAC (${ctx.network.kind}): ` +
          'no new MAC on the LAN',
        detail: { network: ctx.network.name, kind: ctx.network.kind },
      },
    ];
  return Kernel.with(undefined, async (k) => {
    const p = await k.links.find(parent).catch(() => undefined);
    if (!p) {
      // name.vid on an existing base is made at docker network create; its LAN (that vlan) cannot be asked before.
      const vlan = /^(.+)\.(\d{1,4})$/.exec(parent);
      if (vlan && (await k.links.find(vlan[1]!).catch(() => undefined)))
        return [
          notChecked(
            `${parent} is not there yet (macnet creates it on ${vlan[1]}), so vlan ${vlan[2]} cannot be asked`,
            'create the network, then run macnet doctor --network NET',
          ),
        ];
      return [notChecked(`parent ${JSON.stringify(parent)} does not exist`, 'see parent.exists')];
    }
    if (!p.up || !p.lowerUp)
      return [notChecked(`${p.name} is down or has no carrier`, 'see parent.up and parent.carrier; then run again')];
    const q = await question(k, p, ctx.gateway);
    if (!q.v4 && !q.v6)
      return [
        notChecked(
          `no gateway to ask: ${p.name} has no default route`,
          'macnet doctor --network NET (its subnet gateway), or add the default route',
        ),
      ];
    const mac = signedMac(DOCTOR_MAC_FIRST_OCTET);
    try {
      return [await ask(ctx, k, p, q, mac, opts)];
    } catch (e) {
      // No namespace or packet socket (no CAP_SYS_ADMIN or CAP_NET_RAW, a seccomp profile): say so, as a finding.
      const why = e instanceof Error ? e.message : String(e);
      return [notChecked(`the check could not run: ${why}`, 'run macnet doctor as root', { error: why })];
    }
  });
}

async function ask(
  ctx: DoctorContext,
  k: Kernel,
  p: Link,
  q: Question & { parentV6Source?: string },
  mac: string,
  opts: NewMacOptions,
): Promise<Finding> {
  const ns = ScratchNetns.open();
  let inNs: Kernel | undefined;
  const askers: Asker[] = [];
  const t0 = performance.now();
  try {
    let child: Link;
    try {
      child = await k.links.create({
        kind: 'macvlan',
        name: CHILD,
        parent: p.index,
        mode: 'bridge',
        mac,
        netns: ns.path,
      });
    } catch (e) {
      // The kernel refuses a macvlan here (passthru, ipvlan children, a bridge or bond port: EINVAL, EBUSY):
      // so would `docker network create`.
      const why = isMacnetError(e) ? e.message : String(e);
      return {
        check: CHECK,
        severity: 'blocking',
        summary: `a macvlan child of ${p.name} cannot be made: ${why}`,
        fix:
          'see parent.passthru and parent.ipvlan; a bridge or bond port cannot carry macvlan: use the bridge or ' +
          'bond as the parent',
        detail: { parent: p.name, error: why },
      };
    }
    inNs = Kernel.open(ns.path);
    // No IPv6 link-local of its own: the child only asks; the kernel must not send DAD or router solicitations.
    await inNs.links.set(child.index, { ipv6LinkLocal: false });
    await inNs.links.setUp(child.index);
    const childQ: Question = { ...q, v6Source: linkLocalOf(mac) };
    const parentQ: Question = { ...(q.v4 && { v4: q.v4 }), ...(q.v6 && { v6: q.v6, v6Source: q.parentV6Source }) };
    // One at a time: each is in `askers` (closed below) before the next can fail.
    askers.push(await Asker.open(k, p.index, p.mac!, parentQ));
    askers.push(await Asker.open(inNs, child.index, mac, childQ));
    const askMs = await askAll(askers, opts.rounds ?? 3, opts.gapMs ?? 400);
    const [pa, ca] = askers as [Asker, Asker];
    const detail = {
      parent: p.name,
      mac,
      ...(q.v4 && { gateway4: q.v4 }),
      ...(q.v6 && { gateway6: q.v6 }),
      parentArpMs: pa.answers.v4Ms ?? null,
      childArpMs: ca.answers.v4Ms ?? null,
      ...(q.v6 && { parentNdpMs: pa.answers.v6Ms ?? null, childNdpMs: ca.answers.v6Ms ?? null }),
      askMs,
      totalMs: Math.round(performance.now() - t0),
    };
    return verdict(ctx, q, pa, ca, detail);
  } finally {
    for (const a of askers) a.close();
    // Deleted here rather than left to the namespace's end, which the kernel runs later in a work queue: the
    // parent must be free of it when the check returns (a passthru network made right after would fail).
    await inNs?.links.deleteIfExists(CHILD).catch(() => undefined);
    await inNs?.close();
    ns.close();
  }
}
