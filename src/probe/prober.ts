// Address probing on one link (RFC 5227 for IPv4, RFC 4862 DAD for IPv6), with the sockets passed in so
// that unit tests can feed packets. Timing deviates from RFC 5227 on purpose: its probes take about 7 s
// (PROBE_WAIT, 3 probes 1-2 s apart, ANNOUNCE_WAIT); a container start cannot wait that long, so macnet
// sends `count` probes spread over a bounded window (default 3 in 300 ms) — any answer in that window is
// a conflict, and a LAN device that stays silent longer is caught by the background re-probes instead.
import { ipFamily } from '../types/address';
import type { FrameSocket } from '../types/socket';
import { type Pacer, sweepPacer } from './pacer';
import {
  ARP_REPLY,
  arpAnnounce,
  arpProbe,
  decodeArp,
  decodeNd,
  dadProbe,
  encodeArp,
  ICMPV6_NA,
  ICMPV6_NS,
  unsolicitedNa,
} from './packets';

export type ProbeResult =
  | { readonly free: true }
  /** `answered`: a machine uses the address; `probing`: another host is probing it right now (RFC 5227 2.1.1). */
  | { readonly free: false; readonly mac: string; readonly reason: 'answered' | 'probing' };

export interface ProbeOptions {
  windowMs?: number;
  count?: number;
  /**
   * The caller takes a free address for an owner of its own (the host-access address), not for the one
   * allocator that shares this prober's results (IPAM): an address another caller is probing right now is
   * then 'probing' for it, and a caller joining its probe gets 'probing' too, so that never both take it.
   */
  exclusive?: boolean;
}

export interface SweepOptions {
  /** How long replies are collected after the last request (default 1000 ms). */
  windowMs?: number;
  /** Requests sent back to back (default 10). */
  burst?: number;
  /** The frame budget (default: the daemon's, SWEEP_FRAMES_PER_SECOND in pacer.ts). */
  pacer?: Pacer;
}

const PACKET_OUTGOING = 4;
/** How long an address a probe found free stays defended unless the caller defends it for longer. */
const FREE_HOLD_MS = 5_000;
const BROADCAST = 'ff:ff:ff:ff:ff:ff';

export class LinkProber {
  /**
   * Addresses this prober defends (ARP probes and DAD probes for them get a reply, so a host probing at the
   * same time backs off), and until when (ms epoch); Infinity until release().
   */
  private readonly defended = new Map<string, number>();
  private isDefended(a: string): boolean {
    return (this.defended.get(a) ?? 0) > Date.now();
  }
  private readonly pending = new Map<string, ProbeResult>();
  private readonly inflight = new Map<string, { result: Promise<ProbeResult>; exclusive: boolean }>();
  /** Running sweeps: address → the MAC of every reply, in order (a MAC twice: it answered twice). */
  private readonly sweeps = new Set<Map<string, string[]>>();
  private readonly onArp = (p: { data: Buffer; pktType: number; srcMac: string }) => this.arp(p);
  private readonly onNd = (p: { data: Buffer; pktType: number; srcMac: string }) => this.nd(p);

  constructor(
    readonly mac: string,
    private readonly arpSock?: FrameSocket,
    private readonly ndSock?: FrameSocket,
  ) {
    arpSock?.on('packet', this.onArp);
    ndSock?.on('packet', this.onNd);
  }

