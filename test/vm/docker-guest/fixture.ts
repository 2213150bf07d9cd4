// What every guest scenario of the VM Docker suite shares (test/vm/docker-in-vm.test.ts boots the VM; main.ts
// runs in it): the lab of test/lab/lab.ts built inside the guest, two hosts with a dockerd of the engine the host
// passed in (MACNET_ENGINE) and a macnet daemon each, on IPv4 and IPv6; `scenario()`, a test named after its
// expectation whose containers, networks and extra links are removed afterwards on both hosts; docker helpers.
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { Daemon } from '../../lab/daemon';
import { Lab, type LabHost } from '../../lab/lab';
import { run, type RunResult } from '../../lab/sh';
import { type ExpectationId, guestTestName } from './expectations';

export interface Guest {
  lab: Lab;
  h1: LabHost;
  h2: LabHost;
  daemons: Map<LabHost, Daemon>;
}
let guest: Guest | undefined;

/** The guest's lab; only inside a scenario (before() has built it). */
export const g = (): Guest => {
  assert.ok(guest, 'the guest lab was not built (see the before hook)');
  return guest;
};

/** dockerd needs the cgroup v2 hierarchy, which the VM's init does not mount (it mounts only proc, sys and dev). */
function mountCgroup2(): void {
  if (fs.existsSync('/sys/fs/cgroup/cgroup.controllers')) return;
  execFileSync('mount', ['-t', 'cgroup2', 'cgroup2', '/sys/fs/cgroup']);
  // The controllers dockerd's containers ask for, made available to child cgroups (runc does not do it at the root).
  const have = fs.readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8').trim().split(/\s+/);
  const want = ['cpu', 'io', 'memory', 'pids'].filter((c) => have.includes(c));
  fs.writeFileSync('/sys/fs/cgroup/cgroup.subtree_control', want.map((c) => `+${c}`).join(' '));
}

before(async () => {
  assert.equal(process.env.MACNET_IN_VM, '1', 'the VM Docker suite runs only inside the VM (test/lab/vm.ts)');
  mountCgroup2();
  const lab = await Lab.create({ hosts: 2, docker: true, ipv6: true });
  const [h1, h2] = lab.hosts as [LabHost, LabHost];
  const daemons = new Map<LabHost, Daemon>();
  guest = { lab, h1, h2, daemons };
  for (const h of [h1, h2])
    daemons.set(h, await Daemon.start({ netns: h.ns.path, mountNs: h.mountNs, pluginDir: h.pluginDir }));
  process.stderr.write(`guest lab: ${h1.engine.label}, built in ${Math.round(lab.createMs)} ms\n`);
});

after(async () => {
  // dockerd goes first (it calls the plugin while it removes containers), the plugins after it.
  try {
    await guest?.lab.destroy();
  } finally {
    for (const d of guest?.daemons.values() ?? []) await d.remove();
  }
});

/** Links a scenario added in a host (name → host), removed after it. */
const made: [LabHost, string][] = [];
/** Namespace-side clean-ups a scenario registered (LAN devices' links, the switch's hairpin), run after it. */
const undo: (() => Promise<unknown>)[] = [];
export const madeLink = (h: LabHost, name: string): void => void made.push([h, name]);
export const onCleanUp = (fn: () => Promise<unknown>): void => void undo.push(fn);

