// The addresses of IpamDriver requests as Docker sends them, parsed and checked before any lock is taken.
import { clip, MacnetError } from '../errors';
import { formatAddress, parseAddress, unusableReason, type Address } from '../types/address';
import type { Pool } from './pool-table';

/** A static address of a RequestAddress, checked against the pool's subnet (IPAM_ADDRESS_OUT_OF_POOL). */
export function usableAddress(p: Pool, text: string): bigint {
  const a = parseIp(text, 'RequestAddress');
  const why = unusableReason(p.subnet, a);
  if (why) {
    throw new MacnetError(
      'IPAM_ADDRESS_OUT_OF_POOL',
      `RequestAddress: address ${formatAddress(a.value, a.family)} ${why} (pool ${p.poolId})`,
      { address: text, subnet: p.subnet.text, poolId: p.poolId },
    );
  }
  return a.value;
}

/** A plain IP as Docker sends it; a CIDR's address part is accepted too (some clients send "ip/len"). */
export function parseIp(text: string, call: string): Address {
  const slash = text.indexOf('/');
  try {
    return parseAddress(slash < 0 ? text : text.slice(0, slash));
  } catch {
    throw new MacnetError('INVALID_ARGUMENT', `${call}: ${clip(text)} is not an IP address`, { address: clip(text) });
  }
}
