// Cluster mode at the size issue 19 asks for, beside Docker's built-in driver on the same three hosts: 300 containers
// started at once (100 per host) on one /22 network without --ip get 300 distinct addresses, each answered by exactly
// one machine on the LAN. The same user-level scenario with `-d macvlan` (each host's dockerd keeps its own IPAM, as
// in moby#49921) hands the same first addresses out on every host: the LAN sees each answered by three MACs. That
// difference is the point of the cluster store.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { describe, test } from '../lab/engine-test';
import { arpSweep } from '../lab/arp';
import { startBurst } from '../lab/burst';
import { Daemon } from '../lab/daemon';
import { EtcdCluster } from '../lab/etcd';
import { LAN, Lab, type LabHost } from '../lab/lab';

const PER_HOST = 100;
/** docker runs in flight per host. */
const CONCURRENCY = 8;
/** A /22 around the lab's /24: the LAN's router (the gateway) and hosts are in it, and are never handed out. */
const SUBNET = '198.18.12.0/22';
/** The built-in driver's network: a subnet of its own on the same parent. */
const BUILTIN_SUBNET = '198.18.20.0/24';
const BUILTIN_PER_HOST = 3;

let lab: Lab;
let etcd: EtcdCluster | undefined;
let daemons: Daemon[] = [];

async function ok(h: LabHost, ...args: string[]): Promise<string> {
  const r = await h.docker(...args);
  assert.equal(r.code, 0, `${h.name}: docker ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

const startAll = (h: LabHost, net: string, names: string[]) => startBurst(h, net, names, CONCURRENCY);

/** Every container of `net` on every host, as each host's `docker network inspect` shows it. */
async function attached(net: string): Promise<{ host: string; name: string; mac: string; ip: string }[]> {
  const out: { host: string; name: string; mac: string; ip: string }[] = [];
  for (const h of lab.hosts) {
    const [n] = JSON.parse(await ok(h, 'network', 'inspect', net)) as {
      Containers: Record<string, { Name: string; MacAddress: string; IPv4Address: string }>;
    }[];
    for (const c of Object.values(n!.Containers ?? {}))
      out.push({ host: h.name, name: c.Name, mac: c.MacAddress, ip: c.IPv4Address.split('/')[0]! });
  }
  return out;
}

async function removeContainers(): Promise<void> {
  for (const h of lab.hosts) {
    const ids = (await h.docker('ps', '-aq')).stdout.split('\n').filter(Boolean);
    // In slices: one `docker rm` with 100 ids is one long call that a slow engine may time out.
    for (let i = 0; i < ids.length; i += 25) await h.docker('rm', '-f', ...ids.slice(i, i + 25));
  }
}

describe('cluster mode at scale, beside the built-in driver', () => {
  before(async () => {
    lab = await Lab.create({ hosts: 3, docker: true });
    etcd = await EtcdCluster.start({
      members: 3,
      placement: { members: lab.hosts.map((h) => ({ netns: h.ns.path, ip: h.ipv4 })), ctlNetns: lab.lan.path },
      parentDir: lab.dir,
    });
    daemons = await Promise.all(
      lab.hosts.map((h) =>
        Daemon.start({
          netns: h.ns.path,
          mountNs: h.mountNs,
          pluginDir: h.pluginDir,
          extraArgs: ['--log-level', 'info', '--store', 'etcd', '--etcd-endpoints', etcd!.endpoints.join(',')],
        }),
      ),
    );
  });
  after(async () => {
    // dockerd first (it calls the plugins while it stops, and they need etcd), then the plugins, then etcd.
    try {
      await lab?.destroy();
    } finally {
      for (const d of daemons.splice(0)) await d.remove();
      await etcd?.close();
    }
  });

  test('the built-in macvlan driver on three hosts hands the same addresses out on each (moby#49921)', async (t) => {
    t.after(async () => {
      await removeContainers();
      for (const h of lab.hosts) await h.docker('network', 'rm', 'builtin');
    });
    for (const h of lab.hosts)
      await ok(h, 'network', 'create', '-d', 'macvlan', '--subnet', BUILTIN_SUBNET, '-o', 'parent=eth0', 'builtin');
    const names = (h: LabHost) => Array.from({ length: BUILTIN_PER_HOST }, (_, i) => `m${h.index}-${i}`);
    assert.deepEqual((await Promise.all(lab.hosts.map((h) => startAll(h, 'builtin', names(h))))).flat(), []);
    const all = await attached('builtin');
    const ips = [...new Set(all.map((a) => a.ip))].sort();
    t.diagnostic(
      `-d macvlan: ${all.length} containers on 3 hosts got ${ips.length} distinct addresses: ${ips.join(' ')}`,
    );
    assert.equal(ips.length, BUILTIN_PER_HOST, 'every host handed out the same addresses');
    const swept = await arpSweep(lab, ips);
    // Three replies to each request: one container of each host. Docker 20.10 derives the MAC from the address
    // (02:42 + the IPv4), so there the three even share one MAC (a switch sees it move between ports); Docker 28
    // picks random MACs, so there they are three.
    for (const [ip, macs] of swept) {
      t.diagnostic(`${ip}: ${macs.length} replies, from ${[...new Set(macs)].join(' ')}`);
      assert.equal(macs.length, 3, `${ip} is answered on the LAN by one container of each host: ${macs.join(' ')}`);
    }
  });

  test(`${3 * PER_HOST} containers started at once (${PER_HOST} per host) on one /22 with macnet: ${3 * PER_HOST} distinct addresses, each answered once`, async (t) => {
    t.after(async () => {
      await removeContainers();
      for (const h of lab.hosts) await h.docker('network', 'rm', 'big');
    });
    await Promise.all(
      lab.hosts.map((h) =>
        ok(
          h,
          'network',
          'create',
          '-d',
          'macnet',
          '--ipam-driver',
          'macnet',
          '--subnet',
          SUBNET,
          '--gateway',
          LAN.router4,
          '-o',
          'parent=eth0',
          'big',
        ),
      ),
    );
    const names = (h: LabHost) => Array.from({ length: PER_HOST }, (_, i) => `c${h.index}-${i}`);
    const t0 = Date.now();
    const failures = (await Promise.all(lab.hosts.map((h) => startAll(h, 'big', names(h))))).flat();
    t.diagnostic(`${3 * PER_HOST} containers started in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assert.deepEqual(failures, []);
    const all = await attached('big');
    assert.equal(all.length, 3 * PER_HOST, 'every container is attached on its host');
    const byIp = new Map<string, (typeof all)[number]>();
    for (const a of all) {
      const other = byIp.get(a.ip);
      assert.ok(!other, `${a.ip} given to ${other?.host}/${other?.name} and ${a.host}/${a.name}`);
      byIp.set(a.ip, a);
    }
    for (const ip of [LAN.router4, ...lab.hosts.map((h) => h.ipv4)])
      assert.ok(!byIp.has(ip), `${ip} (the router or a host) was given to a container`);
    const swept = await arpSweep(lab, [...byIp.keys()]);
    const wrong = [...swept]
      .filter(([ip, macs]) => macs.length !== 1 || macs[0] !== byIp.get(ip)!.mac)
      .map(([ip, macs]) => `${ip} (${byIp.get(ip)!.host}): ${macs.join(' ') || 'no reply'}`);
    t.diagnostic(`ARP from the LAN: ${swept.size} addresses, ${swept.size - wrong.length} answered once, by their MAC`);
    assert.deepEqual(wrong, [], 'every address answered exactly once, by the container its host shows');
  });
});
