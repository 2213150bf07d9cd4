// The refusals of a subnet's index (allocator.ts): an address someone holds, a range with nothing free; and two of
// the IPAM's own (ipam.ts): overlapping pools, a DHCP pool's gateway not given.
import { MacnetError } from '../errors';
import { formatAddress, type Subnet } from '../types/address';
import type { AddressRecord } from './keys';

/** IPAM_ADDRESS_IN_USE: `v` of `subnet` is held, by `holder` when its record could be read. */
export function addressInUse(space: string, subnet: Subnet, v: bigint, holder: AddressRecord | undefined): MacnetError {
  const address = formatAddress(v, subnet.family);
  const who = holder?.owner ?? 'another writer';
  return new MacnetError(
    'IPAM_ADDRESS_IN_USE',
    `address ${address} is already in use in subnet ${subnet.text} (held by ${who})`,
    { address, subnet: subnet.text, space, owner: who, pool: holder?.pool },
  );
}

/** IPAM_POOL_EXHAUSTED: every address of the range `label` (lo..hi) is allocated, `answered` of them on the LAN. */
export function poolExhausted(
  r: { poolId: string; lo: bigint; hi: bigint; label: string },
  answered: number,
): MacnetError {
  const count = r.hi - r.lo + 1n;
  return new MacnetError(
    'IPAM_POOL_EXHAUSTED',
    `no free address in ${r.label}: all ${count} usable addresses are allocated` +
      `${answered ? ` or in use on the LAN (${answered} answered a probe)` : ''}`,
    { pool: r.poolId, range: r.label, addresses: count.toString() },
  );
}

/** IPAM_POOL_OVERLAP: RequestPool of `subnet`, which overlaps `clash` in address space `space`. */
export function poolOverlap(subnet: Subnet, clash: Subnet, space: string): MacnetError {
  return new MacnetError(
    'IPAM_POOL_OVERLAP',
    `RequestPool: subnet ${subnet.text} overlaps subnet ${clash.text}, already in use in address space ${space}`,
    { subnet: subnet.text, existing: clash.text, space },
  );
}

/** IPAM_POOL_INVALID: a gateway request without an address on a DHCP pool. */
export function dhcpWithoutGateway(pool: string): MacnetError {
  return new MacnetError(
    'IPAM_POOL_INVALID',
    "RequestAddress: --ipam-opt mode=dhcp needs --gateway, the LAN router's address: " +
      "Docker asks for the network's gateway before macnet knows the network's parent, so it " +
      'cannot ask the DHCP server yet (each container still gets the router its lease names)',
    { option: 'gateway', pool },
  );
}
