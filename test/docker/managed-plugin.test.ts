// The managed plugin (issue 16) on a real dockerd: scripts/build-plugin.js builds it from this checkout and
// enables it in a lab host, as a user runs it. Then, in order: a network of the plugin serves containers end to
// end (container to container, to the LAN's router, host access both ways; a LAN device's address skipped);
// state survives `docker plugin disable`/`enable`, the one-daemon rule holds between the plugin and a service
// daemon in both directions (the refused one leaves nothing), state survives a dockerd restart and a
// `docker plugin upgrade` to a rebuilt plugin pushed to a real registry (docker-registry in a LAN namespace);
// removing the network and the plugin leaves no link of macnet in the host.
import { after, before } from 'node:test';
import { test } from '../lab/engine-test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Daemon } from '../lab/daemon';
import { Lab, LAN, type LabHost, dockerMissing } from '../lab/lab';
import type { TestNetns } from '../lab/netns';
import { buildPlugin, dockerdLog, dockerdLogSize, Registry, registryMissing, shareHostDir } from '../lab/plugin';
import { ipJson, sh } from '../lab/sh';

const PLUGIN = 'macnet-plugin';
const MACNET_BIN = path.join(__dirname, '..', '..', '..', 'bin', 'macnet');
/** The driver name: Docker 20.10 finds a managed plugin's driver only by its full name, tag included. */
const FULL = `${PLUGIN}:latest`;
const IMAGE = 'busybox:local';
const RANGE = '198.18.15.128/27';
/** A LAN device answers for the first address of the range: the plugin's IPAM must skip it. */
const DEVICE_IP = '198.18.15.128';
const REGISTRY_IP = '198.18.15.6';
/** Host access's default address: the top of the subnet (docs/driver.md). */
const HOST_ACCESS_IP = '198.18.15.254';

let lab: Lab | undefined;
let host: LabHost;
let registry: Registry | undefined;
let device: TestNetns;
const services: Daemon[] = [];
const execRoot = () => path.join(host.dir, 'exec');
/** The lab's dockerd has its own exec-root and API socket; the daemon logs at debug level (a daemon option). */
let LAB_MOUNTS: string[] = [];
const LAB_SETTINGS = () => [...LAB_MOUNTS.flatMap((m) => ['--set', m]), '--set', 'args=--log-level debug'];
const ARGS_JSON = '["--log-level","debug"]';
let pluginId = '';
/** The plugin's state: its propagated mount, <data-root>/plugins/<id>/propagated-mount (docs/plugin.md). */
const stateDb = () => path.join(host.dir, 'data', 'plugins', pluginId, 'propagated-mount', 'state.db');

