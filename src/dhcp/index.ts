// DHCPv4 client for addresses macnet leases from the LAN's own server on behalf of containers (docs/dhcp.md).
export { acquire, renew, rebind, release, decline, type AcquireOptions, type RenewOptions } from './client';
export { retransmitGaps } from './exchange';
export { INFINITE, type DhcpLease } from './lease';
export { LeaseKeeper, times, minRetryMs, type LeaseKeeperOptions, type KeeperClock, type ExpiryReason } from './keeper';
