// An engine upgrade under macnet: a host's dockerd 20.10 (Debian 12's) with macnet networks and running
// `--restart=always` containers is stopped, its binary swapped for the current engine (28.x, test/lab/engines.ts)
// over the same data root, and started again while the macnet daemon keeps running. The networks keep their ids
// and parents, the containers come back with their addresses and reach the LAN, and a new container starts.
//
// Both engines in one test, so this file runs once (it does not use engine-test's per-engine `test`).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Daemon } from '../lab/daemon';
import { type Engine, engine } from '../lab/engines';
import { LAN, Lab, type LabHost } from '../lab/lab';
import { createMacnetNetwork, dockerOk } from '../lab/networks';
import { ipJson } from '../lab/sh';

const IMAGE = 'busybox:local';
const MACNET = ['-d', 'macnet', '--ipam-driver', 'macnet'];
const from = engine('system');
const to = engine('current');
const label = typeof from === 'string' || typeof to === 'string' ? 'upgrade' : `upgrade ${from.label} → ${to.label}`;

let lab: Lab | undefined;
let host: LabHost;
let d: Daemon | undefined;

before(async () => {
  if (typeof from === 'string' || typeof to === 'string') return;
  lab = await Lab.create({ hosts: 1, docker: true, engine: from });
  host = lab.hosts[0]!;
  d = await Daemon.start({ netns: host.ns.path, mountNs: host.mountNs, pluginDir: host.pluginDir });
});

after(async () => {
  try {
    await lab?.destroy();
  } finally {
    await d?.remove();
  }
});

const docker = (...args: string[]): Promise<string> => dockerOk(host, ...args);

async function ping(ctr: string, to: string): Promise<void> {
  const r = await host.docker('exec', ctr, 'ping', '-c', '1', '-W', '2', to);
  assert.equal(r.code, 0, `ping ${to} from ${ctr}: ${r.stdout}${r.stderr}`);
}

/**
 * What must survive: network ids and subnets, each container's state and networks, and each network's set of
 * container addresses. A set: dockerd restarts --restart=always containers concurrently, so two dynamic
 * containers of one network may swap addresses (Docker's built-in IPAM does the same; test/docker/
 * restart-address.test.ts compares the drivers); a static --ip is checked per container below.
 */
async function state(): Promise<{ networks: string[]; containers: string[]; addresses: Record<string, string[]> }> {
  const ids = (await docker('network', 'ls', '-q', '--filter', 'driver=macnet')).split('\n').filter(Boolean);
  const networks = (
    await Promise.all(
      ids.map((id) =>
        docker(
          'network',
          'inspect',
          id,
          '--format',
          '{{.Name}} {{.Id}} {{json .IPAM.Config}} {{index .Options "parent"}}',
        ),
      ),
    )
  ).sort();
  const names = (await docker('ps', '-a', '--format', '{{.Names}}')).split('\n').filter(Boolean);
  const inspected = await Promise.all(
    names.map((n) =>
      docker(
        'inspect',
        n,
        '--format',
        '{{.Name}} {{.State.Status}}{{range $k, $v := .NetworkSettings.Networks}} {{$k}}={{$v.IPAddress}}{{end}}',
      ),
    ),
  );
  const addresses: Record<string, string[]> = {};
  for (const line of inspected) {
    for (const [, net, ip] of line.matchAll(/ ([\w-]+)=(\S+)/g)) (addresses[net!] ??= []).push(ip!);
  }
  for (const k of Object.keys(addresses)) addresses[k]!.sort();
  const containers = inspected.map((l) => l.replace(/=\S+/g, '')).sort();
  return { networks, containers, addresses };
}

async function stopDockerd(): Promise<void> {
  const child = host.dockerd!;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  await exited;
}

test(`${label}: macnet networks, addresses and --restart=always containers survive; a new container starts`, async (t) => {
  if (typeof from === 'string' || typeof to === 'string') {
    return t.skip(`two engines are needed: ${[from, to].filter((e) => typeof e === 'string').join('; ')}`);
  }
  assert.equal((await docker('version', '--format', '{{.Server.Version}}')).split('+')[0], from.version);
  await createMacnetNetwork(host, 'up-lan', { args: ['--ip-range', '198.18.15.64/28'] });
  await docker('network', 'create', ...MACNET, '--subnet', '198.18.164.0/24', 'up-int'); // no parent: dm-<id>
  const run = (name: string, ...args: string[]) =>
    docker('run', '-d', '--restart=always', '--stop-timeout', '1', '--name', name, ...args, IMAGE, 'sleep', '3600');
  await run('static', '--net', 'up-lan', '--ip', '198.18.15.70');
  await run('dynamic', '--net', 'up-lan');
  await run('inner', '--net', 'up-int');
  await docker('network', 'connect', 'up-int', 'dynamic');
  const before = await state();
  t.diagnostic(`before: ${JSON.stringify(before)}`);
  const parentsBefore = (await ipJson<{ ifname: string }[]>(host.ns.name, 'link', 'show'))
    .map((l) => l.ifname)
    .filter((n) => n.startsWith('dm-'));

  await stopDockerd();
  host.useEngine(to as Engine);
  await host.startDockerd();
  assert.equal(
    (await docker('version', '--format', '{{.Server.Version}}')).split('+')[0],
    (to as Engine).version,
    'the host now runs the current engine',
  );

  // dockerd restarts the containers in the background after it answers.
  let after = await state();
  for (let i = 0; i < 100 && after.containers.some((c) => !c.includes(' running')); i++) {
    await new Promise((r) => setTimeout(r, 100));
    after = await state();
  }
  t.diagnostic(`after: ${JSON.stringify(after)}`);
  assert.deepEqual(after, before, 'the same networks (ids, subnets, gateways, parents) and the same addresses');
  assert.deepEqual(
    (await ipJson<{ ifname: string }[]>(host.ns.name, 'link', 'show'))
      .map((l) => l.ifname)
      .filter((n) => n.startsWith('dm-')),
    parentsBefore,
    'the implicit parent is the same link',
  );
  await ping('static', LAN.router4);
  await ping('dynamic', LAN.router4);
  await ping('dynamic', '198.18.15.70');
  assert.equal(
    await docker('inspect', 'static', '--format', '{{(index .NetworkSettings.Networks "up-lan").IPAddress}}'),
    '198.18.15.70',
  );
  const inner = await docker(
    'inspect',
    'inner',
    '--format',
    '{{(index .NetworkSettings.Networks "up-int").IPAddress}}',
  );
  await ping('dynamic', inner);

  await docker('run', '-d', '--name', 'fresh', '--net', 'up-lan', IMAGE, 'sleep', '3600');
  await ping('fresh', LAN.router4);
  await ping('fresh', '198.18.15.70');
  const fresh = await docker(
    'inspect',
    'fresh',
    '--format',
    '{{(index .NetworkSettings.Networks "up-lan").IPAddress}}',
  );
  assert.match(fresh, /^198\.18\.15\.(6[4-9]|7[0-9])$/, 'from the ip-range');
  assert.ok(!before.addresses['up-lan']!.includes(fresh), `${fresh} is not another container's`);

  await docker('rm', '-f', 'static', 'dynamic', 'inner', 'fresh');
  await docker('network', 'rm', 'up-lan', 'up-int');
});
