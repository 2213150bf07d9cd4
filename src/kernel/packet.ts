// AF_PACKET sockets on one link of any namespace: ARP probes, gratuitous ARP, neighbour discovery and DHCP
// (later issues) send and receive whole frames without a helper process.
import { EventEmitter } from 'node:events';
import { bytesToMac, macToBytes } from '../types/mac';
import type { FrameSocket } from '../types/socket';
import { addon } from './addon';
import { fromAddon } from './errors';
import * as C from './nl/constants';

export const ETH_P_ALL = 0x0003;
export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
export const ETH_P_IPV6 = 0x86dd;

export interface Packet {
  /** With `raw`, the whole Ethernet frame; otherwise the payload after the link-layer header. */
  readonly data: Buffer;
  readonly ifindex: number;
  readonly protocol: number;
  /** PACKET_HOST 0, BROADCAST 1, MULTICAST 2, OTHERHOST 3, OUTGOING 4. */
  readonly pktType: number;
  readonly srcMac: string;
}

export interface PacketSocketOptions {
  ifindex: number;
  /** Ethertype to receive (ETH_P_ARP, ...); ETH_P_ALL for everything. */
  protocol: number;
  /** SOCK_RAW (frames with Ethernet header) instead of SOCK_DGRAM (the kernel adds and strips it). */
  raw?: boolean;
}

/** Emits 'packet' (Packet) and, to listeners only, 'error'. Keeps the process alive until closed. */
export class PacketSocket extends EventEmitter implements FrameSocket {
  private fd: number;
  private handle: object | undefined;

  constructor(
    nsPath: string | null,
    private readonly opts: PacketSocketOptions,
  ) {
    super();
    let fd = -1;
    try {
      fd = addon.openSocket(nsPath, C.AF_PACKET, opts.raw ? C.SOCK_RAW : C.SOCK_DGRAM, 0);
      // Protocol 0 at socket() and the real one at bind() means no frames arrive before the bind to the link.
      addon.bindPacket(fd, opts.ifindex, opts.protocol);
    } catch (e) {
      if (fd >= 0) addon.closeFd(fd);
      throw fromAddon(
        `open packet socket on ifindex ${opts.ifindex} in ${nsPath ?? 'the current network namespace'}`,
        e,
      );
    }
    this.fd = fd;
    this.handle = addon.watch(fd, () => this.drain());
  }

  private drain(): void {
    for (;;) {
      let got;
      try {
        got = addon.recv(this.fd);
      } catch (e) {
        // ENETDOWN arrives once when the link goes down (or is deleted); the socket works again when it is up.
        // Only a caller that listens for errors hears of it; otherwise an EventEmitter 'error' would crash.
        if (this.listenerCount('error') > 0) this.emit('error', fromAddon('receive packet', e));
        return;
      }
      if (!got) return;
      this.emit('packet', {
        data: got.data,
        ifindex: got.ifindex,
        protocol: got.protocol,
        pktType: got.pktType,
        srcMac: bytesToMac(got.addr.subarray(0, 6)),
      });
    }
  }

  /** Emits 'packet' for every frame the kernel has queued, now: a caller about to decide on "no answer" reads first. */
  flush(): void {
    if (this.fd >= 0) this.drain();
  }

  /** Sends one frame (raw) or payload (dgram) to `dstMac`; `protocol` defaults to the socket's. */
  send(data: Buffer, dstMac: string, protocol = this.opts.protocol): void {
    try {
      addon.sendPacket(this.fd, data, this.opts.ifindex, protocol, macToBytes(dstMac));
    } catch (e) {
      throw fromAddon(`send packet on ifindex ${this.opts.ifindex}`, e);
    }
  }

  close(): void {
    if (this.handle) addon.unwatch(this.handle);
    this.handle = undefined;
    if (this.fd >= 0) addon.closeFd(this.fd);
    this.fd = -1;
  }
}
