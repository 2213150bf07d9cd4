// A DHCP lease as macnet keeps it, and how a server's ACK becomes one (RFC 2131 4.4.5 timers).
import { type DhcpMessage, leaseOptions, maskToPrefix } from './packets';

/** A lease as the daemon persists it (plain JSON). Times are seconds relative to `obtainedAt`. */
export interface DhcpLease {
  readonly address: string;
  readonly prefixLength: number;
  readonly router?: string;
  readonly dns: string[];
  readonly domain?: string;
  readonly serverId: string;
  /** Source MAC of the server's ACK: the server, or the relay (router) that is the next hop towards it. */
  readonly serverMac: string;
  /** 0xffffffff: infinite (RFC 2132 9.2); renewSeconds and rebindSeconds are then infinite too. */
  readonly leaseSeconds: number;
  readonly renewSeconds: number;
  readonly rebindSeconds: number;
  /** When the REQUEST that this ACK answers was first sent (RFC 2131 4.4.1: lease times count from there). */
  readonly obtainedAt: number;
  readonly mac: string;
  /** Option 61 as hex; RFC 2131 4.2: the same identifier must be used in every later message. */
  readonly clientId: string;
  readonly hostname?: string;
}

export const INFINITE = 0xffffffff;

/** RFC 2131 2.2 leaves the mask to the server; without option 1, the classful default (RFC 2132 3.3 note). */
function classfulPrefix(ip: string): number {
  const first = Number(ip.split('.')[0]);
  return first < 128 ? 8 : first < 192 ? 16 : 24;
}

export function leaseFrom(
  ack: DhcpMessage,
  srcMac: string,
  srcIp: string,
  base: { mac: string; clientId: string; hostname?: string | undefined },
  obtainedAt: number,
): DhcpLease {
  const o = leaseOptions(ack);
  const lease = o.leaseSeconds ?? INFINITE;
  // RFC 2131 4.4.5 defaults; a server's T1/T2 that are out of order are ignored rather than trusted.
  let t1 = lease === INFINITE ? INFINITE : Math.floor(lease * 0.5);
  let t2 = lease === INFINITE ? INFINITE : Math.floor(lease * 0.875);
  if (o.t2 !== undefined && o.t2 <= lease) t2 = o.t2;
  if (o.t1 !== undefined && o.t1 <= t2) t1 = o.t1;
  if (t1 > t2) t1 = Math.floor(t2 * (0.5 / 0.875));
  return {
    address: ack.yiaddr,
    prefixLength: (o.subnetMask ? maskToPrefix(o.subnetMask) : undefined) ?? classfulPrefix(ack.yiaddr),
    ...(o.router && { router: o.router }),
    dns: o.dns,
    ...(o.domain && { domain: o.domain }),
    serverId: o.serverId ?? srcIp,
    serverMac: srcMac,
    leaseSeconds: lease,
    renewSeconds: t1,
    rebindSeconds: t2,
    obtainedAt,
    mac: base.mac,
    clientId: base.clientId,
    ...(base.hostname && { hostname: base.hostname }),
  };
}
