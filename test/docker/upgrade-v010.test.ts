// Upgrade from v0.1.0 (issue 15): containers started under v0.1.0's daemon (built from this repository's history,
// test/lab/v010.ts) on a network with host access; the daemon replaced by this checkout's on the same state dir
// and socket. The state is migrated (schema version 2); the containers' addresses, their links and the host's
// access link and addresses are unchanged, everything still reachable both ways; a new container gets an address
// of its own; the network is removed cleanly afterwards.
import { after, before } from 'node:test';
import { test } from '../lab/engine-test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { hostLinkName } from '../../src/drivers/host-access';
import { SqliteStore } from '../../src/store/sqlite';
import { Daemon } from '../lab/daemon';
import { LAN, Lab, type LabHost, dockerMissing } from '../lab/lab';
import { ipJson, run } from '../lab/sh';
import { createMacnetNetwork, dockerOk } from '../lab/networks';
import { buildV010, type OldBuild } from '../lab/v010';

const IMAGE = 'busybox:local';
const LINK = hostLinkName('eth0');
let old: OldBuild | undefined;
let lab: Lab | undefined;
let host: LabHost;
const daemons: Daemon[] = [];

before(async () => {
  assert.equal(dockerMissing(), undefined);
  old = await buildV010();
  lab = await Lab.create({ hosts: 1, docker: true });
  host = lab.hosts[0]!;
});

after(async () => {
  try {
    await lab?.destroy();
  } finally {
    for (const d of daemons) await d.remove();
    old?.remove();
  }
});

const docker = (...args: string[]): Promise<string> => dockerOk(host, ...args);

const addressOf = (c: string) => docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', c);

/** What must not change: each container's address and MAC, the host-access link with its addresses and MAC. */
async function picture(names: string[]): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const c of names) {
    out[c] = await docker(
      'inspect',
      '-f',
      '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.MacAddress}}{{end}}',
      c,
    );
  }
  const [l] = await ipJson<{ address: string; addr_info: { local: string; scope: string }[] }[]>(
    host.ns.name,
    'addr',
    'show',
    'dev',
    LINK,
  );
  out.hostLink = [l!.address, l!.addr_info.filter((a) => a.scope === 'global').map((a) => a.local)];
  return out;
}

async function reachable(ips: string[], hostIp: string): Promise<void> {
  for (const ip of ips) {
    const r = await run('nsenter', [`--net=${host.ns.path}`, 'ping', '-c', '1', '-W', '2', ip]);
    assert.equal(r.code, 0, `host → container ${ip}: ${r.stdout}${r.stderr}`);
  }
  for (const [c, to] of [
    ['st', LAN.router4],
    ['st', hostIp],
    ['dyn', hostIp],
  ] as const) {
    const r = await host.docker('exec', c, 'ping', '-c', '1', '-W', '2', to);
    assert.equal(r.code, 0, `container ${c} → ${to}: ${r.stdout}${r.stderr}`);
  }
}

test('upgrade from v0.1.0 under running containers: state migrated, addresses, links and host access unchanged, still reachable', async () => {
  const first = await Daemon.start({
    netns: host.ns.path,
    mountNs: host.mountNs,
    pluginDir: host.pluginDir,
    main: old!.main,
  });
  daemons.push(first);
  await createMacnetNetwork(host, 'up', { opts: { host_access: 'true' }, args: ['--ip-range', '198.18.15.64/27'] });
  await docker('run', '-d', '--name', 'st', '--net', 'up', '--ip', '198.18.15.70', IMAGE, 'sleep', '3600');
  await docker('run', '-d', '--name', 'dyn', '--net', 'up', IMAGE, 'sleep', '3600');
  const before = await picture(['st', 'dyn']);
  const hostIp = (before.hostLink as [string, string[]])[1][0]!;
  const ips = [await addressOf('st'), await addressOf('dyn')];
  assert.equal(ips[0], '198.18.15.70');
  await reachable(ips, hostIp);

  // The daemon replaced: v0.1.0 stops, this checkout's starts on the same state dir and socket.
  assert.equal(await first.stop('SIGTERM'), 0);
  const next = await Daemon.start({
    netns: host.ns.path,
    mountNs: host.mountNs,
    pluginDir: host.pluginDir,
    stateDir: first.opts.stateDir,
  });
  daemons.push(next);
  const m = next.logLines().find((l) => l.msg === 'state migrated');
  assert.deepEqual([m?.from, m?.to], [0, 2], JSON.stringify(m));
  assert.deepEqual(await picture(['st', 'dyn']), before, 'addresses, MACs, the host link and its addresses');
  await reachable(ips, hostIp);

  await docker('run', '-d', '--name', 'n3', '--net', 'up', IMAGE, 'sleep', '3600');
  const n3 = await addressOf('n3');
  assert.ok(![...ips, hostIp].includes(n3), `a new container gets an address of its own: ${n3}`);
  await docker('rm', '-f', 'st', 'dyn', 'n3');
  await docker('network', 'rm', 'up');
  const links = await ipJson<{ ifname: string }[]>(host.ns.name, 'link', 'show');
  assert.deepEqual(
    links.map((l) => l.ifname).filter((n) => n.startsWith('mn')),
    [],
    'no macnet link left',
  );
  await next.stop('SIGTERM');
  const s = SqliteStore.open(path.join(first.opts.stateDir, 'state.db'));
  try {
    assert.equal((await s.get('meta/schema'))?.value, '2');
    assert.deepEqual(
      (await s.list('')).map((e) => e.key),
      ['meta/schema'],
      'only the version is left',
    );
  } finally {
    await s.close();
  }
});
