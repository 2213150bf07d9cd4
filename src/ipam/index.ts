// The IPAM's public surface, for the Docker plugin's handlers and the CLI.
export { Ipam, type AddressRequest, type IpamOptions } from './ipam';
export { DAEMON_POOLS, DEFAULT_POOLS, GLOBAL_SPACE, poolOption, LOCAL_SPACE, type PoolRequest } from './pools';
