// The parent's kind and MTU as sysfs shows them (/sys/class/net/IF). Netlink knows the kind of a link macnet made,
// but not whether a plain device is wireless or backed by hardware: sysfs does (the `wireless` directory, the
// `phy80211` link, uevent's DEVTYPE, the `device` link). sysfs shows the links of the network namespace that
// mounted it, so doctor reads it in the host's namespaces (docs/doctor.md).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Check, DoctorContext, Finding, Severity } from './finding';

export type ParentKind =
  'ethernet' | 'wireless' | 'bridge' | 'bond' | 'vlan' | 'veth' | 'stacked' | 'virtual' | 'loopback' | 'other';

export interface ParentSysfs {
  readonly name: string;
  readonly kind: ParentKind;
  /** ARPHRD_* from `type`: 1 is Ethernet, 772 loopback. */
  readonly type: number;
  readonly mtu: number;
  /** The bond's mode as sysfs names it ("balance-alb 6"), for a bond. */
  readonly bondMode?: string;
  /** The link this one sits on (`lower_*`), for a vlan or a stacked link. */
  readonly lower?: string;
}

/** The IPv6 minimum link MTU (RFC 8200): below it the kernel turns IPv6 off on the link and its children. */
export const IPV6_MIN_MTU = 1280;

function read(dir: string, file: string): string | undefined {
  try {
    return fs.readFileSync(path.join(dir, file), 'utf8').trim();
  } catch {
    return undefined;
  }
}

function uevent(dir: string): Record<string, string> {
  return Object.fromEntries(
    (read(dir, 'uevent') ?? '')
      .split('\n')
      .map((l) => l.split('='))
      .filter((kv) => kv.length === 2) as [string, string][],
  );
}

/** The parent as sysfs shows it, or undefined when sysfs has no such link. */
export function readParentSysfs(sysRoot: string, name: string): ParentSysfs | undefined {
  const dir = path.join(sysRoot, 'class', 'net', name);
  if (!fs.existsSync(dir)) return undefined;
  const entries = fs.readdirSync(dir);
  const has = (e: string) => entries.includes(e);
  const type = Number(read(dir, 'type') ?? NaN);
  const mtu = Number(read(dir, 'mtu') ?? NaN);
  const devtype = uevent(dir).DEVTYPE;
  const lower = entries.find((e) => e.startsWith('lower_'))?.slice('lower_'.length);
  const iflink = read(dir, 'iflink');
  const ifindex = read(dir, 'ifindex');
  const base = { name, type, mtu, ...(lower !== undefined ? { lower } : {}) };
  let kind: ParentKind;
  if (has('wireless') || has('phy80211') || devtype === 'wlan') kind = 'wireless';
  else if (has('bridge') || devtype === 'bridge') kind = 'bridge';
  else if (has('bonding') || devtype === 'bond') {
    const bondMode = read(path.join(dir, 'bonding'), 'mode');
    return { ...base, kind: 'bond', ...(bondMode !== undefined ? { bondMode } : {}) };
  } else if (devtype === 'vlan') kind = 'vlan';
  else if (type === 772) kind = 'loopback';
  else if (type !== 1) kind = 'other';
  else if (lower !== undefined) kind = 'stacked';
  // A veth's iflink is its peer's index; it has no lower link and no device behind it.
  else if (iflink !== undefined && iflink !== ifindex && !has('device')) kind = 'veth';
  else if (has('device')) kind = 'ethernet';
  else kind = 'virtual';
  return { ...base, kind };
}

const KIND_TEXT: Readonly<Record<ParentKind, string>> = {
  ethernet: 'an Ethernet device',
  wireless: 'a wireless (802.11) device',
  bridge: 'a bridge',
  bond: 'a bond',
  vlan: 'an 802.1q vlan',
  veth: 'a veth',
  stacked: 'a link stacked on another (macvlan or ipvlan)',
  virtual: 'a virtual Ethernet link without hardware (dummy, tap)',
  loopback: 'the loopback',
  other: 'not Ethernet-like',
};

/** Bond modes that choose a slave per peer and rewrite source MACs (alb: ARP replies too). */
const MAC_REWRITING_BONDS = /^balance-(alb|tlb)\b/;

