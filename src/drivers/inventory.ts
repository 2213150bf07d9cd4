// `macnet scan`'s verdicts, pure: who owns each address that answered (or that macnet knows), and which
// addresses are in conflict. The facts come from scan.ts (the sweep, the driver's records, the kernel).
import { ipToBytes } from '../types/address';
import { PROBE_MAC_SIGNATURE, macFirstOctet } from '../types/mac';
import { MAC_SIGNATURE } from './endpoint';

export type Owner =
  | 'container (this host)'
  | 'host'
  | 'gateway'
  | 'macnet container (other host)'
  | 'macnet reserved (other host)'
  | 'unknown';

export interface Known {
  /** This host's endpoints with an address on the swept subnets. */
  readonly endpoints: readonly {
    readonly address: string;
    readonly mac?: string;
    readonly endpointId: string;
    readonly link: string;
  }[];
  /** This host's addresses (any link, the host-access link included) on the swept subnets. */
  readonly host: readonly { readonly address: string; readonly link: string; readonly mac: string }[];
  /**
   * The MACs of all of this host's links with an address. Linux answers ARP for any of the host's addresses
   * on any link (arp_ignore 0, the weak host model), so the host-access link may answer for the parent's
   * address: one host, not a conflict.
   */
  readonly hostMacs: readonly string[];
  readonly gateways: readonly string[];
  /** The last address of containers that have none now (stopped or removed): IPAM's sticky records. */
  readonly stopped: readonly { readonly address: string; readonly name: string }[];
  /** ipvlan: swept from the parent, which neither this host's containers nor the host itself answer. */
  readonly fromParent?: boolean;
}

export interface Row {
  readonly address: string;
  /** The MACs that answered, comma-separated; for a silent or host address, the MAC macnet knows for it. */
  readonly mac: string;
  readonly owner: Owner;
  readonly note: string;
  readonly conflict: boolean;
  /** Every MAC that answered and how often (one request was sent per address). */
  readonly replies: readonly { readonly mac: string; readonly count: number }[];
}

/** Another host's macnet is recognisable by the first octet of the MACs it makes (endpoint.ts, lan.ts). */
export function ownerByMac(mac: string): Owner {
  const first = macFirstOctet(mac);
  if (first === MAC_SIGNATURE) return 'macnet container (other host)';
  if (first === PROBE_MAC_SIGNATURE) return 'macnet reserved (other host)';
  return 'unknown';
}

export function compareAddresses(a: string, b: string): number {
  const x = ipToBytes(a);
  const y = ipToBytes(b);
  return x.length - y.length || Buffer.compare(x, y);
}

export function classify(replies: ReadonlyMap<string, readonly string[]>, known: Known): Row[] {
  const addresses = new Set<string>([...replies].filter(([, m]) => m.length).map(([a]) => a));
  for (const a of [...known.endpoints, ...known.host, ...known.stopped]) addresses.add(a.address);
  for (const g of known.gateways) addresses.add(g);
  return [...addresses].sort(compareAddresses).map((address) => row(address, replies.get(address) ?? [], known));
}

function row(address: string, macs: readonly string[], known: Known): Row {
  const counts = new Map<string, number>();
  for (const m of macs) counts.set(m, (counts.get(m) ?? 0) + 1);
  const answered = [...counts.keys()];
  const replies = [...counts].map(([mac, count]) => ({ mac, count }));
  const ep = known.endpoints.find((e) => e.address === address);
  const host = known.host.filter((h) => h.address === address);
  const stopped = known.stopped.find((s) => s.address === address);
  let owner: Owner;
  let note: string;
  /** MACs that may answer for the address without a conflict; empty: any one MAC, but only one. */
  let expected: string[] = [];
  if (ep) {
    owner = 'container (this host)';
    note = `endpoint ${ep.endpointId.slice(0, 12)}, link ${ep.link}`;
    expected = ep.mac ? [ep.mac] : [];
    if (!answered.length) {
      note = known.fromParent
        ? `${note} (from macnet's records: ipvlan children do not hear their parent's requests)`
        : `silent: no reply (${note}: not running, or its interface is down)`;
    }
  } else if (host.length) {
    owner = 'host';
    expected = [...new Set([...host.map((h) => h.mac), ...known.hostMacs])];
    // A macvlan parent does not hear its children, so the probe link cannot ask the host's own links.
    note =
      `link ${host.map((h) => h.link).join(', ')}` +
      (answered.length
        ? ''
        : known.fromParent
          ? ' (from the kernel: requests from the parent do not reach the host itself)'
          : ' (from the kernel: the probe link cannot reach its own parent)');
  } else if (known.gateways.includes(address)) {
    owner = 'gateway';
    note = answered.length ? "the network's gateway" : "silent: the network's gateway did not answer";
  } else if (answered.length) {
    owner = ownerByMac(answered[0]!);
    note =
      owner === 'macnet reserved (other host)'
        ? "another host's macnet probe link defends it for its next container"
        : '';
    if (stopped) note = `${note ? `${note}; ` : ''}was the last address of stopped container ${stopped.name}`;
  } else {
    owner = 'container (this host)';
    note =
      `silent: last address of stopped container ${stopped!.name}` +
      ' (given back to it when it starts again, if still free)';
  }
  // Another host's macnet defends an address its probe link verified for 30 s after handing it out
  // (lan.ts, CLAIM_MS), while its container already answers: a just-started container, not a conflict.
  const defended = !ep && !host.length && answered.some((m) => ownerByMac(m) === 'macnet container (other host)');
  const counted = defended ? answered.filter((m) => ownerByMac(m) !== 'macnet reserved (other host)') : answered;
  if (defended && counted.length < answered.length) {
    owner = 'macnet container (other host)';
    note =
      "just started: its host's probe link still defends the address" +
      `${note && !note.startsWith('another') ? `; ${note}` : ''}`;
  }
  const foreign = expected.length ? answered.filter((m) => !expected.includes(m)) : counted.slice(1);
  const conflict = foreign.length > 0;
  if (conflict) {
    const who = answered.map((m) => `${m} (${expected.includes(m) ? owner : ownerByMac(m)})`).join(', ');
    note =
      'CONFLICT: ' +
      `${answered.length > 1 ? `${answered.length} MACs answer` : 'answered by a MAC that is not its own'}` +
      `: ${who}${note ? `; ${note}` : ''}`;
  }
  const mac = answered.length ? answered.join(',') : (ep?.mac ?? host[0]?.mac ?? '');
  return { address, mac, owner, note, conflict, replies };
}