before(async () => {
  assert.equal(dockerMissing(), undefined);
  assert.equal(registryMissing(), undefined);
  lab = await Lab.create({ hosts: 1, docker: true });
  host = lab.hosts[0]!;
  device = await lab.lanDevice('device', 'pdev');
  await sh('ip', '-n', device.name, 'addr', 'add', `${DEVICE_IP}/24`, 'dev', 'eth0');
  await sh('ip', '-n', device.name, 'link', 'set', 'eth0', 'up');
  const reg = await lab.lanDevice('registry', 'preg');
  await sh('ip', '-n', reg.name, 'addr', 'add', `${REGISTRY_IP}/24`, 'dev', 'eth0');
  await sh('ip', '-n', reg.name, 'link', 'set', 'eth0', 'up');
  registry = await Registry.start(lab, reg.path, REGISTRY_IP);
  // dockerd again, with the registry as an insecure one (plain HTTP) and the host's dir shared as on a systemd
  // host (test/lab/plugin.ts, shareHostDir).
  await stopDockerd();
  const conf = JSON.parse(fs.readFileSync(host.daemonJson, 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(host.daemonJson, JSON.stringify({ ...conf, 'insecure-registries': [registry.endpoint] }) + '\n');
  await shareHostDir(host);
  await host.startDockerd();
  LAB_MOUNTS = [`exec_root.source=${execRoot()}`, `docker_sock.source=${host.dockerSocket}`];
});

after(async () => {
  try {
    for (const d of services) await d.remove();
    if (lab && host?.dockerd?.exitCode === null) {
      // Containers first, while the plugin still answers their DeleteEndpoint; then every plugin.
      const ids = (await host.docker('ps', '-aq')).stdout.split('\n').filter(Boolean);
      if (ids.length) await host.docker('rm', '-f', ...ids);
      const plugins = (await host.docker('plugin', 'ls', '-q')).stdout.split('\n').filter(Boolean);
      for (const p of plugins) await host.docker('plugin', 'rm', '-f', p);
    }
    await registry?.stop();
    await lab?.destroy();
  } finally {
    await Lab.destroyAll();
  }
});

async function docker(...args: string[]): Promise<string> {
  const r = await host.docker(...args);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

async function stopDockerd(): Promise<void> {
  const child = host.dockerd!;
  const done = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  await done;
}

async function ping(ctr: string, to: string): Promise<void> {
  const r = await host.docker('exec', ctr, 'ping', '-c', '1', '-W', '2', to);
  assert.equal(r.code, 0, `ping ${to} from ${ctr}: ${r.stdout}${r.stderr}`);
}

async function hostPing(to: string): Promise<void> {
  const r = await host.exec('ping', '-c', '1', '-W', '2', to);
  assert.equal(r.code, 0, `ping ${to} from the host: ${r.stdout}${r.stderr}`);
}

const addressOf = async (c: string) =>
  docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', c);

async function pluginState(): Promise<{ enabled: string; reference: string }> {
  const [enabled, reference] = (
    await docker('plugin', 'inspect', '-f', '{{.Enabled}} {{.PluginReference}}', PLUGIN)
  ).split(' ');
  return { enabled: enabled!, reference: reference ?? '' };
}

/** Names of links macnet made in the host (host access mnh…, probe mnp…, endpoints mn…). */
async function macnetLinks(): Promise<string[]> {
  const links = await ipJson<{ ifname: string }[]>(host.ns.name, 'link', 'show');
  return links.map((l) => l.ifname).filter((n) => n.startsWith('mn'));
}

/** All four reachability checks of a running pair a, b. */
async function reachable(a: string, b: string): Promise<void> {
  await ping(a, await addressOf(b));
  await ping(b, await addressOf(a));
  await ping(a, LAN.router4);
  await hostPing(await addressOf(a));
  await ping(b, HOST_ACCESS_IP);
}

test('the build script builds, creates and enables the plugin; its network serves containers end to end (reachability, host access, probing)', async (t) => {
  // A wrong command line is refused before anything is built (exit 2), naming the option and what is valid.
  const bad = await buildPlugin(host, '--name', 'Macnet Plugin');
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /^build-plugin: --name "Macnet Plugin" is not valid: give a plugin name such as /);
  const badSet = await buildPlugin(host, '--set', 'args');
  assert.equal(badSet.code, 2, badSet.stderr);
  assert.match(badSet.stderr, /--set "args" is not valid: give KEY=VALUE/);
  assert.equal(await docker('plugin', 'ls', '-q'), '', 'nothing created');
  // The lab's dockerd has its own exec-root (no netns/ in it before the first container) and API socket.
  const r = await buildPlugin(host, '--name', PLUGIN, ...LAB_SETTINGS());
  t.diagnostic(`build-plugin: ${r.stderr.trim()}`);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), FULL, 'the driver name, with the tag Docker added');
  const state = await pluginState();
  assert.equal(state.enabled, 'true');
  assert.match(state.reference, new RegExp(`(^|/)${FULL}$`));
  const config = JSON.parse(await docker('plugin', 'inspect', '-f', '{{json .Config}}', PLUGIN)) as {
    Interface: { Types: string[]; Socket: string };
    Linux: { Capabilities: string[] };
    Network: { Type: string };
  };
  assert.deepEqual(config.Interface.Types.sort(), ['docker.ipamdriver/1.0', 'docker.networkdriver/1.0']);
  assert.deepEqual(config.Linux.Capabilities, ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN', 'CAP_NET_RAW']);
  assert.equal(config.Network.Type, 'host');
  pluginId = await docker('plugin', 'inspect', '-f', '{{.Id}}', PLUGIN);
  const mounts = await docker('plugin', 'inspect', '-f', '{{range .Settings.Mounts}}{{.Source}} {{end}}', PLUGIN);
  assert.equal(mounts.trim(), `${execRoot()} /proc/sys/net ${host.dockerSocket}`);
  assert.equal(await docker('plugin', 'inspect', '-f', '{{json .Settings.Args}}', PLUGIN), ARGS_JSON);

  await docker(
    'network',
    'create',
    '-d',
    FULL,
    '--ipam-driver',
    FULL,
    '--subnet',
    LAN.subnet4,
    '--gateway',
    LAN.router4,
    '--ip-range',
    RANGE,
    '-o',
    'parent=eth0',
    '-o',
    'host_access=true',
    'lan',
  );
  const driver = await docker('network', 'inspect', '-f', '{{.Driver}} {{.IPAM.Driver}}', 'lan');
  t.diagnostic(`network lan: driver, IPAM driver: ${driver}`);
  await docker('run', '-d', '--restart=always', '--name', 'ca', '--net', 'lan', IMAGE, 'sleep', '3600');
  await docker(
    'run',
    '-d',
    '--restart=always',
    '--name',
    'cb',
    '--net',
    'lan',
    '--ip',
    '198.18.15.140',
    IMAGE,
    'sleep',
    '3600',
  );
  const a = await addressOf('ca');
  t.diagnostic(`ca: ${a}`);
  assert.match(a, /^198\.18\.15\.(129|1[3-5]\d)$/, 'from the range');
  assert.notEqual(a, DEVICE_IP, 'the address the LAN device answers for was skipped');
  assert.equal(await addressOf('cb'), '198.18.15.140');
  await reachable('ca', 'cb');
  assert.ok(fs.existsSync(stateDb()), `the state is on the plugin's own mount: ${stateDb()}`);
  // The host's CLI reaches the plugin's daemon at its socket, in the plugin's runtime dir.
  const scan = await host.exec(
    process.execPath,
    MACNET_BIN,
    'scan',
    'lan',
    '--plugin-dir',
    `/run/docker/plugins/${pluginId}`,
    '--docker-host',
    `unix://${host.dockerSocket}`,
  );
  t.diagnostic(`macnet scan lan:\n${scan.stdout}`);
  assert.equal(scan.code, 0, scan.stderr);
  assert.match(scan.stdout, new RegExp(`^${DEVICE_IP.replace(/\./g, '\\.')} +\\S+ +unknown`, 'm'));
  assert.match(scan.stdout, new RegExp(`^${a.replace(/\./g, '\\.')} +\\S+ +container \\(this host\\)`, 'm'));
  assert.match(
    dockerdLog(host),
    /\\"level\\":\\"debug\\".*plugin=[0-9a-f]{64}/,
    'the daemon logs at debug level (args)',
  );
});

test('state survives docker plugin disable and enable: running containers stay reachable, a new one gets a free address', async () => {
  const before = [await addressOf('ca'), await addressOf('cb')];
  // The network holds the plugin: a plain disable is refused; -f stops it, and its containers keep running (their
  // links live in their namespaces).
  const plain = await host.docker('plugin', 'disable', PLUGIN);
  assert.notEqual(plain.code, 0, 'docker plugin disable without -f while a network uses the plugin');
  assert.match(plain.stderr, /in use/);
  await docker('plugin', 'disable', '-f', PLUGIN);
  assert.equal((await pluginState()).enabled, 'false');
  await docker('plugin', 'enable', PLUGIN);
  assert.deepEqual([await addressOf('ca'), await addressOf('cb')], before);
  await reachable('ca', 'cb');
  await docker('run', '-d', '--name', 'cc', '--net', 'lan', IMAGE, 'sleep', '3600');
  const c = await addressOf('cc');
  assert.ok(![...before, DEVICE_IP].includes(c), `c got ${c}, an address in use`);
  await ping('cc', before[0]!);
  await docker('rm', '-f', 'cc');
});

test('one daemon per host across forms: a service daemon beside the enabled plugin is refused, clearly, and leaves nothing', async () => {
  const linksBefore = await macnetLinks();
  const stateDir = path.join(lab!.dir, 'service-state');
  const pluginDir = path.join(lab!.dir, 'service-plugins');
  const e = await Daemon.start({
    netns: host.ns.path,
    mountNs: host.mountNs,
    stateDir,
    pluginDir,
  }).then(
    (d) => void services.push(d),
    (err: Error) => err,
  );
  assert.ok(e, 'the service daemon started beside the plugin');
  assert.match(e.message, /exited with 1 before ready/);
  assert.match(
    e.message,
    /DAEMON_ALREADY_RUNNING: macnet's Docker managed plugin runs in this network namespace \(pid \d+, its state on the plugin's own mount; docker plugin ls shows it\).*disable the plugin first \(docker plugin disable NAME\)/,
  );
  assert.equal(fs.existsSync(stateDir), false, 'no state dir made');
  assert.equal(fs.existsSync(pluginDir), false, 'no plugin dir made');
  assert.deepEqual(await macnetLinks(), linksBefore, 'no link made or removed');
  await reachable('ca', 'cb');
});

