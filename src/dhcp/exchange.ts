// One DHCP exchange on a packet socket: send, retransmit on a doubling schedule, and resolve with the first
// reply that answers it or at the deadline. The messages themselves are client.ts's.
import { randomBytes } from 'node:crypto';
import type { Frame, FrameSocket } from '../types/socket';
import { type DhcpMessage, decodeReply, encodeUdp, SERVER_PORT, CLIENT_PORT } from './packets';

export const BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff';
export const BROADCAST_IP = '255.255.255.255';
const PACKET_OUTGOING = 4;

/**
 * Retransmission gaps. RFC 2131 4.1 says 4 s doubling up to 64 s, randomised by ±1 s; a container start cannot
 * wait that long, so the same doubling starts at 500 ms (500, 1000, 2000, ... ms) with ±10 % jitter, which
 * still keeps many clients started at once from retransmitting in step. With the default 5 s bound a message
 * goes out 4 times (at about 0, 0.5, 1.5 and 3.5 s).
 */
export function retransmitGaps(timeoutMs: number, random = Math.random): number[] {
  const gaps: number[] = [];
  let at = 0;
  for (let base = 500; ; base *= 2) {
    const gap = Math.round(base * (0.9 + 0.2 * random()));
    if (at + gap >= timeoutMs) return gaps;
    gaps.push(gap);
    at += gap;
  }
}

export const newXid = (): number => randomBytes(4).readUInt32BE(0);

export interface Exchange<R> {
  /** Builds the frame for the given elapsed seconds (the secs field) and its Ethernet destination. */
  build(secs: number): { frame: Buffer; dstMac: string };
  xid: number;
  mac: string;
  /** A reply of ours (xid, chaddr already checked): a result, or undefined to keep waiting. */
  accept(msg: DhcpMessage, srcMac: string, srcIp: string): R | undefined;
  deadline: number;
  signal?: AbortSignal;
}

export type Outcome<R> = { result: R; sends: number } | { result: undefined; sends: number };

/** Sends, retransmits on the gap schedule, and resolves with the first accepted reply or at the deadline. */
export function exchange<R>(sock: FrameSocket, x: Exchange<R>, started: number): Promise<Outcome<R>> {
  return new Promise((resolve, reject) => {
    let sends = 0;
    let timer: NodeJS.Timeout | undefined;
    const gaps = retransmitGaps(x.deadline - Date.now());
    const done = (fn: () => void) => {
      clearTimeout(timer);
      sock.off('packet', onPacket);
      x.signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const onAbort = () => done(() => reject(x.signal!.reason));
    const onPacket = (p: Frame) => {
      if (p.pktType === PACKET_OUTGOING) return;
      const r = decodeReply(p.data, x.xid, x.mac);
      if (!r) return;
      const result = x.accept(r.msg, p.srcMac, r.srcIp);
      if (result !== undefined) done(() => resolve({ result, sends }));
    };
    const send = () => {
      const { frame, dstMac } = x.build(Math.floor((Date.now() - started) / 1000));
      try {
        sock.send(frame, dstMac);
      } catch (e) {
        // ENETDOWN and friends: the link went away; the caller's error says where.
        done(() => reject(e));
        return;
      }
      sends++;
      const gap = gaps.shift();
      timer = setTimeout(
        gap === undefined ? () => done(() => resolve({ result: undefined, sends })) : send,
        gap ?? Math.max(0, x.deadline - Date.now()),
      );
    };
    if (x.signal?.aborted) {
      reject(x.signal.reason);
      return;
    }
    x.signal?.addEventListener('abort', onAbort);
    sock.on('packet', onPacket);
    send();
  });
}

export function frame(src: string, dst: string, dhcp: Buffer): Buffer {
  return encodeUdp({ src, dst, srcPort: CLIENT_PORT, dstPort: SERVER_PORT, payload: dhcp });
}
