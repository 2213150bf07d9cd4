// The LAN layer: below the driver and the IPAM, above kernel, probe, dhcp and store (docs/architecture.md).
export { Lan, type HostAddress, type LanOptions } from './lan';
export { DhcpLeases } from './leases';
export { DHCP_KEEP_MS, dhcpMac, type DhcpSockets, type LeaseRecord, type LeaseState } from './lease-records';
export { PROBE_LINK_PATTERN, isProbeLink, probeLinkName } from './probe-links';
export { type AddressBook, type Holder, type ProbeFrom, type Segment, probeable } from './segment';
export { announceWhenUp } from './announce';