test('one daemon per host across forms: with a service daemon running, the build script and docker plugin enable are refused, clearly, and leave nothing', async () => {
  await docker('plugin', 'disable', '-f', PLUGIN);
  const service = await Daemon.start({ netns: host.ns.path, mountNs: host.mountNs });
  services.push(service);
  const plugins = await docker('plugin', 'ls', '--format', '{{.Name}} {{.Enabled}}');

  const r = await buildPlugin(host, '--name', 'another-macnet');
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(
      `DAEMON_ALREADY_RUNNING: a macnet service daemon \\(pid ${service.pid}, state dir ${service.opts.stateDir}\\) ` +
        'runs in this network namespace: .*systemctl disable --now macnet.socket macnet.service.*nothing was created',
    ),
  );
  assert.equal(await docker('plugin', 'ls', '--format', '{{.Name}} {{.Enabled}}'), plugins, 'no plugin created');

  // By hand: dockerd starts the plugin, which refuses and exits; dockerd gives up and leaves it disabled.
  const from = dockerdLogSize(host);
  const en = await host.docker('plugin', 'enable', PLUGIN);
  assert.notEqual(en.code, 0, 'docker plugin enable succeeded beside a service daemon');
  assert.equal((await pluginState()).enabled, 'false');
  assert.match(
    dockerdLog(host, from),
    new RegExp(
      `DAEMON_ALREADY_RUNNING: another macnet daemon runs in this network namespace \\(pid ${service.pid}, state dir ` +
        `${service.opts.stateDir}\\).*stop the service first \\(systemctl disable --now macnet.socket macnet.service\\)`,
    ),
    "the plugin's refusal, in dockerd's log",
  );
  // The service never noticed: it still answers.
  assert.deepEqual((await service.call('Plugin.Activate')).body, { Implements: ['NetworkDriver', 'IpamDriver'] });
  await service.remove();

  // Nothing of the refused plugin is left: enabling it works at once (Docker 20.10 failed here with "id already
  // in use" while the refused plugin exited by itself; src/cli/daemon.ts, holdIfManagedPlugin).
  await docker('plugin', 'enable', PLUGIN);
  await reachable('ca', 'cb');
});

