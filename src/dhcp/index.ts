// DHCPv4 client for addresses macnet leases from the LAN's own server on behalf of containers (docs/dhcp.md).
export {
  acquire,
  renew,
  rebind,
  release,
  decline,
  retransmitGaps,
  INFINITE,
  type AcquireOptions,
  type RenewOptions,
  type DhcpLease,
} from './client';
export { LeaseKeeper, times, minRetryMs, type LeaseKeeperOptions, type KeeperClock, type ExpiryReason } from './keeper';
