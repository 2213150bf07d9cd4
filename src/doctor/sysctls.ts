// sysctl.*: the IPv4 sysctls that decide whether host access (-o host_access=true) works, read from
// <procRoot>/sys/net (a tree made by hand in the unit tests). Host access is a macvlan/ipvlan link of the host's
// (mnh…) with the host's address as /32, arp_filter=1, and a /32 route per container through it
// (docs/driver.md); the link is made later, so its values are what net.ipv4.conf.default holds now, combined
// with net.ipv4.conf.all as the kernel combines them (include/linux/inetdevice.h: rp_filter, arp_ignore and
// arp_announce take the larger of all and the link's own, arp_filter either). What each value does to host
// access was measured in the lab (docs/doctor.md, "sysctl.*"): a host link and a container on one veth parent.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DoctorContext, Finding } from './finding';

type Key = 'rp_filter' | 'arp_ignore' | 'arp_announce' | 'arp_filter';

/** One value, or undefined when the file is missing (no IPv4 on the link, no such link) or unreadable. */
export function readConf(procRoot: string, dev: string, key: Key): number | undefined {
  try {
    const v = Number.parseInt(fs.readFileSync(path.join(procRoot, 'sys/net/ipv4/conf', dev, key), 'utf8'), 10);
    return Number.isNaN(v) ? undefined : v;
  } catch {
    return undefined;
  }
}

const maxOf = (...v: (number | undefined)[]) =>
  v.some((x) => x !== undefined) ? Math.max(...v.map((x) => x ?? 0)) : undefined;

interface Values {
  all?: number;
  default?: number;
  parent?: number;
}

function values(ctx: DoctorContext, key: Key): Values {
  const v: Values = {};
  const all = readConf(ctx.procRoot, 'all', key);
  const def = readConf(ctx.procRoot, 'default', key);
  // A parent name with a slash would read another file; such a name is no link anyway.
  const parent = ctx.parent && !ctx.parent.includes('/') ? readConf(ctx.procRoot, ctx.parent, key) : undefined;
  if (all !== undefined) v.all = all;
  if (def !== undefined) v.default = def;
  if (parent !== undefined) v.parent = parent;
  return v;
}

function detail(key: Key, v: Values, hostLink: number | undefined, parentEff: number | undefined) {
  return {
    [`net.ipv4.conf.all.${key}`]: v.all ?? null,
    [`net.ipv4.conf.default.${key}`]: v.default ?? null,
    parentValue: v.parent ?? null,
    hostAccessLinkEffective: hostLink ?? null,
    parentEffective: parentEff ?? null,
  };
}

const unreadable = (key: Key, ctx: DoctorContext): Finding => ({
  check: `sysctl.${key}`,
  severity: 'warn',
  summary: `net.ipv4.conf.all.${key} cannot be read under ${path.join(ctx.procRoot, 'sys/net')}: IPv4 disabled?`,
  fix: `cat ${path.join(ctx.procRoot, 'sys/net/ipv4/conf/all', key)}`,
});

/** rp_filter: macnet routes each container's /32 through the host link, so strict mode passes what it sends. */
function rpFilter(ctx: DoctorContext): Finding {
  const v = values(ctx, 'rp_filter');
  if (v.all === undefined) return unreadable('rp_filter', ctx);
  const host = maxOf(v.all, v.default);
  const par = maxOf(v.all, v.parent);
  const mode = (x: number | undefined) => (x === 1 ? 'strict' : x === 2 ? 'loose' : 'off');
  return {
    check: 'sysctl.rp_filter',
    severity: 'ok',
    summary:
      `reverse-path filter ${mode(host)} for the host-access link, ${mode(par)} on the parent: host access ` +
      "routes each container's address (/32) through its link, so even strict mode passes their packets; strict " +
      'drops only a container source address that macnet does not route (one added inside the container by hand)',
    detail: detail('rp_filter', v, host, par),
  };
}

/**
 * arp_ignore: 1 makes the host link answer ARP only for its own (host-access) address, so containers lose the
 * host's other addresses; 2 also wants the asker in the address's subnet, and the host-access address is a /32:
 * a container asking first gets no answer at all.
 */
function arpIgnore(ctx: DoctorContext): Finding {
  const v = values(ctx, 'arp_ignore');
  if (v.all === undefined) return unreadable('arp_ignore', ctx);
  const host = maxOf(v.all, v.default)!;
  const par = maxOf(v.all, v.parent);
  const d = detail('arp_ignore', v, host, par);
  const lan =
    par !== undefined && par >= 1
      ? `; on the parent (${par}) LAN machines asking for the host-access address get no ARP answer`
      : '';
  const fix =
    'sysctl -w net.ipv4.conf.all.arp_ignore=0 net.ipv4.conf.default.arp_ignore=0 (before the first host-access ' +
    'network; and in /etc/sysctl.d to keep it), or do not use -o host_access=true';
  if (host >= 2) {
    return {
      check: 'sysctl.arp_ignore',
      severity: 'warn',
      summary:
        `arp_ignore ${host} for the host-access link: host access (-o host_access=true) fails, a container asking ` +
        `for the host's address gets no ARP answer (the link's address is a /32, so no asker is in its subnet)${lan}`,
      fix,
      detail: d,
    };
  }
  if (host === 1) {
    return {
      check: 'sysctl.arp_ignore',
      severity: 'warn',
      summary:
        'arp_ignore 1 for the host-access link: containers reach the host only at its host-access address, not at ' +
        `the host's other addresses (its LAN address does not answer them)${lan}`,
      fix,
      detail: d,
    };
  }
  return {
    check: 'sysctl.arp_ignore',
    severity: 'ok',
    summary: `arp_ignore 0 for the host-access link: containers reach the host at any of its addresses${lan}`,
    detail: d,
  };
}

/** arp_filter and arp_announce: read and reported; neither changed what host access does in the lab (see the docs). */
function harmless(ctx: DoctorContext, key: 'arp_filter' | 'arp_announce', why: string): Finding {
  const v = values(ctx, key);
  if (v.all === undefined) return unreadable(key, ctx);
  const combine = key === 'arp_filter' ? (a?: number, b?: number) => ((a ?? 0) || (b ?? 0) ? 1 : 0) : maxOf;
  const host = combine(v.all, v.default);
  const par = combine(v.all, v.parent);
  return {
    check: `sysctl.${key}`,
    severity: 'ok',
    summary: `${key} ${par ?? v.all} on the parent, ${host} for the host-access link: ${why}`,
    detail: detail(key, v, host, par),
  };
}

/** The check: sysctl.rp_filter, sysctl.arp_ignore, sysctl.arp_filter, sysctl.arp_announce. */
export function checkSysctls(ctx: DoctorContext): Promise<Finding[]> {
  return Promise.resolve([
    rpFilter(ctx),
    arpIgnore(ctx),
    harmless(
      ctx,
      'arp_filter',
      'the parent answers the LAN, whose replies it routes itself; macnet sets 1 on the host-access link anyway',
    ),
    harmless(
      ctx,
      'arp_announce',
      "it picks the sender address of the host's own ARP requests; host access routes name that address (src)",
    ),
  ]);
}