test('state survives a dockerd restart: the plugin comes back enabled, --restart=always containers with it', async (t) => {
  const before = [await addressOf('ca'), await addressOf('cb')];
  await stopDockerd();
  await host.startDockerd();
  let states = '';
  for (let i = 0; i < 300; i++) {
    states = await docker('ps', '-a', '--format', '{{.Names}} {{.State}}');
    if (/^ca running$/m.test(states) && /^cb running$/m.test(states)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.diagnostic(`after the restart: ${states.replace(/\n/g, ', ')}`);
  assert.equal((await pluginState()).enabled, 'true');
  assert.match(states, /^ca running$/m);
  assert.match(states, /^cb running$/m);
  assert.equal(await addressOf('cb'), before[1], 'the static address');
  await reachable('ca', 'cb');
  await docker('run', '-d', '--name', 'cc', '--net', 'lan', IMAGE, 'sleep', '3600');
  const c = await addressOf('cc');
  assert.ok(![await addressOf('ca'), await addressOf('cb'), DEVICE_IP].includes(c), `c got ${c}, an address in use`);
  await docker('rm', '-f', 'cc');
});

test('state survives docker plugin upgrade to a rebuilt plugin pulled from a registry', async (t) => {
  const next = `${registry!.endpoint}/${PLUGIN}:next`;
  const built = await buildPlugin(host, '--name', next, '--no-enable', ...LAB_SETTINGS());
  assert.equal(built.code, 0, built.stderr);
  await docker('plugin', 'push', next);
  await docker('plugin', 'rm', next);
  const before = [await addressOf('ca'), await addressOf('cb')];

  await docker('plugin', 'disable', '-f', PLUGIN);
  const up = await docker('plugin', 'upgrade', '--grant-all-permissions', '--skip-remote-check', PLUGIN, next);
  t.diagnostic(`upgrade: ${up.replace(/\n/g, ' | ')}`);
  // The daemon's options (args) are kept; a mount's source is part of the config that the upgrade replaces, so
  // the lab's paths are set again (docs/plugin.md, "Upgrade").
  assert.equal(await docker('plugin', 'inspect', '-f', '{{json .Settings.Args}}', PLUGIN), ARGS_JSON);
  await docker('plugin', 'set', PLUGIN, ...LAB_MOUNTS);
  await docker('plugin', 'enable', PLUGIN);
  assert.deepEqual(await pluginState(), { enabled: 'true', reference: next });
  assert.ok(fs.existsSync(stateDb()), `the state is still on the plugin's own mount: ${stateDb()}`);

  assert.deepEqual([await addressOf('ca'), await addressOf('cb')], before);
  await reachable('ca', 'cb');
  await docker('run', '-d', '--name', 'cc', '--net', 'lan', IMAGE, 'sleep', '3600');
  const c = await addressOf('cc');
  assert.ok(![...before, DEVICE_IP].includes(c), `c got ${c}, an address in use`);
  await ping('cc', before[1]!);
  await docker('rm', '-f', 'cc');
});

test("a bad daemon option in the args setting: enable fails, the refusal names the option in dockerd's log; fixed, the plugin enables", async () => {
  await docker('plugin', 'disable', '-f', PLUGIN);
  await docker('plugin', 'set', PLUGIN, 'args=--log-level debug --probe-window 5');
  const from = dockerdLogSize(host);
  const en = await host.docker('plugin', 'enable', PLUGIN);
  assert.notEqual(en.code, 0, 'enabled with --probe-window 5');
  assert.equal((await pluginState()).enabled, 'false');
  assert.match(
    dockerdLog(host, from),
    /OPTION_INVALID: --probe-window \\?"5\\?" is not valid: give milliseconds from 10 to 10000.*plugin=[0-9a-f]{64}/,
  );
  await docker('plugin', 'set', PLUGIN, 'args=--log-level debug');
  await docker('plugin', 'enable', PLUGIN);
  await reachable('ca', 'cb');
});

test('removal: the network, then the plugin; no link of macnet stays in the host', async () => {
  await docker('rm', '-f', 'ca', 'cb');
  await docker('network', 'rm', 'lan');
  assert.deepEqual(await macnetLinks(), [], 'the network removed its links (host access, probe)');
  await docker('plugin', 'disable', PLUGIN);
  await docker('plugin', 'rm', PLUGIN);
  assert.equal(await docker('plugin', 'ls', '-q'), '');
  assert.equal(
    fs.readdirSync(path.join(host.dir, 'data', 'plugins')).filter((d) => /^[0-9a-f]{64}$/.test(d)).length,
    0,
  );
});