function kindFinding(ctx: DoctorContext, p: ParentSysfs, note: string): Finding {
  const ownMacs = ctx.network?.ownMacs ?? true;
  const detail = { parent: p.name, kind: p.kind, type: p.type, ...(p.bondMode ? { bondMode: p.bondMode } : {}) };
  const text = `${p.name} is ${KIND_TEXT[p.kind]}${note}`;
  const finding = (severity: Severity, summary: string, fix?: string): Finding => ({
    check: 'parent.kind',
    severity,
    summary,
    ...(fix !== undefined ? { fix } : {}),
    detail,
  });
  if (p.kind === 'wireless')
    return ownMacs
      ? finding(
          'blocking',
          `${text}: an access point accepts one MAC per station, so containers' own MACs never get through`,
          'use a wired parent, or -o kind=ipvlan (containers share the Wi-Fi MAC; a container is reachable ' +
            'only after it has sent first, moby#43270)',
        )
      : finding(
          'warn',
          `${text}: ipvlan shares its MAC, but a container is reachable only after it has sent first (moby#43270)`,
          'use a wired parent; or have each container send once at start (a ping to the gateway)',
        );
  if (p.kind === 'loopback' || p.kind === 'other')
    return finding(
      'blocking',
      `${text} (type ${p.type}): macvlan and ipvlan need an Ethernet parent`,
      'give an Ethernet interface (or a bond, bridge or vlan on one) as the parent',
    );
  if (p.kind === 'bond' && p.bondMode !== undefined && MAC_REWRITING_BONDS.test(p.bondMode) && ownMacs)
    return finding(
      'warn',
      `${text} in mode ${p.bondMode}: it rewrites source MACs per slave (alb: ARP replies too), so the LAN ` +
        "sees containers' traffic from the wrong MAC",
      'use bond mode active-backup or 802.3ad for the parent, or -o kind=ipvlan',
    );
  return finding('ok', text);
}

function mtuFinding(ctx: DoctorContext, p: ParentSysfs): Finding {
  const detail = {
    parent: p.name,
    mtu: p.mtu,
    ...(ctx.network?.mtu !== undefined ? { networkMtu: ctx.network.mtu } : {}),
  };
  const want = ctx.network?.mtu;
  if (want !== undefined && want > p.mtu)
    return {
      check: 'parent.mtu',
      severity: 'blocking',
      summary: `network ${ctx.network!.name} asks for MTU ${want}, above ${p.name}'s ${p.mtu}: its links fail`,
      fix: `raise the parent's MTU (ip link set ${p.name} mtu ${want}) or create the network with -o mtu=${p.mtu}`,
      detail,
    };
  if (p.mtu < IPV6_MIN_MTU) {
    const v6 = ctx.network?.ipv6 ?? false;
    return {
      check: 'parent.mtu',
      severity: v6 ? 'blocking' : 'warn',
      summary:
        `${p.name} has MTU ${p.mtu}, below IPv6's minimum ${IPV6_MIN_MTU}: the kernel turns IPv6 off on it and ` +
        `its children${v6 ? `, and network ${ctx.network!.name} has an IPv6 subnet` : ' (IPv4 works)'}`,
      fix: `raise the parent's MTU to at least ${IPV6_MIN_MTU} (ip link set ${p.name} mtu 1500)`,
      detail,
    };
  }
  return { check: 'parent.mtu', severity: 'ok', summary: `${p.name} has MTU ${p.mtu}`, detail };
}

/** parent.kind and parent.mtu; nothing without a parent. "eth0.50" that is not there yet is judged by eth0. */
export const checkParentSysfs: Check = (ctx: DoctorContext): Promise<Finding[]> => {
  if (ctx.parent === undefined) return Promise.resolve([]);
  const here = readParentSysfs(ctx.sysRoot, ctx.parent);
  if (here) return Promise.resolve([kindFinding(ctx, here, ''), mtuFinding(ctx, here)]);
  // macnet creates a missing base.vid parent on its base (docs/driver.md): the base decides.
  const vlan = /^(.+)\.(\d{1,4})$/.exec(ctx.parent);
  const base = vlan ? readParentSysfs(ctx.sysRoot, vlan[1]!) : undefined;
  if (base) {
    const note = `; ${ctx.parent} is not there yet, macnet creates it on ${base.name} (vlan ${vlan![2]})`;
    return Promise.resolve([kindFinding(ctx, base, note), mtuFinding(ctx, base)]);
  }
  // No such link, nor a base for name.vid: parent.exists (parent-live.ts, netlink) blocks for that, naming the
  // links there are. One cause, one blocking finding: kind and MTU stand down as ok, saying why.
  const sysPath = path.join(ctx.sysRoot, 'class', 'net', ctx.parent);
  const detail = { parent: ctx.parent, kind: null, standsDownFor: 'parent.exists', path: sysPath };
  const why = `${ctx.parent} does not exist (no ${sysPath}); parent.exists reports it`;
  return Promise.resolve([
    { check: 'parent.kind', severity: 'ok', summary: `not judged: ${why}`, detail },
    { check: 'parent.mtu', severity: 'ok', summary: `not judged: ${why}`, detail: { ...detail, mtu: null } },
  ]);
};
