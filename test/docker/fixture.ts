// The lab every scenario file shares: one lab host with dockerd and a macnet daemon, set up before the file's
// tests and removed after them, and `scenario()`, a test whose containers, networks and links are removed
// afterwards and whose host is then checked. Importing this module registers the file's before/after hooks.
// With MACNET_TEST_STORE=etcd in the environment (./store-etcd.ts sets it), the daemon runs with --store etcd on a
// one-member etcd of its own, the member in the lab host's namespace on its LAN address.
import { after, before, type TestContext } from 'node:test';
import { test } from '../lab/engine-test';
import assert from 'node:assert/strict';
import { Daemon } from '../lab/daemon';
import { EtcdCluster } from '../lab/etcd';
import { Lab, dockerMissing, type LabHost } from '../lab/lab';
import { ipJson, run, sh } from '../lab/sh';

export const SKIP = dockerMissing();
export let lab: Lab | undefined;
export let h: LabHost;
export let d: Daemon | undefined;
export let etcd: EtcdCluster | undefined;
const ON_ETCD = process.env['MACNET_TEST_STORE'] === 'etcd';
export const made: string[] = [];

before(async () => {
  if (SKIP) return;
  lab = await Lab.create({ hosts: 1, docker: true });
  h = lab.hosts[0]!;
  if (ON_ETCD)
    etcd = await EtcdCluster.start({
      members: 1,
      placement: { members: [{ netns: h.ns.path, ip: h.ipv4 }], ctlNetns: h.ns.path },
      parentDir: lab.dir,
    });
  const store = etcd ? ['--store', 'etcd', '--etcd-endpoints', etcd.endpoints.join(',')] : [];
  d = await Daemon.start({ netns: h.ns.path, pluginDir: h.pluginDir, extraArgs: store });
});
after(async () => {
  // dockerd goes first (it calls the plugin while it removes containers), the plugin after it.
  try {
    await lab?.destroy();
  } finally {
    await d?.remove();
    await etcd?.close();
    await Lab.destroyAll();
  }
});

/**
 * A test whose containers, networks and links are removed afterwards, also when it fails or skips, and which
 * then checks the host. (Not an afterEach hook: node's test runner does not run those for skipped tests.)
 */
export function scenario(name: string, fn: (t: TestContext) => Promise<void>): void {
  test(ON_ETCD ? `${name} [daemon on etcd]` : name, async (t) => {
    if (SKIP) return t.skip(SKIP);
    const t0 = performance.now();
    let passed = false;
    try {
      await fn(t);
      passed = true;
    } finally {
      // A failed test's own error is the one to see; the clean-up still runs, and its complaints are shown.
      if (passed) await cleanUp();
      else await cleanUp().catch((e: Error) => t.diagnostic(`clean-up after the failure: ${e.message}`));
      t.diagnostic(`${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  });
}

export const lines = (s: string) =>
  s
    .split('\n')
    .map((x) => x.trim())
    .filter(Boolean);
export const dk = (...a: string[]) => h.docker(...a);
export async function ok(...a: string[]): Promise<string> {
  const r = await dk(...a);
  assert.equal(r.code, 0, `docker ${a.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}
export const create = (name: string, ...opts: string[]) =>
  dk('network', 'create', '-d', 'macnet', '--ipam-driver', 'macnet', ...opts, name);
export const mknet = (name: string, ...opts: string[]) =>
  ok('network', 'create', '-d', 'macnet', '--ipam-driver', 'macnet', ...opts, name);
export const start = (name: string, network: string, ...opts: string[]) =>
  ok('run', '-d', '--name', name, '--net', network, ...opts, 'busybox:local', 'sleep', '600');
export async function ping(from: string, to: string, ...opts: string[]): Promise<void> {
  const r = await dk('exec', from, 'ping', ...opts, '-c', '1', '-W', '2', to);
  assert.equal(r.code, 0, `ping ${to} from ${from}: ${r.stdout}${r.stderr}`);
}
export const hostLinks = async () =>
  (await ipJson<{ ifname: string }[]>(h.ns.name, 'link', 'show')).map((l) => l.ifname);
export const networks = async () =>
  lines(await ok('network', 'ls', '--filter', 'driver=macnet', '--format', '{{.Name}}')).sort();
/** The container's settings on one network, as `docker inspect` shows them. */
export async function settings(
  ctr: string,
  network: string,
): Promise<{ IPAddress: string; Gateway: string; GlobalIPv6Address: string; IPv6Gateway: string }> {
  return JSON.parse(await ok('inspect', ctr, '--format', `{{json (index .NetworkSettings.Networks "${network}")}}`));
}

/** A second NIC of the host on the LAN: a veth whose peer is a port of the LAN switch. */
export async function lanNic(name: string): Promise<void> {
  await sh(
    'ip',
    '-n',
    h.ns.name,
    'link',
    'add',
    name,
    'type',
    'veth',
    'peer',
    'name',
    `${name}-sw`,
    'netns',
    lab!.lan.name,
  );
  made.push(name);
  await sh('ip', '-n', lab!.lan.name, 'link', 'set', `${name}-sw`, 'master', 'sw0', 'up');
  await sh('ip', '-n', h.ns.name, 'link', 'set', name, 'up');
}
/** A veth pair inside the host alone: a parent that reaches nothing (Docker's tests use a dummy for that). */
export async function loneVeth(name: string, up = true): Promise<void> {
  await sh('ip', '-n', h.ns.name, 'link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`);
  made.push(name);
  if (up) for (const l of [name, `${name}p`]) await sh('ip', '-n', h.ns.name, 'link', 'set', l, 'up');
}

export async function cleanUp(): Promise<void> {
  const errors: string[] = [];
  const ids = lines((await dk('ps', '-aq')).stdout);
  if (ids.length) {
    const r = await dk('rm', '-f', ...ids);
    if (r.code) errors.push(r.stderr.trim());
  }
  for (const driver of ['macnet', 'macvlan']) {
    const nets = lines((await dk('network', 'ls', '-q', '--filter', `driver=${driver}`)).stdout);
    if (nets.length) {
      const r = await dk('network', 'rm', ...nets);
      if (r.code) errors.push(r.stderr.trim());
    }
  }
  for (const l of made.splice(0)) await run('ip', ['-n', h.ns.name, 'link', 'del', l]);
  const left = await hostLinks();
  // Endpoint links mn<11 hex>, LAN probe links mnp<10 hex> (they go with their parent's last network), dm-/di- parents.
  assert.deepEqual(
    left.filter((n) => /^mn[0-9a-f]{11}$|^mnp[0-9a-f]{10}$|^d[mi]-/.test(n)),
    [],
    'no macnet link is left in the host',
  );
  assert.deepEqual(left.sort(), ['eth0', 'lo'], 'the host has exactly its own links again');
  assert.deepEqual(errors, [], 'containers and networks were removed');
}
