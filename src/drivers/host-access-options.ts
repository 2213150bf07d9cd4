// The host_access, host_access_address and dns options (host-access.ts makes what they ask for). dns=true asks for
// the host-side link of host access, because macnet's DNS (docs/names.md) listens on its address: the one address of
// the host its containers can reach past the parent's isolation. The link without its routes would not do: the
// host's replies to a container go by the routes host access adds, so dns=true is host access, whole.
import type { SubnetConfig } from './network-config';
import { networkOf, parseCidr } from '../types/address';
import { invalid, truthy } from './options';

/**
 * host_access and host_access_address; undefined when host access is off, else the given addresses (may be
 * empty: chosen at create). `refusal`: why the network's kind and modes cannot have host access (LinkKind
 * hostAccessRefusal), or undefined when they can.
 */
export function parseHostAccess(
  opts: Record<string, string>,
  refusal: string | undefined,
  subnets: readonly SubnetConfig[],
): string[] | undefined {
  const flag = opts.host_access;
  if (flag !== undefined && !['true', 'false', '1', '0'].includes(flag))
    throw invalid('host_access', flag, "use true or false ('false' is the default)");
  const given = opts.host_access_address;
  const dns = opts.dns;
  if (dns !== undefined && !['true', 'false', '1', '0'].includes(dns))
    throw invalid('dns', dns, "use true or false ('false' is the default; true turns on host_access's link)");
  if (dns !== undefined && truthy(dns) && flag !== undefined && !truthy(flag))
    throw invalid('dns', dns, "macnet's DNS listens on host access's address: drop host_access=false");
  const on = flag === undefined ? (given !== undefined && given !== '') || truthy(dns) : truthy(flag);
  if (!on) {
    if (given)
      throw invalid(
        'host_access_address',
        given,
        'it needs host access: drop host_access=false (host_access_address turns host access on)',
      );
    return undefined;
  }
  if (refusal !== undefined)
    throw flag === undefined && !given && dns !== undefined
      ? invalid('dns', dns, `it turns on host access, and ${refusal}`)
      : invalid('host_access', flag ?? 'true', refusal);
  const out: string[] = [];
  for (const part of (given ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)) {
    const valid =
      'give one IPv4 and/or one IPv6 address, comma-separated, each ' +
      "inside one of the network's subnets and not its gateway";
    let ip: string;
    try {
      const c = parseCidr(part);
      if (part.includes('/')) throw new TypeError('a prefix');
      ip = c.address;
    } catch {
      throw invalid('host_access_address', given, `${JSON.stringify(part)} is not an IP address; ${valid}`);
    }
    const fam = part.includes(':') ? 6 : 4;
    if (out.some((o) => o.includes(':') === (fam === 6)))
      throw invalid('host_access_address', given, `two IPv${fam} addresses; ${valid}`);
    const s = subnets.find((x) => x.family === fam && networkOf(ip, Number(x.subnet.split('/')[1])) === x.subnet);
    if (!s)
      throw invalid(
        'host_access_address',
        given,
        `${ip} is in none of the network's IPv${fam} subnets (${
          subnets
            .filter((x) => x.family === fam)
            .map((x) => x.subnet)
            .join(', ') || 'none'
        }); ${valid}`,
      );
    if (s.gateway === ip) throw invalid('host_access_address', given, `${ip} is the gateway of ${s.subnet}; ${valid}`);
    const prefix = Number(s.subnet.split('/')[1]);
    const hostBits = (fam === 4 ? 32 : 128) - prefix;
    if (
      hostBits > 1 &&
      (ip === s.subnet.split('/')[0] || (fam === 4 && networkOf(ip, prefix) === s.subnet && isBroadcast(ip, prefix)))
    ) {
      throw invalid(
        'host_access_address',
        given,
        `${ip} is the ${ip === s.subnet.split('/')[0] ? 'network' : 'broadcast'} address of ${s.subnet}; ${valid}`,
      );
    }
    out.push(ip);
  }
  return out;
}

const isBroadcast = (ip: string, prefix: number): boolean => {
  const n = ip
    .split('.')
    .map(Number)
    .reduce((a, b) => a * 256 + b, 0);
  const hostMask = 2 ** (32 - prefix) - 1;
  return n % (hostMask + 1) === hostMask;
};
