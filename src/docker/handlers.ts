// Docker's NetworkDriver and IpamDriver calls mapped onto the driver and the IPAM service. Field names are
// Docker's plugin protocol (moby docs/extend/plugins_network.md, plugins_ipam.md); nothing here decides anything.
import type { NetworkDriver } from '../drivers/driver';
import type { CreateNetworkRequest } from '../drivers/config';
import type { Ipam } from '../ipam/ipam';
import { IFNAME_OPTION } from '../drivers/endpoint';
import { bool, checkCreateNetwork, iface, sandboxKey, str, stringMap } from './request';
import type { Handler } from './server';

/** `netnsDir`: the daemon's --netns-dir (src/docker/request.ts, sandboxKey). */
export function handlers(driver: NetworkDriver, ipam: Ipam, opts: { netnsDir?: string } = {}): Map<string, Handler> {
  const h = new Map<string, Handler>();
  h.set('Plugin.Activate', async () => ({ Implements: ['NetworkDriver', 'IpamDriver'] }));

  h.set('NetworkDriver.GetCapabilities', async () => ({ Scope: 'local', ConnectivityScope: 'global' }));
  h.set('NetworkDriver.CreateNetwork', async (b) => {
    checkCreateNetwork(b);
    await driver.createNetwork(b as CreateNetworkRequest);
    return {};
  });
  h.set('NetworkDriver.DeleteNetwork', async (b) => {
    await driver.deleteNetwork(str(b, 'NetworkID', 'DeleteNetwork'));
    return {};
  });
  h.set('NetworkDriver.CreateEndpoint', async (b) => {
    const i = iface(b, 'CreateEndpoint');
    // Options hold more than strings (exposed ports and port maps are arrays): only the interface name is read.
    const opts = b.Options;
    const ifname =
      opts && typeof opts === 'object' && !Array.isArray(opts)
        ? (opts as Record<string, unknown>)[IFNAME_OPTION]
        : undefined;
    const ep = await driver.createEndpoint({
      networkId: str(b, 'NetworkID', 'CreateEndpoint'),
      endpointId: str(b, 'EndpointID', 'CreateEndpoint'),
      ...(i.Address && { address: i.Address }),
      ...(i.AddressIPv6 && { addressIPv6: i.AddressIPv6 }),
      ...(i.MacAddress && { macAddress: i.MacAddress }),
      ...(ifname !== undefined && { ifname: ifname as string }), // checked by the driver (ifnamePrefix)
    });
    // The reply may only fill fields that arrived empty; dockerd rejects a changed one.
    return !i.MacAddress && ep.mac ? { Interface: { MacAddress: ep.mac } } : {};
  });
  h.set('NetworkDriver.EndpointOperInfo', async (b) => ({
    Value: await driver.endpointInfo(str(b, 'NetworkID', 'EndpointOperInfo'), str(b, 'EndpointID', 'EndpointOperInfo')),
  }));
  h.set('NetworkDriver.DeleteEndpoint', async (b) => {
    await driver.deleteEndpoint(str(b, 'NetworkID', 'DeleteEndpoint'), str(b, 'EndpointID', 'DeleteEndpoint'));
    return {};
  });
  h.set('NetworkDriver.Join', async (b) =>
    driver.join(str(b, 'NetworkID', 'Join'), str(b, 'EndpointID', 'Join'), sandboxKey(b, 'Join', opts.netnsDir)),
  );
  h.set('NetworkDriver.Leave', async (b) => {
    await driver.leave(str(b, 'NetworkID', 'Leave'), str(b, 'EndpointID', 'Leave'));
    return {};
  });
  for (const call of ['DiscoverNew', 'DiscoverDelete', 'ProgramExternalConnectivity', 'RevokeExternalConnectivity']) {
    h.set(`NetworkDriver.${call}`, async () => ({}));
  }

  h.set('IpamDriver.GetCapabilities', async () => ipam.capabilities());
  h.set('IpamDriver.GetDefaultAddressSpaces', async () => ipam.defaultAddressSpaces());
  h.set('IpamDriver.RequestPool', async (b) => {
    const call = 'RequestPool';
    const pool = str(b, 'Pool', call, false, 'a CIDR string');
    const subPool = str(b, 'SubPool', call, false, 'a CIDR string');
    const r = await ipam.requestPool({
      addressSpace: str(b, 'AddressSpace', call, false),
      ...(pool && { pool }),
      ...(subPool && { subPool }),
      options: stringMap(b, 'Options', call),
      v6: bool(b, 'V6', call),
    });
    return { PoolID: r.poolId, Pool: r.pool, Data: r.data };
  });
  h.set('IpamDriver.ReleasePool', async (b) => {
    await ipam.releasePool(str(b, 'PoolID', 'ReleasePool'));
    return {};
  });
  h.set('IpamDriver.RequestAddress', async (b) => {
    const address = str(b, 'Address', 'RequestAddress', false, 'an IP address string');
    const r = await ipam.requestAddress({
      poolId: str(b, 'PoolID', 'RequestAddress'),
      ...(address && { address }),
      options: stringMap(b, 'Options', 'RequestAddress'),
    });
    return { Address: r.address, Data: r.data };
  });
  h.set('IpamDriver.ReleaseAddress', async (b) => {
    await ipam.releaseAddress(str(b, 'PoolID', 'ReleaseAddress'), str(b, 'Address', 'ReleaseAddress'));
    return {};
  });

  // macnet's own calls (the CLI's, never dockerd's): a path Docker's protocol does not use, same error shape.
  h.set('macnet/scan', async (b) => driver.scan(str(b, 'network', 'macnet/scan')));
  return h;
}
