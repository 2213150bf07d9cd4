// MAC addresses: text <-> bytes, and the signatures that mark the MACs macnet makes.
import { createHash, randomBytes } from 'node:crypto';

/** "02:42:c6:12:0f:05" <-> bytes. */
export function macToBytes(s: string): Buffer {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(s)) {
    throw new TypeError(`not a MAC address (six hex pairs separated by ':'): ${JSON.stringify(s)}`);
  }
  return Buffer.from(s.split(':').map((x) => parseInt(x, 16)));
}

export const bytesToMac = (b: Buffer): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');

/**
 * macnet's MAC signatures: every MAC it makes starts with one of these octets (locally administered,
 * unicast), so that `macnet scan` on one host recognises what macnet on other hosts made. 0x0a: containers,
 * 0x0e: probe links, 0x06: host-access links.
 */
export const MAC_SIGNATURE = 0x0a;
export const PROBE_MAC_SIGNATURE = 0x0e;
/** 0x06: host-access links (src/drivers/host-access.ts), stable per host and parent. */
export const HOST_LINK_MAC_SIGNATURE = 0x06;
/** A MAC's first octet: MAC_SIGNATURE or PROBE_MAC_SIGNATURE when another host's macnet made it. */
export const macFirstOctet = (mac: string): number => Number.parseInt(mac.slice(0, 2), 16);
/**
 * A macnet probe link's MAC: such a link answers for addresses its host keeps warm (free, defended for its next
 * start), never for one a container uses.
 */
export const isProbeLinkMac = (mac: string): boolean => macFirstOctet(mac) === PROBE_MAC_SIGNATURE;

/**
 * A MAC with `first` as its first octet and the other five random, or taken from a SHA-256 of `seed` when
 * given (the same seed always gives the same MAC).
 */
export function signedMac(first: number, seed?: string): string {
  const b = seed === undefined ? randomBytes(6) : createHash('sha256').update(seed).digest().subarray(0, 6);
  b[0] = first;
  return bytesToMac(b);
}
