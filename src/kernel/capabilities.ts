// The privileges the daemon needs, checked at start so that a daemon that could not do its job never says
// "ready" (it used to, run as a plain user, and failed at the first docker command instead).
//   CAP_NET_ADMIN: create, move and delete links, addresses and routes (rtnetlink).
//   CAP_SYS_ADMIN: setns() into container network namespaces (the addon opens sockets there).
//   CAP_NET_RAW:   packet sockets for ARP/NDP probes, announcements and DHCP.
import * as fs from 'node:fs';
import { MacnetError } from '../errors';

export const NEEDED_CAPABILITIES = { CAP_NET_ADMIN: 12, CAP_NET_RAW: 13, CAP_SYS_ADMIN: 21 } as const;
export type Capability = keyof typeof NEEDED_CAPABILITIES;

/** The needed capabilities missing from an effective set (CapEff of /proc/<pid>/status, hex). */
export function missingCapabilities(capEffHex: string): Capability[] {
  const eff = BigInt(`0x${capEffHex.trim() || '0'}`);
  return (Object.entries(NEEDED_CAPABILITIES) as [Capability, number][])
    .filter(([, bit]) => ((eff >> BigInt(bit)) & 1n) === 0n)
    .map(([name]) => name);
}

/** Throws PRIVILEGES_MISSING naming each needed capability this process lacks. */
export function assertPrivileges(status = '/proc/self/status'): void {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(fs.readFileSync(status, 'utf8'))?.[1] ?? '0';
  const missing = missingCapabilities(hex);
  if (missing.length === 0) return;
  const uid = process.getuid?.();
  throw new MacnetError(
    'PRIVILEGES_MISSING',
    `macnet daemon needs ${missing.join(', ')} and runs without ` +
      `${missing.length === 1 ? 'it' : 'them'} (uid ${uid}, CapEff ${hex}): run it as root (the systemd unit does), ` +
      'or grant them, e.g. AmbientCapabilities= in a unit or setcap on node',
    { missing, uid },
  );
}
