// The internet checksum (RFC 1071), which IPv4 headers, UDP and ICMPv6 share; the DHCP client and the prober
// build their packets by hand and both need it.

/** The ones' complement sum of `parts` as 16-bit big-endian words, folded to 16 bits; 0xffff over a valid header. */
export function onesSum(parts: readonly Buffer[]): number {
  let sum = 0;
  // An odd-length part is padded with a zero byte; only the last part of a checksum may be odd (RFC 1071).
  for (const p of parts) for (let i = 0; i < p.length; i += 2) sum += (p[i]! << 8) + (p[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

export const internetChecksum = (parts: readonly Buffer[]): number => ~onesSum(parts) & 0xffff;

/**
 * The checksum of a transport message (`protocol`: 17 UDP, 58 ICMPv6) over its pseudo-header: RFC 768 for IPv4
 * (`src` and `dst` of 4 bytes), RFC 8200 8.1 for IPv6 (16 bytes).
 */
export function transportChecksum(src: Buffer, dst: Buffer, protocol: number, message: Buffer): number {
  const v4 = src.length === 4;
  const pseudo = Buffer.alloc(v4 ? 12 : 40);
  src.copy(pseudo, 0);
  dst.copy(pseudo, src.length);
  if (v4) {
    pseudo.writeUInt8(protocol, 9);
    pseudo.writeUInt16BE(message.length, 10);
  } else {
    pseudo.writeUInt32BE(message.length, 32);
    pseudo.writeUInt8(protocol, 39);
  }
  return internetChecksum([pseudo, message]);
}
