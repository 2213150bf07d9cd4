// The one error catalogue. Codes are stable: users script against them and docs/errors.md lists them
// (test/errors/catalogue.test.ts keeps the two in sync). A message says what was attempted, the value,
// and what would be valid. Where a message shape recurs (an option's value that is not valid, a record
// Docker names that macnet does not have, an address taken on the LAN), the entry names its template
// (templates.ts, where the wording lives, once); call sites raise it with fail(code, facts) (index.ts).
import {
  addressConflict,
  endpointNotFound,
  etcdFailed,
  migrateConflict,
  type Formatted,
  networkNotFound,
  optionInvalid,
  poolNotFound,
  storeError,
  valueInvalid,
} from './templates';

export interface CatalogueEntry {
  /** What the code means, for docs/errors.md. */
  readonly summary: string;
  /** What the user can do about it. */
  readonly fix: string;
  /** The message of the code's recurring shape from the facts a call site has; raised with fail(). */
  readonly message?: (facts: never) => Formatted;
}

export const CATALOGUE = {
  INTERNAL: {
    summary:
      'A defect in macnet: a call failed in a way macnet does not expect. The call is refused, the daemon keeps ' +
      'serving, and its log has the error with its stack (`call refused`, level error).',
    fix: 'Run the docker command again; report the log line with the docker command that caused it.',
  },
  KERNEL_ERROR: {
    summary:
      "The kernel refused a netlink request; the message names the operation, the errno and the kernel's own text.",
    fix:
      'Read the errno and the kernel text; ENODEV means the ' +
      'named link does not exist, EEXIST that the name is taken.',
  },
  KERNEL_FEATURE_MISSING: {
    summary: 'The running kernel has no support for a link kind (for example dummy, vlan or ipvlan).',
    fix: 'Load the module (modprobe 8021q, dummy, ipvlan) or use a kernel built with it.',
  },
  NETNS_NOT_FOUND: {
    summary: 'A network namespace given as a path or a pid cannot be opened.',
    fix: 'Check that the path (/run/netns/NAME, /proc/PID/ns/net, a Docker SandboxKey) or the process exists.',
  },
  INVALID_ARGUMENT: {
    summary: 'A value given to macnet is malformed or out of range; the message names the option and what is valid.',
    fix: 'Correct the named option.',
    message: valueInvalid,
  },
  OPTION_UNKNOWN: {
    summary:
      'A `-o` / `--opt` key (or an `--ipam-opt` key) that macnet does not know; ' +
      "the message lists the known keys. Docker's built-in drivers ignore such " +
      'keys silently, so a typo like `macvlan_mdoe` would otherwise pass.',
    fix: 'Use one of the keys listed in the message (README, "Network options").',
  },
  OPTION_INVALID: {
    summary:
      'A known option has a value that is not valid (a mode, an MTU, a flag, an ' +
      'interface name); the message names the option, the value and the valid values.',
    fix: 'Correct the value as the message says.',
    message: optionInvalid,
  },
  PARENT_NOT_FOUND: {
    summary: 'The `parent` interface does not exist on the host (for `name.vid`, the base interface does not).',
    fix: 'Check the name with `ip link`; for a VLAN give an existing base, e.g. `eth0.50`.',
  },
  PARENT_INVALID: {
    summary:
      'The `parent` cannot carry macvlan/ipvlan children: loopback, not ' +
      'Ethernet-like, or a malformed `name.vid` / vlan id outside 1 to 4094.',
    fix: 'Use an Ethernet interface (or a bond, bridge or vlan on one) and a vlan id from 1 to 4094.',
  },
  PARENT_IN_USE: {
    summary:
      'The parent is already used by another network in a way that cannot be shared: ' +
      'passthru takes the whole parent, ipvlan networks cannot share a parent (one ' +
      'ipvlan mode per parent), and macvlan and ipvlan cannot mix on one parent.',
    fix: 'Use another parent or a vlan sub-interface (`eth0.60`), or remove the other network first.',
  },
  SUBNET_OVERLAP: {
    summary:
      'A subnet of the new network partly overlaps a subnet of another ' +
      'network on the same parent (identical subnets are allowed).',
    fix: 'Give networks on one parent disjoint subnets (or use `--ip-range` within one network).',
  },
  MTU_TOO_LARGE: {
    summary: "The requested MTU is larger than the parent's.",
    fix: "Use at most the parent's MTU, or raise the parent's MTU first.",
  },
  NETWORK_CONFIG_INVALID: {
    summary:
      "The network's IP data is inconsistent: a gateway or auxiliary " +
      'address outside its subnet, or an IPv6 option without IPv6 data.',
    fix: 'Correct --subnet, --gateway, --aux-address or --ip-range.',
  },
  NETWORK_NOT_FOUND: {
    summary:
      'Docker referred to a network the plugin has no record of (other than on delete, ' +
      'which always succeeds); or `macnet scan` was given a network that Docker does ' +
      'not know by that name, or that is not a macnet network of this daemon; or `macnet doctor --network` a ' +
      'network that Docker does not know.',
    fix:
      "Re-create the network; check the daemon's state dir (--state-dir) was not " +
      'removed. For scan and doctor: `docker network ls --filter driver=macnet` lists the names.',
    message: networkNotFound,
  },
  ENDPOINT_NOT_FOUND: {
    summary:
      'Docker referred to an endpoint the plugin has no record ' +
      'of (other than on delete or leave, which always succeed).',
    fix: 'Restart the container; its endpoint will be created again.',
    message: endpointNotFound,
  },
  ENDPOINT_INVALID: {
    summary:
      'An endpoint request is inconsistent: a MAC address that is not unicast, an ' +
      "address outside the network's subnets, an interface name Docker cannot use.",
    fix: 'Correct --mac-address, --ip/--ip6 or the com.docker.network.endpoint.ifname driver option.',
  },
  IPAM_POOL_INVALID: {
    summary:
      'A subnet or ip-range is malformed, the ip-range is not inside ' +
      'its subnet, or the subnet is too small to hold an address.',
    fix: 'Give --subnet as a CIDR (198.18.15.0/24, 2001:db8:15::/64) and --ip-range inside it.',
  },
  IPAM_POOL_OVERLAP: {
    summary: 'The requested subnet overlaps a different subnet already in use in the same address space.',
    fix: 'Use a disjoint subnet, or exactly the same subnet (with different --ip-range values) to share it.',
  },
  IPAM_POOL_NOT_FOUND: {
    summary: 'A PoolID that the IPAM driver has no record of.',
    fix: 'Re-create the network.',
    message: poolNotFound,
  },
  IPAM_NO_DEFAULT_POOL: {
    summary: 'No subnet was given and every default pool is taken.',
    fix: "Give --subnet (for a LAN-attached network, the LAN's subnet).",
  },
  IPAM_ADDRESS_IN_USE: {
    summary: 'A requested static address (--ip, --ip6, --gateway, --aux-address) is already allocated in that subnet.',
    fix: 'Pick a free address, or let macnet choose one.',
  },
  IPAM_ADDRESS_OUT_OF_POOL: {
    summary: 'A requested address is not usable in the pool: outside the subnet, or its network or broadcast address.',
    fix: 'Pick an address inside the subnet (and inside --ip-range for dynamic addresses).',
  },
  IPAM_POOL_EXHAUSTED: {
    summary: 'Every address of the pool (or --ip-range) is allocated.',
    fix: 'Remove unused containers or widen --ip-range / --subnet.',
  },
  PLUGIN_REQUEST_INVALID: {
    summary:
      'A request on the plugin socket is not valid JSON, lacks a required field, or has an empty body. ' +
      'dockerd sends an empty body when it retries a call the plugin did not answer (moby/moby#39331), ' +
      'e.g. one in flight while macnet restarted; otherwise only a hand-made request does.',
    fix:
      'After a macnet restart: run the docker command again. A hand-made request: ' +
      'send the fields the Docker plugin protocol defines (docs/plugin-protocol.md).',
  },
  PLUGIN_REQUEST_TOO_LARGE: {
    summary:
      'A request on the plugin socket has a body over 1 MiB (declared or sent); it is refused before it is read, ' +
      "with HTTP 413, and the connection is closed. Docker's calls are a few kB.",
    fix: 'Only a hand-made or broken client sends such a body: send the fields the plugin protocol defines.',
  },
  STORE_ERROR: {
    summary: 'The state database could not be read or written (disk full, permissions, corruption).',
    fix: 'Check --state-dir: free space, permissions; the message has the SQLite error.',
    message: storeError,
  },
  STORE_UNAVAILABLE: {
    summary:
      'The etcd cluster store did not answer within the request timeout (2 s by default): no member reachable, ' +
      'a TLS handshake refused, or no quorum; the message names the endpoints and the last error. There is no ' +
      'local fallback; the next operation tries again. A write that failed after it was sent may have been applied.',
    fix:
      'Check that a majority of the members run and are reachable at the named endpoints (etcdctl endpoint ' +
      'health), and the TLS files (CA, client certificate and key).',
    message: etcdFailed,
  },
  STORE_AUTH_FAILED: {
    summary:
      "etcd refused the store's credentials: a wrong user or password, or a user without permission on the " +
      "store's key prefix; the message names the endpoints and etcd's answer.",
    fix: "Check the etcd user and password options, and that the user's role grants read-write on the prefix.",
    message: etcdFailed,
  },
  STORE_MIGRATE_CONFLICT: {
    summary:
      '`macnet store migrate --to etcd` found records of the SQLite state that etcd cannot take: an address etcd ' +
      'holds for another host, a pool on the same subnet with another ip-range or mode (or an overlapping subnet), ' +
      'a key layout version that differs, address records of this host id already in etcd, a daemon of this host ' +
      'id running on etcd (its presence key hosts/<id>), or an earlier migrate of it that did not finish. The ' +
      'message names each key and the other host; nothing was written to etcd and the SQLite state is unchanged.',
    fix:
      'Resolve each named conflict (remove the container that holds the address on one of the hosts; give the ' +
      "network the cluster's subnet, ip-range and mode; run the cluster's macnet version; stop the daemon of this " +
      'state dir), then migrate again.',
    message: migrateConflict,
  },
  ADDRESS_CONFLICT: {
    summary:
      'A requested address (--ip, --ip6) is already used by a machine on the ' +
      'LAN: it answered an ARP or IPv6 DAD probe; the message names its MAC.',
    fix:
      'Pick another address, find the machine by its MAC, or create ' +
      'the network with -o conflict=warn to use the address anyway.',
    message: addressConflict,
  },
  SCAN_TOO_LARGE: {
    summary:
      '`macnet scan` sweeps at most a /20 of IPv4 (4094 addresses, ' +
      'one ARP request each); the network has a larger IPv4 subnet.',
    fix: 'Scan a network with a smaller subnet, or check the addresses of interest with `arping` from the LAN.',
  },
  SCAN_BUSY: {
    summary:
      '`macnet scan` runs one scan per network at a time (all scans together send at most 1,000 frames per ' +
      'second); another scan of the same network is still running.',
    fix: 'Run the scan again when the other one has answered (a /24 takes about 1.3 s, a /20 about 5 s).',
  },
  DAEMON_ALREADY_RUNNING: {
    summary:
      '`macnet daemon` refuses to start beside another one: in the same network namespace (whatever the mount ' +
      'namespace), on the same state dir, or on a plugin socket that another process serves; the message names ' +
      'the running pid (or the socket) and its form: a service daemon and the Docker managed plugin refuse each ' +
      'other. `macnet uninstall` refuses in the same cases.',
    fix:
      'Stop the other daemon first (a service: systemctl disable --now macnet.socket macnet.service; the managed ' +
      'plugin: docker plugin disable NAME), or give this one its own network namespace, --state-dir and --plugin-dir.',
  },
  PRIVILEGES_MISSING: {
    summary:
      '`macnet daemon` lacks a capability it needs (CAP_NET_ADMIN for links, addresses and routes; ' +
      'CAP_SYS_ADMIN to enter container namespaces; CAP_NET_RAW for ARP/NDP probes and DHCP); the message ' +
      'names each missing one. It refuses at start instead of failing at the first docker command.',
    fix: 'Run it as root (the systemd unit does), or grant the named capabilities.',
  },
  STATE_TOO_NEW: {
    summary:
      'The state dir was written by a newer macnet (its key layout version, meta/schema, or its table layout ' +
      'is newer than this version knows); nothing in it was changed.',
    fix: 'Run the newer macnet again (downgrades are not supported), or restore the state this version wrote.',
  },
  STATE_MIGRATED: {
    summary:
      '`macnet daemon` on SQLite (the default store) refuses a state dir whose address pools are in etcd: it has ' +
      'a host-id, and state.db holds networks but no pool (`macnet store migrate` moved them, or it ran on etcd). ' +
      'On SQLite the daemon would serve networks without pools and hand out addresses other hosts hold.',
    fix:
      'Start the daemon with --store etcd and the etcd options of the cluster. There is no way back to SQLite ' +
      'for these networks: the pools are shared in etcd.',
  },
  NETWORKS_REMAIN: {
    summary:
      '`macnet uninstall` refuses while macnet networks exist in the state dir; the message names each (id, ' +
      'parent, subnets). Nothing was removed.',
    fix:
      'Remove them first (`docker network ls --filter driver=macnet`, `docker network rm`), with the daemon ' +
      'running, then stop the daemon and run `macnet uninstall` again.',
  },
  DAEMON_UNREACHABLE: {
    summary:
      'A `macnet` command that asks the daemon (scan) cannot connect to `<plugin-dir>/macnet.sock`: ' +
      'the daemon is not running, or runs with another --plugin-dir or in another mount namespace.',
    fix:
      'Start `macnet daemon`, or give the same `--plugin-dir` as the daemon; ' +
      'run the command where the daemon runs (same host, same mount namespace).',
  },
  DOCKER_UNREACHABLE: {
    summary:
      'A `macnet` command that resolves a network name (scan, doctor --network) cannot reach the Docker Engine ' +
      "API on the docker socket, or the API answered with an error other than 'not found'.",
    fix:
      'Check that dockerd runs and the socket path (`--docker-host unix:///path` or ' +
      'DOCKER_HOST, default /var/run/docker.sock); or give the network id instead of its name.',
  },
  DHCP_NO_ANSWER: {
    summary:
      'In DHCP mode, no DHCP server answered within the time bound: the message names the link, ' +
      'the bound, the message type sent, how often and for which MAC. A server that ignores the ' +
      'broadcast flag and unicasts its OFFER to the new MAC (which no link has yet) looks the same.',
    fix:
      "Check that a DHCP server serves the parent's LAN (or VLAN), that it honours the broadcast flag, and that no " +
      "switch port security drops the container's MAC; or give the network a --subnet and use macnet's own IPAM.",
  },
  DHCP_NAK: {
    summary:
      'The DHCP server refused the request with a DHCPNAK (twice in a row when acquiring, ' +
      "once when renewing); the message has the server's reason when it gave one.",
    fix:
      "Read the server's reason and its log: a fixed address for another MAC, a full pool, or a renewal " +
      'for an address the server no longer knows (then the lease is gone and a new one is acquired).',
  },
  HOST_ACCESS_ADDRESS_UNAVAILABLE: {
    summary:
      "The host's address for `-o host_access=true` cannot be used: the given `host_access_address` is a " +
      "container's or answers on the LAN, or no free address was found among the highest addresses of the subnet.",
    fix:
      'Give a free address with `-o host_access_address=IP[,IP6]` (and reserve ' +
      'it with `--aux-address host=IP`), or free one at the top of the subnet.',
  },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof CATALOGUE;

/** The codes whose catalogue entry has a message template. */
export type TemplateCode = {
  [C in ErrorCode]: (typeof CATALOGUE)[C] extends { message: (facts: never) => Formatted } ? C : never;
}[ErrorCode];

/** What fail(code, facts) takes for `code`. */
export type Facts<C extends TemplateCode> = Parameters<(typeof CATALOGUE)[C]['message']>[0];
