// Typed face of native/macnet_sock.c. Only src/kernel imports this.
import * as path from 'node:path';

export interface Received {
  data: Buffer;
  ifindex: number;
  protocol: number;
  pktType: number;
  addr: Buffer;
}

export interface Addon {
  openSocket(nsPath: string | null, domain: number, type: number, protocol: number): number;
  setIntOption(fd: number, level: number, name: number, value: number): void;
  bindNetlink(fd: number): number;
  bindPacket(fd: number, ifindex: number, protocol: number): void;
  sendPacket(fd: number, frame: Buffer, ifindex: number, protocol: number, dstMac: Buffer): number;
  recv(fd: number): Received | null;
  closeFd(fd: number): void;
  /** flock(LOCK_EX | LOCK_NB): true when taken, false when another process holds it. */
  flockExclusive(fd: number): boolean;
  /** open(file, flags) from inside the namespace: /proc/sys/net then shows that namespace's files. */
  openInNetns(nsPath: string, file: string, flags: number): number;
  /** A new network namespace held only by the returned fd (gone when it is closed or the process ends). */
  newNetns(): number;
  /** socketpair(domain, type): tests feed the receive paths through it. */
  socketPair(domain: number, type: number): [number, number];
  transact(fd: number, request: Buffer, seq: number, timeoutMs: number): Promise<Buffer>;
  /** Polls fd while the returned handle is reachable and not unwatched (a dropped handle stops at its GC). */
  watch(fd: number, onReadable: (status: number) => void): object;
  unwatch(handle: object): void;
  errnoName(errno: number): [string, string];
}

/** Errors thrown by the addon carry the errno name as `code` and the number as `errno`. */
export interface AddonError extends Error {
  code: string;
  errno: number;
}

// dist/src/kernel/addon.js -> <root>/build/Release
export const addon: Addon = require(path.join(__dirname, '..', '..', '..', 'build', 'Release', 'macnet_sock.node'));
