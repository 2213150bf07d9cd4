// Docker networks on the lab's LAN for the Docker tests: a macnet network made the way most tests make it, and what
// the host side of host access holds (read from the kernel, as users would with `ip addr`).
import assert from 'node:assert/strict';
import { hostLinkName } from '../../src/drivers/host-access';
import { LAN, type LabHost } from './lab';
import { ipJson } from './sh';

/** `docker …` on a host, asserted to succeed; its stdout, trimmed. */
export async function dockerOk(h: LabHost, ...args: string[]): Promise<string> {
  const r = await h.docker(...args);
  assert.equal(r.code, 0, `${h.name}: docker ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** A macnet network (driver and IPAM) on the lab's LAN: `-o parent=eth0`, the lab's subnet and router as gateway. */
export function createMacnetNetwork(
  h: LabHost,
  name: string,
  o: { ipv6?: boolean; opts?: Record<string, string>; args?: string[] } = {},
): Promise<string> {
  return dockerOk(
    h,
    ...['network', 'create', '-d', 'macnet', '--ipam-driver', 'macnet'],
    ...['--subnet', LAN.subnet4, '--gateway', LAN.router4],
    ...(o.ipv6 ? ['--ipv6', '--subnet', LAN.subnet6, '--gateway', LAN.router6] : []),
    ...Object.entries({ parent: 'eth0', ...o.opts }).flatMap(([k, v]) => ['-o', `${k}=${v}`]),
    ...(o.args ?? []),
    name,
  );
}

/** The global addresses of the host-access link of `parent` in a host's namespace (the host's own on the network). */
export async function hostAccessAddresses(
  h: LabHost,
  parent = 'eth0',
): Promise<{ v4: string; v6: string | undefined }> {
  const links = await ipJson<{ addr_info: { family: string; local: string; scope: string }[] }[]>(
    h.ns.name,
    'addr',
    'show',
    'dev',
    hostLinkName(parent),
  );
  const info = links[0]!.addr_info.filter((a) => a.scope === 'global');
  return { v4: info.find((a) => a.family === 'inet')!.local, v6: info.find((a) => a.family === 'inet6')?.local };
}

/** The addresses in busybox nslookup's output (those after "Name:", not the server's own), sorted. */
export function nslookupAddresses(stdout: string): string[] {
  const answer = stdout
    .split(/Name:\s/)
    .slice(1)
    .join('\n');
  return [...answer.matchAll(/Address:\s*([0-9a-f.:]+)/g)].map((m) => m[1]!).sort();
}

/** The addresses `name` resolves to in container `c` (busybox nslookup: the container's resolver, or `server`). */
export async function lookupIn(
  h: LabHost,
  c: string,
  name: string,
  type: 'a' | 'aaaa' = 'a',
  server?: string,
): Promise<string[]> {
  const r = await h.docker('exec', c, 'nslookup', `-type=${type}`, name, ...(server ? [server] : []));
  return r.code === 0 ? nslookupAddresses(r.stdout) : [];
}

/** A long-running busybox container on `net`, its DNS `dns` when given (the names tests: a host-access address). */
export function runSleeper(h: LabHost, name: string, net: string, o: { dns?: string; args?: string[] } = {}) {
  return dockerOk(
    h,
    ...['run', '-d', '--name', name, '--net', net, ...(o.dns ? ['--dns', o.dns] : []), ...(o.args ?? [])],
    ...['busybox:local', 'sleep', '600'],
  );
}

/** A container's address on `net` as `docker inspect` shows it (IPAddress, or GlobalIPv6Address). */
export const addressOn = (h: LabHost, c: string, net: string, field = 'IPAddress'): Promise<string> =>
  dockerOk(h, 'inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").${field}}}`, c);
