// A DHCPv4 client for addresses macnet holds on behalf of containers (RFC 2131). There is no dhclient or
// udhcpc process: every message is built here and sent on an AF_PACKET socket the caller opens (SOCK_DGRAM,
// protocol ETH_P_IP), so this module does not care which namespace or link the socket lives on:
// - acquire() and decline() run before the container exists, from a probe link on the parent, with the
//   container's future MAC as chaddr and the broadcast flag set, so the server's replies are broadcasts
//   the probe link hears (a unicast to the new MAC would reach no link);
// - renew(), rebind() and release() carry ciaddr = the leased address; the server answers unicast to it,
//   so their socket must be on the container's own interface, in the container's namespace.
import { MacnetError } from '../errors';
import type { FrameSocket } from '../types/socket';
import {
  DHCPACK,
  DHCPDECLINE,
  DHCPDISCOVER,
  DHCPNAK,
  DHCPOFFER,
  DHCPRELEASE,
  DHCPREQUEST,
  type DhcpMessage,
  encodeDhcp,
  FLAG_BROADCAST,
  leaseOptions,
  OPT,
  optIp,
  PARAMETER_REQUEST_LIST,
} from './packets';
import { BROADCAST_IP, BROADCAST_MAC, exchange, frame, newXid } from './exchange';
import { type DhcpLease, leaseFrom } from './lease';

export interface AcquireOptions {
  /** The container's future MAC: chaddr of every message. */
  mac: string;
  /** Option 61 (e.g. 0x01 + MAC, or 0xff + IAID + DUID as RFC 4361 says). */
  clientId: Buffer;
  hostname?: string;
  /** Option 50 in the DISCOVER: the address we had before (a restart), which the server may honour. */
  requestedAddress?: string;
  /** The whole exchange, retransmissions included, ends within this bound. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Names the link for error messages ("probe link mnp-1 on parent eth0"); the caller knows it. */
  where?: string;
}

export interface RenewOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  where?: string;
}

function commonOptions(clientId: Buffer, hostname: string | undefined): [number, Buffer][] {
  return [
    [OPT.CLIENT_ID, clientId],
    ...(hostname ? [[OPT.HOSTNAME, Buffer.from(hostname, 'latin1')] as [number, Buffer]] : []),
    [OPT.PARAMS, Buffer.from(PARAMETER_REQUEST_LIST)],
  ];
}

const nakReason = (m: DhcpMessage) =>
  leaseOptions(m).message ? `: "${leaseOptions(m).message}"` : ' (no reason given)';

function noAnswer(
  where: string | undefined,
  timeoutMs: number,
  what: string,
  sends: number,
  mac: string,
  extra = '',
): MacnetError {
  return new MacnetError(
    'DHCP_NO_ANSWER',
    `no DHCP server answered on ${where ?? 'the link'} within ${timeoutMs} ms (` +
      `${what} sent ${sends} time${sends === 1 ? '' : 's'} for MAC ${mac}${extra})`,
    { where, timeoutMs, message: what, sends, mac },
  );
}

/**
 * DISCOVER → OFFER → REQUEST → ACK from 0.0.0.0 to 255.255.255.255 with the broadcast flag. A NAK to the
 * REQUEST (the offered address was taken meanwhile) restarts once; a second NAK is DHCP_NAK, silence within
 * `timeoutMs` (default 5000) is DHCP_NO_ANSWER. The first OFFER wins (RFC 2131 4.4.1 allows any choice).
 */