/** A test for one expectation; never skipped. Its containers, networks and links go afterwards, also on failure. */
export function scenario(id: ExpectationId, fn: (t: TestContext) => Promise<void>): void {
  test(guestTestName(id), async (t) => {
    const t0 = performance.now();
    let passed = false;
    try {
      await fn(t);
      passed = true;
    } finally {
      if (passed) await cleanUp();
      else await cleanUp().catch((e: Error) => t.diagnostic(`clean-up after the failure: ${e.message}`));
      t.diagnostic(`${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  });
}

export const lines = (s: string): string[] =>
  s
    .split('\n')
    .map((x) => x.trim())
    .filter(Boolean);

export async function ok(h: LabHost, ...a: string[]): Promise<string> {
  const r = await h.docker(...a);
  assert.equal(r.code, 0, `${h.name}: docker ${a.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}
export const create = (h: LabHost, name: string, ...opts: string[]): Promise<RunResult> =>
  h.docker('network', 'create', '-d', 'macnet', '--ipam-driver', 'macnet', ...opts, name);
export const mknet = (h: LabHost, name: string, ...opts: string[]): Promise<string> =>
  ok(h, 'network', 'create', '-d', 'macnet', '--ipam-driver', 'macnet', ...opts, name);
export const start = (h: LabHost, name: string, network: string, ...opts: string[]): Promise<string> =>
  ok(h, 'run', '-d', '--name', name, '--net', network, ...opts, 'busybox:local', 'sleep', '900');

/** One ping from a container (-6 etc. in opts); the result, for pings that must fail as well as succeed. */
export const pingFrom = (h: LabHost, from: string, to: string, ...opts: string[]): Promise<RunResult> =>
  h.docker('exec', from, 'ping', ...opts, '-c', '1', '-W', '2', to);
export async function reaches(h: LabHost, from: string, to: string, ...opts: string[]): Promise<void> {
  const r = await pingFrom(h, from, to, ...opts);
  assert.equal(r.code, 0, `${h.name}: ${from} should reach ${to}: ${r.stdout}${r.stderr}`);
}
/** Two pings, so that a first one lost to neighbour resolution does not pass as isolation by itself. */
export async function cannotReach(h: LabHost, from: string, to: string, ...opts: string[]): Promise<void> {
  const r = await h.docker('exec', from, 'ping', ...opts, '-c', '2', '-W', '1', to);
  assert.notEqual(r.code, 0, `${h.name}: ${from} must not reach ${to}: ${r.stdout}`);
}
/** A ping from a namespace (the LAN's router, a LAN device, a host) to an address. */
export const nsPing = (nsPath: string, to: string, count = 1): Promise<RunResult> =>
  run('nsenter', [`--net=${nsPath}`, 'ping', '-c', String(count), '-W', '2', to]);

export const address = async (h: LabHost, ctr: string, network: string, v6 = false): Promise<string> =>
  ok(
    h,
    'inspect',
    ctr,
    '-f',
    `{{(index .NetworkSettings.Networks "${network}").${v6 ? 'GlobalIPv6Address' : 'IPAddress'}}}`,
  );

export const hostLinks = async (h: LabHost): Promise<string[]> =>
  (JSON.parse((await h.exec('ip', '-json', 'link', 'show')).stdout) as { ifname: string }[]).map((l) => l.ifname);

/** Containers and macnet networks of both hosts, links the scenario made; then each host has only eth0 and lo. */
async function cleanUp(): Promise<void> {
  const { h1, h2 } = g();
  const errors: string[] = [];
  for (const h of [h1, h2]) {
    const ids = lines((await h.docker('ps', '-aq')).stdout);
    if (ids.length) {
      const r = await h.docker('rm', '-f', ...ids);
      if (r.code) errors.push(`${h.name}: ${r.stderr.trim()}`);
    }
    const nets = lines((await h.docker('network', 'ls', '-q', '--filter', 'driver=macnet')).stdout);
    if (nets.length) {
      const r = await h.docker('network', 'rm', ...nets);
      if (r.code) errors.push(`${h.name}: ${r.stderr.trim()}`);
    }
  }
  for (const [h, l] of made.splice(0)) await h.exec('ip', 'link', 'del', l);
  for (const fn of undo.splice(0).reverse()) await fn().catch((e: Error) => errors.push(e.message));
  for (const h of [h1, h2])
    assert.deepEqual((await hostLinks(h)).sort(), ['eth0', 'lo'], `${h.name} has exactly its own links again`);
  assert.deepEqual(errors, [], 'containers and networks were removed');
}
