// A cluster lab for the Docker tests of cluster mode (docs/cluster.md, docs/names.md): lab hosts with dockerd, an
// etcd on the LAN (one member on the lab's router, or one member in each host's namespace on its LAN address, as
// issue 19's acceptance lab), and one macnet daemon per host on it, with the names' options (the Engine API of its
// own dockerd, its DNS label h1, h2, ...; or none, names: false) and any more arguments a test gives. Torn down in
// the order that leaves nothing: dockerd first (it calls the plugins while it removes containers), then the
// daemons, then etcd.
import { Daemon } from './daemon';
import { EtcdCluster } from './etcd';
import { LAN, Lab, type LabHost } from './lab';

export interface ClusterLabOptions {
  readonly hosts: number;
  readonly ipv6?: boolean;
  /** 'router': one member on the lab's router; 'hosts': a member in each host's namespace on its LAN address. */
  readonly etcd: 'router' | 'hosts';
  /**
   * false: the daemons get no names' options (their Engine API and DNS label are left to the defaults), for the
   * tests that count etcd's keys and want none of the names' records there. Default true.
   */
  readonly names?: boolean;
  /** More daemon arguments per host. */
  readonly daemonArgs?: (h: LabHost, i: number) => string[];
}

export interface ClusterLab {
  readonly lab: Lab;
  readonly etcd: EtcdCluster;
  readonly daemons: Daemon[];
  close(): Promise<void>;
}

/** The DNS label of the i-th host (0-based): h1, h2, ... */
export const hostLabel = (i: number): string => `h${i + 1}`;

export async function clusterLab(o: ClusterLabOptions): Promise<ClusterLab> {
  if (o.etcd === 'hosts' && o.hosts !== 3) throw new Error('an etcd member on each host: three hosts (etcd: 1 or 3)');
  const lab = await Lab.create({ hosts: o.hosts, docker: true, ...(o.ipv6 && { ipv6: true }) });
  let etcd: EtcdCluster | undefined;
  const daemons: Daemon[] = [];
  const close = async () => {
    try {
      await lab.destroy();
    } finally {
      for (const d of daemons.splice(0)) await d.remove();
      await etcd?.close();
    }
  };
  try {
    const placement =
      o.etcd === 'router'
        ? { members: [{ netns: lab.lan.path, ip: LAN.router4 }], ctlNetns: lab.lan.path }
        : { members: lab.hosts.map((h) => ({ netns: h.ns.path, ip: h.ipv4 })), ctlNetns: lab.lan.path };
    etcd = await EtcdCluster.start({ members: o.etcd === 'router' ? 1 : 3, placement, parentDir: lab.dir });
    const endpoints = etcd.endpoints.join(',');
    for (const [i, h] of lab.hosts.entries())
      daemons.push(
        await Daemon.start({
          netns: h.ns.path,
          mountNs: h.mountNs,
          pluginDir: h.pluginDir,
          extraArgs: [
            ...['--store', 'etcd', '--etcd-endpoints', endpoints],
            ...(o.names === false
              ? []
              : ['--docker-host', `unix://${h.dockerSocket}`, '--dns-host-label', hostLabel(i)]),
            ...(o.daemonArgs?.(h, i) ?? []),
          ],
        }),
      );
    return { lab, etcd, daemons, close };
  } catch (e) {
    await close();
    throw e;
  }
}