  private arp(p: { data: Buffer; pktType: number; srcMac: string }): void {
    if (p.pktType === PACKET_OUTGOING) return;
    const a = decodeArp(p.data);
    if (!a || a.senderMac === this.mac) return;
    // Only replies to our own requests count for a sweep: another machine's ARP request or announcement says
    // nothing about how many machines answer for an address.
    if (a.op === ARP_REPLY && a.targetMac === this.mac)
      for (const m of this.sweeps) m.get(a.senderIp)?.push(a.senderMac);
    if (a.senderIp !== '0.0.0.0' && this.pending.has(a.senderIp)) {
      this.conflict(a.senderIp, { free: false, mac: a.senderMac, reason: 'answered' });
    } else if (a.senderIp === '0.0.0.0' && this.pending.has(a.targetIp)) {
      this.conflict(a.targetIp, { free: false, mac: a.senderMac, reason: 'probing' });
    }
    if (a.senderIp === '0.0.0.0' && this.isDefended(a.targetIp) && this.arpSock) {
      // Defend an address we verified and are about to use: the other prober sees it taken.
      this.arpSock.send(
        encodeArp({
          op: ARP_REPLY,
          senderMac: this.mac,
          senderIp: a.targetIp,
          targetMac: a.senderMac,
          targetIp: '0.0.0.0',
        }),
        a.senderMac,
      );
    }
  }

  private nd(p: { data: Buffer; pktType: number; srcMac: string }): void {
    if (p.pktType === PACKET_OUTGOING) return;
    const n = decodeNd(p.data);
    if (!n) return;
    const mac = n.lladdr ?? p.srcMac;
    if (mac === this.mac) return;
    if (n.type === ICMPV6_NA) for (const m of this.sweeps) m.get(n.target)?.push(mac);
    if (n.type === ICMPV6_NS && n.src === '::' && this.isDefended(n.target) && this.ndSock) {
      // RFC 4862 5.4.3: a DAD probe for an address in use is answered with an NA to all nodes.
      const { packet, dstMac } = unsolicitedNa(this.mac, n.target);
      this.ndSock.send(packet, dstMac);
    }
    if (!this.pending.has(n.target)) return;
    if (n.type === ICMPV6_NA) this.conflict(n.target, { free: false, mac, reason: 'answered' });
    else if (n.type === ICMPV6_NS && n.src === '::') this.conflict(n.target, { free: false, mac, reason: 'probing' });
  }

  private conflict(ip: string, r: ProbeResult): void {
    if (this.pending.get(ip)?.free !== false) this.pending.set(ip, r);
  }

  /**
   * Probes every address at once; resolves after the window with a result per address. An address another
   * caller is probing already (a background refill and a start, the driver and IPAM) gets that probe's result:
   * it must not count as free just because this call sent nothing for it.
   */
  async probe(addresses: readonly string[], opts: ProbeOptions = {}): Promise<Map<string, ProbeResult>> {
    const exclusive = opts.exclusive ?? false;
    const unique = [...new Set(addresses)];
    // Probed by another caller already: its result, unless one of the two takes the address for an owner of
    // its own (see ProbeOptions.exclusive); then it is another claimant probing right now.
    const busy = new Set(unique.filter((a) => this.inflight.has(a) && (exclusive || this.inflight.get(a)!.exclusive)));
    const fresh = unique.filter((a) => !this.inflight.has(a));
    if (fresh.length) {
      const batch = this.window(fresh, opts);
      for (const a of fresh) this.inflight.set(a, { result: batch.then((m) => m.get(a)!), exclusive });
      void batch
        .catch(() => undefined)
        .finally(() => {
          for (const a of fresh) this.inflight.delete(a);
        });
    }
    const mine: ProbeResult = { free: false, mac: this.mac, reason: 'probing' };
    const shared = new Map(unique.filter((a) => !busy.has(a)).map((a) => [a, this.inflight.get(a)!.result] as const));
    return new Map(
      await Promise.all(addresses.map(async (a) => [a, busy.has(a) ? mine : await shared.get(a)!] as const)),
    );
  }

