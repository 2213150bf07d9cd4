// Asking the gateway from one link with one MAC, over packet sockets: an ARP probe (RFC 5227: sender address
// 0.0.0.0, so no cache on the LAN learns anything from it, yet the owner answers it unicast to our MAC) and a
// Neighbour Solicitation with our link-layer address (answered unicast too). A DAD probe would not do: its
// answer goes to all nodes, so the parent's question would make the child hear an answer to a question the LAN
// dropped. Only answers addressed to this link's MAC count.
import { ETH_P_ARP, ETH_P_IPV6, type Kernel, type Packet, type PacketSocket } from '../kernel';
import { ARP_REPLY, arpProbe, decodeArp, decodeNd, ICMPV6_NA, neighbourSolicitation } from '../probe/packets';
import { canonicalIp } from '../types/address';

/** What to ask for: the gateway of each family present, and the IPv6 source address to ask from. */
export interface Question {
  readonly v4?: string;
  readonly v6?: string;
  /** Source of the Neighbour Solicitation (an address of the asker, or the EUI-64 link-local of its MAC). */
  readonly v6Source?: string;
}

/** When each family's answer came, in ms after the first question; absent: none came. */
export interface Answers {
  v4Ms?: number;
  v6Ms?: number;
}

const PACKET_HOST = 0;
const BROADCAST = 'ff:ff:ff:ff:ff:ff';

/** One asker: a link (by index in the Kernel's namespace) and the MAC it asks with. */
export class Asker {
  readonly answers: Answers = {};
  private arp: PacketSocket | undefined;
  private nd: PacketSocket | undefined;
  private start = 0;

  private constructor(
    private readonly mac: string,
    private readonly q: Question,
  ) {}

  static async open(k: Kernel, ifindex: number, mac: string, q: Question): Promise<Asker> {
    const a = new Asker(mac, q);
    try {
      if (q.v4) a.arp = a.listen(await k.openPacketSocket(ifindex, { protocol: ETH_P_ARP }), (p) => a.onArp(p));
      if (q.v6 && q.v6Source)
        a.nd = a.listen(await k.openPacketSocket(ifindex, { protocol: ETH_P_IPV6 }), (p) => a.onNd(p));
    } catch (e) {
      a.close();
      throw e;
    }
    return a;
  }

  private listen(s: PacketSocket, fn: (p: Packet) => void): PacketSocket {
    s.on('packet', fn);
    s.on('error', () => undefined); // ENETDOWN when the link goes down meanwhile: no answer, said by the result
    return s;
  }

  private elapsed(): number {
    return Math.round(performance.now() - this.start);
  }

  private onArp(p: Packet): void {
    const a = decodeArp(p.data);
    if (!a || a.op !== ARP_REPLY || a.targetMac !== this.mac || a.senderIp !== this.q.v4) return;
    this.answers.v4Ms ??= this.elapsed();
  }

  private onNd(p: Packet): void {
    if (p.pktType !== PACKET_HOST) return; // an answer to all nodes is no answer to us
    const n = decodeNd(p.data);
    if (!n || n.type !== ICMPV6_NA || canonicalIp(n.target) !== canonicalIp(this.q.v6!)) return;
    this.answers.v6Ms ??= this.elapsed();
  }

  /** Every family asked has its answer. */
  get done(): boolean {
    return (
      (!this.q.v4 || this.answers.v4Ms !== undefined) &&
      (!(this.q.v6 && this.q.v6Source) || this.answers.v6Ms !== undefined)
    );
  }

  /** Asks again for each family still unanswered. */
  ask(): void {
    if (this.start === 0) this.start = performance.now();
    if (this.arp && this.q.v4 && this.answers.v4Ms === undefined)
      this.arp.send(arpProbe(this.mac, this.q.v4), BROADCAST);
    if (this.nd && this.q.v6 && this.q.v6Source && this.answers.v6Ms === undefined) {
      const { packet, dstMac } = neighbourSolicitation(this.mac, this.q.v6Source, this.q.v6);
      this.nd.send(packet, dstMac);
    }
  }

  /** Reads what the kernel has queued (a due timer must not win over an answer that arrived in time). */
  flush(): void {
    this.arp?.flush();
    this.nd?.flush();
  }

  close(): void {
    this.arp?.close();
    this.nd?.close();
  }
}

/**
 * Asks from every asker at once, `rounds` times `gapMs` apart, until each has all its answers or the rounds are
 * over. Returns the time taken.
 */
export async function askAll(askers: readonly Asker[], rounds: number, gapMs: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) {
    for (const a of askers) if (!a.done) a.ask();
    // Polled in short steps: on a LAN that answers, the check ends within milliseconds, not a whole gap.
    for (let waited = 0; waited < gapMs; waited += 20) {
      await new Promise((r) => setTimeout(r, 20));
      for (const a of askers) a.flush();
      if (askers.every((a) => a.done)) return Math.round(performance.now() - t0);
    }
  }
  return Math.round(performance.now() - t0);
}