export async function acquire(sock: FrameSocket, opts: AcquireOptions): Promise<DhcpLease> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const mac = opts.mac.toLowerCase();
  const started = Date.now();
  const deadline = started + timeoutMs;
  const common = commonOptions(opts.clientId, opts.hostname);
  const broadcast = (dhcp: Buffer) => ({ frame: frame('0.0.0.0', BROADCAST_IP, dhcp), dstMac: BROADCAST_MAC });
  let lastNak = '';
  for (let attempt = 0; attempt < 2; attempt++) {
    const xid = newXid();
    const offer = await exchange(
      sock,
      {
        xid,
        mac,
        deadline,
        ...(opts.signal && { signal: opts.signal }),
        build: (secs) =>
          broadcast(
            encodeDhcp({
              xid,
              secs,
              flags: FLAG_BROADCAST,
              chaddr: mac,
              type: DHCPDISCOVER,
              options: [
                ...(opts.requestedAddress
                  ? [[OPT.REQUESTED_IP, optIp(opts.requestedAddress)] as [number, Buffer]]
                  : []),
                ...common,
              ],
            }),
          ),
        accept: (m) => {
          const serverId = leaseOptions(m).serverId;
          return m.type === DHCPOFFER && m.yiaddr !== '0.0.0.0' && serverId
            ? { address: m.yiaddr, serverId }
            : undefined;
        },
      },
      started,
    );
    if (!offer.result) throw noAnswer(opts.where, timeoutMs, 'DISCOVER', offer.sends, mac, lastNak);
    const chosen = offer.result;
    const requestedAt = Date.now();
    const ack = await exchange(
      sock,
      {
        xid,
        mac,
        deadline,
        ...(opts.signal && { signal: opts.signal }),
        // RFC 2131 4.3.2 SELECTING: option 54 and 50 filled in, ciaddr zero; broadcast so other servers see the choice.
        build: (secs) =>
          broadcast(
            encodeDhcp({
              xid,
              secs,
              flags: FLAG_BROADCAST,
              chaddr: mac,
              type: DHCPREQUEST,
              options: [[OPT.REQUESTED_IP, optIp(chosen.address)], [OPT.SERVER_ID, optIp(chosen.serverId)], ...common],
            }),
          ),
        accept: (m, srcMac, srcIp) => {
          const serverId = leaseOptions(m).serverId;
          if (m.type === DHCPNAK && (serverId === undefined || serverId === chosen.serverId))
            return { kind: 'nak', msg: m } as const;
          if (m.type === DHCPACK && serverId === chosen.serverId && m.yiaddr === chosen.address)
            return { kind: 'ack', msg: m, srcMac, srcIp } as const;
          return undefined;
        },
      },
      started,
    );
    if (!ack.result) {
      throw noAnswer(
        opts.where,
        timeoutMs,
        'REQUEST',
        ack.sends,
        mac,
        `, after an OFFER of ${chosen.address} from server ${chosen.serverId}`,
      );
    }
    if (ack.result.kind === 'ack') {
      return leaseFrom(
        ack.result.msg,
        ack.result.srcMac,
        ack.result.srcIp,
        { mac, clientId: opts.clientId.toString('hex'), hostname: opts.hostname },
        requestedAt,
      );
    }
    lastNak = `, after a NAK from server ${chosen.serverId} for ${chosen.address}`;
    if (attempt === 1) {
      throw new MacnetError(
        'DHCP_NAK',
        `DHCP server ${chosen.serverId} refused ${chosen.address} for MAC ${mac}` +
          ` on ${opts.where ?? 'the link'} twice${nakReason(ack.result.msg)}`,
        { serverId: chosen.serverId, address: chosen.address, mac },
      );
    }
  }
  throw new Error('unreachable');
}

