// Socket activation with a real dockerd (issue 15): systemd-socket-activate holds the lab host's
// /run/docker/plugins/macnet.sock as macnet.socket does, and starts `macnet daemon` at the first connection.
// (a) With the daemon not running, `docker network create -d macnet` and `docker run` succeed: the first call
// starts it. (b) The boot case: dockerd starts with macnet networks and --restart=always containers while the
// daemon is not running and starts late; the containers come back, static addresses unchanged.
import { after, before } from 'node:test';
import { test } from '../lab/engine-test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { LAN, Lab, type LabHost, dockerMissing } from '../lab/lab';
import { SocketActivated, activatorMissing, tempStateDir } from '../lab/socket-activate';

const IMAGE = 'busybox:local';
const MACNET = ['-d', 'macnet', '--ipam-driver', 'macnet'];

let lab: Lab | undefined;
let host: LabHost;
let stateDir: string | undefined;
let act: SocketActivated | undefined;

before(async () => {
  assert.equal(dockerMissing(), undefined);
  assert.equal(activatorMissing(), undefined);
  lab = await Lab.create({ hosts: 1, docker: true });
  host = lab.hosts[0]!;
  stateDir = tempStateDir('activation');
});

after(async () => {
  try {
    // dockerd's teardown removes containers through the plugin: let a call start a daemon again if none runs.
    if (lab && (!act || act.exited)) act = await SocketActivated.start(host, { stateDir: stateDir! });
    await lab?.destroy();
  } finally {
    await act?.stop('SIGKILL');
    await Lab.destroyAll();
    if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
  }
});