  private async window(mine: readonly string[], opts: ProbeOptions): Promise<Map<string, ProbeResult>> {
    const windowMs = opts.windowMs ?? 300;
    const count = Math.max(1, opts.count ?? 3);
    for (const a of mine) this.pending.set(a, { free: true });
    try {
      for (let i = 0; i < count; i++) {
        if (i > 0) await sleep(windowMs / count);
        for (const a of mine) {
          if (this.pending.get(a)?.free === false) continue;
          if (ipFamily(a) === 4) this.arpSock?.send(arpProbe(this.mac, a), BROADCAST);
          else if (this.ndSock) {
            const { packet, dstMac } = dadProbe(a);
            this.ndSock.send(packet, dstMac);
          }
        }
      }
      await sleep(windowMs / count);
      // Node runs due timers before it polls sockets: when the process was not scheduled for a while (a busy
      // host starting many containers), the window's timer and the replies become ready together and the
      // timer would win, declaring free an address whose owner answered in time. Read what is queued first.
      this.arpSock?.flush?.();
      this.ndSock?.flush?.();
      // An address found free is defended at once, for a short while: between this answer and the caller's
      // claim (an allocation, a store write, an async defend) another host probing it would hear nobody and
      // take it too. Seen with 200 containers on two hosts: one address given to both.
      const now = Date.now();
      const until = now + FREE_HOLD_MS;
      for (const [a, t] of this.defended) if (t <= now) this.defended.delete(a); // timed holds that ran out
      for (const a of mine)
        if (this.pending.get(a)!.free) this.defended.set(a, Math.max(this.defended.get(a) ?? 0, until));
      return new Map(mine.map((a) => [a, this.pending.get(a)!]));
    } finally {
      for (const a of mine) this.pending.delete(a);
    }
  }

  /**
   * Who answers for each address: one request each (IPv4: an RFC 5227 probe from 0.0.0.0, so no neighbour's
   * cache learns the probe link's MAC; IPv6: a DAD Neighbour Solicitation, which the owner answers with an NA
   * to all nodes — the probe link has no address to be answered at). Every reply in the window is kept, so
   * two machines answering for one address show as two MACs. Requests go out in small bursts within the
   * daemon's frame budget (pacer.ts): a /20 in one burst would overrun the LAN's queues and the socket's
   * receive buffer, and concurrent scans would flood the LAN.
   */
  async sweep(addresses: readonly string[], opts: SweepOptions = {}): Promise<Map<string, string[]>> {
    const replies = new Map<string, string[]>(addresses.map((a) => [a, []]));
    const burst = Math.max(1, opts.burst ?? 10);
    const pacer = opts.pacer ?? sweepPacer;
    this.sweeps.add(replies);
    try {
      let sent = 0;
      for (const a of replies.keys()) {
        if (sent++ % burst === 0) await pacer.take(burst);
        if (ipFamily(a) === 4) this.arpSock?.send(arpProbe(this.mac, a), BROADCAST);
        else if (this.ndSock) {
          const { packet, dstMac } = dadProbe(a);
          this.ndSock.send(packet, dstMac);
        }
      }
      await sleep(opts.windowMs ?? 1000);
      this.arpSock?.flush?.();
      this.ndSock?.flush?.();
      return replies;
    } finally {
      this.sweeps.delete(replies);
    }
  }

  defend(address: string): void {
    this.defended.set(address, Infinity);
  }

  release(address: string): void {
    this.defended.delete(address);
  }

  close(): void {
    this.arpSock?.off('packet', this.onArp);
    this.ndSock?.off('packet', this.onNd);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Tells the LAN that `ip` is now at `mac`: two gratuitous ARP announcements (RFC 5227 2.3) for IPv4, two
 * unsolicited Neighbour Advertisements with the override flag (RFC 4861 7.2.6) for IPv6, `gapMs` apart.
 */
export async function announce(sock: FrameSocket, mac: string, ip: string, gapMs = 100): Promise<void> {
  for (let i = 0; i < 2; i++) {
    if (i > 0) await sleep(gapMs);
    if (ipFamily(ip) === 4) sock.send(arpAnnounce(mac, ip), BROADCAST);
    else {
      const { packet, dstMac } = unsolicitedNa(mac, ip);
      sock.send(packet, dstMac);
    }
  }
}
