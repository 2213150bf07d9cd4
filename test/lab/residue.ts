// What tests might leave behind, as a comparable snapshot: namespaces, root links, mounts, processes.
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';

export interface Snapshot {
  netns: string[];
  rootLinks: string[];
  mounts: string[];
  /** pid and command line of processes tests may start (dockerd, containerd, qemu, macnet daemons, ...). */
  processes: string[];
}

const WATCHED =
  /(^|\/)(dockerd|containerd|containerd-shim[\w-]*|qemu-system-[\w]+|etcd|dnsmasq|udhcpd|iperf3|docker-registry)( |$)|macnet(\.js)? daemon|dist\/bench\//;

export function snapshot(): Snapshot {
  let netns: string[] = [];
  try {
    netns = fs.readdirSync('/run/netns').sort();
  } catch {
    /* none */
  }
  const rootLinks = (
    JSON.parse(execFileSync('ip', ['-json', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string }[]
  )
    .map((l) => l.ifname)
    .sort();
  // `ip netns add` makes /run/netns a shared mount point once, on first use, and never undoes it: that is
  // iproute2's own set-up, not something a test left. The namespace files mounted under it do count.
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m !== '/run/netns')
    .sort();
  const processes: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmd: string;
    try {
      cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    } catch {
      continue;
    }
    if (WATCHED.test(cmd)) processes.push(`${pid} ${cmd}`);
  }
  return { netns, rootLinks, mounts, processes: processes.sort() };
}

/** What `after` has that `before` had not. */
export function added(before: Snapshot, after: Snapshot): Partial<Snapshot> {
  const diff = (a: string[], b: string[]) => b.filter((x) => !a.includes(x));
  const out: Partial<Snapshot> = {};
  for (const k of ['netns', 'rootLinks', 'mounts', 'processes'] as const) {
    const d = diff(before[k], after[k]);
    if (d.length) out[k] = d;
  }
  return out;
}