async function docker(...args: string[]): Promise<string> {
  const r = await host.docker(...args);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

async function ping(ctr: string, to: string): Promise<void> {
  const r = await host.docker('exec', ctr, 'ping', '-c', '1', '-W', '2', to);
  assert.equal(r.code, 0, `ping ${to} from ${ctr}: ${r.stdout}${r.stderr}`);
}

/** Each container's state and its address on each network. */
async function containers(): Promise<string[]> {
  const names = (await docker('ps', '-a', '--format', '{{.Names}}')).split('\n').filter(Boolean);
  return (
    await Promise.all(
      names.map((n) =>
        docker(
          'inspect',
          n,
          '--format',
          '{{.Name}} {{.State.Status}}{{range $k, $v := .NetworkSettings.Networks}} {{$k}}={{$v.IPAddress}}{{end}}',
        ),
      ),
    )
  ).sort();
}

async function stopDockerd(): Promise<void> {
  const child = host.dockerd!;
  const done = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  await done;
}

test('socket activation: with the daemon not running, docker network create and docker run succeed; the first call starts it; the socket is never unlinked', async (t) => {
  act = await SocketActivated.start(host, { stateDir: stateDir! });
  const sock = fs.lstatSync(act.socket);
  assert.ok(sock.isSocket(), "the activator made the socket in the host's plugin dir");
  assert.equal(act.activated(), false, 'no daemon before the first call');

  await docker(
    'network',
    'create',
    ...MACNET,
    '--subnet',
    LAN.subnet4,
    '--gateway',
    LAN.router4,
    '--ip-range',
    '198.18.15.128/27',
    '-o',
    'parent=eth0',
    'act1',
  );
  const ready = await act.waitReady();
  t.diagnostic(`ready: ${JSON.stringify(ready)}`);
  assert.equal(ready.activation, 'systemd');
  assert.equal(ready.socket, '/run/docker/plugins/macnet.sock', 'the passed socket, found by its inode');
  assert.equal(ready.pid, act.pid, "the activator's process became the daemon (LISTEN_PID)");
  await docker('run', '-d', '--name', 'a1', '--net', 'act1', IMAGE, 'sleep', '600');
  await ping('a1', LAN.router4);
  await docker('rm', '-f', 'a1');
  await docker('network', 'rm', 'act1');

  assert.equal(await act.stop('SIGTERM'), 0, 'graceful exit');
  const after = fs.lstatSync(act.socket);
  assert.deepEqual([after.dev, after.ino], [sock.dev, sock.ino], 'the passed socket is still there, the same file');
  assert.ok(act.logLines().some((l) => l.msg === 'stopped'));
});

test('the boot case: dockerd restores macnet networks and --restart=always containers while macnet starts late; static addresses come back', async (t) => {
  act = await SocketActivated.start(host, { stateDir: stateDir! });
  await docker(
    'network',
    'create',
    ...MACNET,
    '--subnet',
    LAN.subnet4,
    '--gateway',
    LAN.router4,
    '--ip-range',
    '198.18.15.192/27',
    '-o',
    'parent=eth0',
    'boot1',
  );
  await docker('network', 'create', ...MACNET, '--subnet', '198.18.165.0/24', 'boot2'); // no parent: dm-<id>
  const run = (name: string, ...args: string[]) =>
    docker('run', '-d', '--restart=always', '--stop-timeout', '1', '--name', name, ...args, IMAGE, 'sleep', '3600');
  await run('static', '--net', 'boot1', '--ip', '198.18.15.200');
  await run('dynamic', '--net', 'boot1');
  await docker('network', 'connect', 'boot2', 'dynamic');
  const before = await containers();
  t.diagnostic(`before: ${JSON.stringify(before)}`);

  // Shutdown in systemd's order: docker.service first (it calls the plugin as it stops containers), then macnet.
  await stopDockerd();
  assert.equal(await act.stop('SIGTERM'), 0);
  assert.ok(fs.lstatSync(act.socket).isSocket(), 'the socket file stays');

  // Boot: the socket is there (sockets.target), the daemon is not; it takes 3 s to start once asked.
  act = await SocketActivated.start(host, { stateDir: stateDir!, delayMs: 3000 });
  const t0 = Date.now();
  await host.startDockerd();
  t.diagnostic(`dockerd answered after ${Date.now() - t0} ms; daemon ${act.ready() ? 'ready' : 'not ready yet'}`);
  let after = await containers();
  for (let i = 0; i < 300 && (after.length !== before.length || after.some((c) => !c.includes(' running'))); i++) {
    await new Promise((r) => setTimeout(r, 100));
    after = await containers();
  }
  t.diagnostic(`after: ${JSON.stringify(after)}`);
  const ready = act.ready();
  assert.ok(ready, 'the daemon was started by a call');
  assert.equal(ready.activation, 'systemd');
  assert.ok(Date.parse(String(ready.time)) - t0 >= 2500, 'the daemon became ready only after dockerd had started');
  // Static addresses come back as they were. A dynamic one is asked for afresh: dockerd (20.10 to 28) sends
  // neither the old address nor the container's name when it restarts a container, so next-fit picks the next
  // free address of the range (README, "Upgrade and reboots": give --ip to addresses that must survive).
  const byName = (list: string[], n: string) => list.find((c) => c.startsWith(`/${n} `));
  assert.equal(byName(after, 'static'), byName(before, 'static'), 'the static container, running, with its address');
  assert.match(
    byName(after, 'dynamic') ?? '',
    /^\/dynamic running boot1=198\.18\.15\.(19[2-9]|2[0-2]\d) boot2=198\.18\.165\.\d+$/,
    'the dynamic container, running, with addresses from its networks',
  );
  assert.doesNotMatch(byName(after, 'dynamic')!, /=198\.18\.15\.200\b/, "not the static container's");
  await ping('static', LAN.router4);
  await ping('dynamic', '198.18.15.200');
  await ping('dynamic', LAN.router4);

  await docker('rm', '-f', 'static', 'dynamic');
  await docker('network', 'rm', 'boot1', 'boot2');
  assert.equal(await act.stop('SIGTERM'), 0);
});
