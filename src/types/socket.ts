// The packet socket as the prober and the DHCP client use it. It lives here because probe and dhcp are siblings
// that may not import each other, and the kernel's PacketSocket (SOCK_DGRAM: the kernel adds and strips the
// Ethernet header) must fit both; tests pass fakes.

/** A frame as received: the link-layer payload, its sender and the kernel's packet type (4: one we sent). */
export interface Frame {
  readonly data: Buffer;
  readonly srcMac: string;
  readonly pktType: number;
}

export interface FrameSocket {
  send(data: Buffer, dstMac: string): void;
  on(event: 'packet', fn: (f: Frame) => void): unknown;
  off(event: 'packet', fn: (f: Frame) => void): unknown;
  /** Delivers what the kernel has queued for the socket now, synchronously (see LinkProber.probe). */
  flush?(): void;
  close(): void;
}