/** REQUEST with ciaddr (RFC 2131 4.3.2 RENEWING/REBINDING: no option 50, no option 54). */
async function extend(sock: FrameSocket, lease: DhcpLease, opts: RenewOptions, unicast: boolean): Promise<DhcpLease> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const started = Date.now();
  const xid = newXid();
  const clientId = Buffer.from(lease.clientId, 'hex');
  const what = unicast ? `REQUEST (renewing, to server ${lease.serverId})` : 'REQUEST (rebinding, broadcast)';
  const r = await exchange(
    sock,
    {
      xid,
      mac: lease.mac,
      deadline: started + timeoutMs,
      ...(opts.signal && { signal: opts.signal }),
      build: (secs) => {
        const dhcp = encodeDhcp({
          xid,
          secs,
          ciaddr: lease.address,
          chaddr: lease.mac,
          type: DHCPREQUEST,
          options: commonOptions(clientId, lease.hostname),
        });
        return unicast
          ? { frame: frame(lease.address, lease.serverId, dhcp), dstMac: lease.serverMac }
          : { frame: frame(lease.address, BROADCAST_IP, dhcp), dstMac: BROADCAST_MAC };
      },
      accept: (m, srcMac, srcIp) => {
        const serverId = leaseOptions(m).serverId;
        // Renewing talks to one server; rebinding accepts any server's answer (RFC 2131 4.4.5).
        if (unicast && serverId !== undefined && serverId !== lease.serverId) return undefined;
        if (m.type === DHCPNAK) return { kind: 'nak', msg: m } as const;
        if (m.type === DHCPACK && m.yiaddr !== '0.0.0.0') return { kind: 'ack', msg: m, srcMac, srcIp } as const;
        return undefined;
      },
    },
    started,
  );
  if (!r.result) throw noAnswer(opts.where, timeoutMs, what, r.sends, lease.mac, `, lease of ${lease.address}`);
  if (r.result.kind === 'nak') {
    throw new MacnetError(
      'DHCP_NAK',
      `DHCP server ${leaseOptions(r.result.msg).serverId ?? lease.serverId} refused to extend the lease ` +
        `of ${lease.address} for MAC ${lease.mac} on ${opts.where ?? 'the link'}${nakReason(r.result.msg)}`,
      { serverId: lease.serverId, address: lease.address, mac: lease.mac },
    );
  }
  return leaseFrom(r.result.msg, r.result.srcMac, r.result.srcIp, lease, started);
}

/** RENEWING: unicast to the server (its IP and the MAC its ACK came from). The returned lease replaces the old. */
export const renew = (sock: FrameSocket, lease: DhcpLease, opts: RenewOptions = {}): Promise<DhcpLease> =>
  extend(sock, lease, opts, true);

/** REBINDING: broadcast, any server may answer; the returned lease may name another server. */
export const rebind = (sock: FrameSocket, lease: DhcpLease, opts: RenewOptions = {}): Promise<DhcpLease> =>
  extend(sock, lease, opts, false);

/** DHCPRELEASE, unicast to the server, sent once: the server does not answer (RFC 2131 4.4.6). */
export function release(sock: FrameSocket, lease: DhcpLease): void {
  const dhcp = encodeDhcp({
    xid: newXid(),
    ciaddr: lease.address,
    chaddr: lease.mac,
    type: DHCPRELEASE,
    options: [
      [OPT.SERVER_ID, optIp(lease.serverId)],
      [OPT.CLIENT_ID, Buffer.from(lease.clientId, 'hex')],
    ],
  });
  sock.send(frame(lease.address, lease.serverId, dhcp), lease.serverMac);
}

/**
 * DHCPDECLINE: the ACKed address is in use on the LAN (an ARP probe was answered). Broadcast from 0.0.0.0,
 * sent once (RFC 2131 4.4.1), from the probe link like acquire(): the address was never configured.
 */
export function decline(sock: FrameSocket, lease: Pick<DhcpLease, 'address' | 'serverId' | 'mac' | 'clientId'>): void {
  const dhcp = encodeDhcp({
    xid: newXid(),
    chaddr: lease.mac,
    type: DHCPDECLINE,
    options: [
      [OPT.REQUESTED_IP, optIp(lease.address)],
      [OPT.SERVER_ID, optIp(lease.serverId)],
      [OPT.CLIENT_ID, Buffer.from(lease.clientId, 'hex')],
    ],
  });
  sock.send(frame('0.0.0.0', BROADCAST_IP, dhcp), BROADCAST_MAC);
}
