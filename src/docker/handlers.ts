// Docker's NetworkDriver and IpamDriver calls mapped onto the driver and the IPAM service. Field names are
// Docker's (shared/docker-plugin-api.md); nothing here decides anything.
import { MacnetError } from '../errors';
import type { NetworkDriver } from '../drivers/driver';
import type { CreateNetworkRequest } from '../drivers/config';
import type { Ipam } from '../ipam/ipam';
import { scanNetwork } from '../drivers/scan';
import { IFNAME_OPTION } from '../drivers/endpoint';
import type { Handler } from './server';

function str(body: Record<string, unknown>, field: string, call: string, required = true): string {
  const v = body[field];
  if (typeof v === 'string' && (v !== '' || !required)) return v;
  if (!required && (v === undefined || v === null)) return '';
  throw new MacnetError('PLUGIN_REQUEST_INVALID', `${call}: field ${field} must be a ${required ? 'non-empty ' : ''}string, got ${JSON.stringify(v)}`, { field });
}

const obj = (v: unknown): Record<string, string> => (v && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, string> : {});

export function handlers(driver: NetworkDriver, ipam: Ipam): Map<string, Handler> {
  const h = new Map<string, Handler>();
  h.set('Plugin.Activate', async () => ({ Implements: ['NetworkDriver', 'IpamDriver'] }));

  h.set('NetworkDriver.GetCapabilities', async () => ({ Scope: 'local', ConnectivityScope: 'global' }));
  h.set('NetworkDriver.CreateNetwork', async (b) => {
    await driver.createNetwork(b as CreateNetworkRequest);
    return {};
  });
  h.set('NetworkDriver.DeleteNetwork', async (b) => {
    await driver.deleteNetwork(str(b, 'NetworkID', 'DeleteNetwork'));
    return {};
  });
  h.set('NetworkDriver.CreateEndpoint', async (b) => {
    const iface = obj(b.Interface);
    const ifname = obj(b.Options)[IFNAME_OPTION];
    const ep = await driver.createEndpoint({
      networkId: str(b, 'NetworkID', 'CreateEndpoint'), endpointId: str(b, 'EndpointID', 'CreateEndpoint'),
      ...(iface.Address && { address: iface.Address }), ...(iface.AddressIPv6 && { addressIPv6: iface.AddressIPv6 }),
      ...(iface.MacAddress && { macAddress: iface.MacAddress }), ...(ifname !== undefined && { ifname: ifname as string }),
    });
    // The reply may only fill fields that arrived empty; dockerd rejects a changed one.
    return !iface.MacAddress && ep.mac ? { Interface: { MacAddress: ep.mac } } : {};
  });
  h.set('NetworkDriver.EndpointOperInfo', async (b) => ({ Value: await driver.endpointInfo(str(b, 'NetworkID', 'EndpointOperInfo'), str(b, 'EndpointID', 'EndpointOperInfo')) }));
  h.set('NetworkDriver.DeleteEndpoint', async (b) => {
    await driver.deleteEndpoint(str(b, 'NetworkID', 'DeleteEndpoint'), str(b, 'EndpointID', 'DeleteEndpoint'));
    return {};
  });
  h.set('NetworkDriver.Join', async (b) =>
    driver.join(str(b, 'NetworkID', 'Join'), str(b, 'EndpointID', 'Join'), str(b, 'SandboxKey', 'Join')));
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
    const r = await ipam.requestPool({
      addressSpace: str(b, 'AddressSpace', 'RequestPool', false),
      ...(typeof b.Pool === 'string' && b.Pool && { pool: b.Pool }),
      ...(typeof b.SubPool === 'string' && b.SubPool && { subPool: b.SubPool }),
      options: obj(b.Options), v6: b.V6 === true,
    });
    return { PoolID: r.poolId, Pool: r.pool, Data: r.data };
  });
  h.set('IpamDriver.ReleasePool', async (b) => {
    await ipam.releasePool(str(b, 'PoolID', 'ReleasePool'));
    return {};
  });
  h.set('IpamDriver.RequestAddress', async (b) => {
    const r = await ipam.requestAddress({
      poolId: str(b, 'PoolID', 'RequestAddress'),
      ...(typeof b.Address === 'string' && b.Address && { address: b.Address }),
      options: obj(b.Options),
    });
    return { Address: r.address, Data: r.data };
  });
  h.set('IpamDriver.ReleaseAddress', async (b) => {
    await ipam.releaseAddress(str(b, 'PoolID', 'ReleaseAddress'), str(b, 'Address', 'ReleaseAddress'));
    return {};
  });

  // macnet's own calls (the CLI's, never dockerd's): a path Docker's protocol does not use, same error shape.
  h.set('macnet/scan', async (b) => scanNetwork(driver, str(b, 'network', 'macnet/scan')));
  return h;
}
