// The macvlan and ipvlan children of a parent, wherever they live. Docker moves each container's link into the
// container's namespace, where the host's link dump no longer shows it; so every network namespace this host
// has (named ones under /run/netns and /run/docker/netns, and every process's) is asked once. A child in
// another namespace names its parent by index there (IFLA_LINK) and indexes repeat between namespaces; what
// ties it to this parent is the MAC: an ipvlan child and a passthru macvlan always carry their parent's MAC (the
// kernel copies it at creation and follows the parent's changes).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Kernel, type Link } from '../kernel';

/**
 * What a child makes of its parent: the kernel hangs one receive handler on a parent, a macvlan port (macvlan and
 * macvtap children) or an ipvlan port, never both; that, not the child's kind name, is what the checks need.
 */
export type Port = 'macvlan-port' | 'ipvlan-port';
const PORT_OF: Readonly<Record<string, Port>> = {
  macvlan: 'macvlan-port',
  macvtap: 'macvlan-port',
  ipvlan: 'ipvlan-port',
};

export interface Child {
  readonly name: string;
  readonly kind: string;
  readonly port: Port;
  /** macvlan mode or ipvlan mode. */
  readonly mode: string;
  /** 'host' for the host's own namespace, else the path it was found at (/proc/PID/ns/net, /run/netns/NAME). */
  readonly netns: string;
  /** The namespace's inode (another namespace's): what ties the child to a network's container (finding.ts). */
  readonly netnsInode?: number;
}

function nsInode(p: string): number | undefined {
  try {
    return fs.statSync(p).ino;
  } catch {
    return undefined; // a process that ended, a namespace deleted while we looked
  }
}

/** One path per namespace other than ours, named ones first (their names mean more to a user than a pid). */
export function otherNamespaces(procRoot: string, runRoot: string): { path: string; inode: number }[] {
  const own = nsInode(path.join(procRoot, 'self', 'ns', 'net'));
  const seen = new Set<number>(own === undefined ? [] : [own]);
  const out: { path: string; inode: number }[] = [];
  const list = (dir: string) => {
    try {
      return fs.readdirSync(dir);
    } catch {
      return [];
    }
  };
  const candidates = [
    ...list(path.join(runRoot, 'netns')).map((n) => path.join(runRoot, 'netns', n)),
    ...list(path.join(runRoot, 'docker', 'netns')).map((n) => path.join(runRoot, 'docker', 'netns', n)),
    ...list(procRoot)
      .filter((p) => /^\d+$/.test(p))
      .map((p) => path.join(procRoot, p, 'ns', 'net')),
  ];
  for (const p of candidates) {
    const ino = nsInode(p);
    if (ino === undefined || seen.has(ino)) continue;
    seen.add(ino);
    out.push({ path: p, inode: ino });
  }
  return out;
}

function asChild(l: Link, netns: string, netnsInode?: number): Child | undefined {
  const port = l.data && PORT_OF[l.data.kind];
  if (!port || !l.data || !('mode' in l.data)) return undefined;
  return { name: l.name, kind: l.data.kind, port, mode: l.data.mode, netns, ...(netnsInode ? { netnsInode } : {}) };
}

/** The parent's macvlan, macvtap and ipvlan children in every namespace (other namespaces: passthru and ipvlan). */
export async function childrenOf(
  k: Kernel,
  parent: Link,
  roots: { procRoot: string; runRoot: string },
): Promise<Child[]> {
  const out: Child[] = [];
  for (const l of await k.links.list()) {
    if (l.parentIndex !== parent.index || l.parentNetnsId !== undefined) continue;
    const c = asChild(l, 'host');
    if (c) out.push(c);
  }
  if (!parent.mac) return out;
  for (const { path: p, inode } of otherNamespaces(roots.procRoot, roots.runRoot)) {
    let links: Link[];
    try {
      links = await Kernel.with(p, (other) => other.links.list());
    } catch {
      continue; // gone meanwhile, or not ours to enter
    }
    for (const l of links) {
      if (l.parentNetnsId === undefined || l.parentIndex !== parent.index || l.mac !== parent.mac) continue;
      const c = asChild(l, p, inode);
      if (c && (c.port === 'ipvlan-port' || c.mode === 'passthru')) out.push(c);
    }
  }
  return out;
}
