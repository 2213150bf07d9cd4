// `macnet uninstall` in a throwaway namespace with a real daemon: refused while the daemon runs and while its
// state has networks (naming them), nothing removed; with no state, every link macnet made goes (probe,
// host-access and endpoint links a killed daemon left) and nothing else; after the networks are removed through
// the plugin protocol, --purge removes the state dir; it names what it leaves (units, package).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Daemon } from '../lab/daemon';
import { TestNetns } from '../lab/netns';
import { run, sh } from '../lab/sh';

const bin = path.join(__dirname, '..', '..', '..', 'bin', 'macnet');
const NID = 'c4'.repeat(32);
const EID = 'd5'.repeat(32);
let ns: TestNetns;
let d: Daemon | undefined;
let dir: string;

before(async () => {
  dir = fs.mkdtempSync(path.join('/tmp', `mnt-${process.pid}-uninstall-`));
  ns = await TestNetns.create('uninstall');
  await sh('ip', '-n', ns.name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'lan0');
  for (const l of ['eth0', 'lan0']) await sh('ip', '-n', ns.name, 'link', 'set', l, 'up');
  // Named like macnet's links but not of their kind: an operator's, to be left alone.
  await sh('ip', '-n', ns.name, 'link', 'add', 'mnp0123456789', 'type', 'veth', 'peer', 'name', 'mnh0123456789');
});
after(async () => {
  await d?.remove();
  await ns?.delete();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const links = async () =>
  (JSON.parse(await sh('ip', '-n', ns.name, '-json', 'link', 'show')) as { ifname: string }[])
    .map((l) => l.ifname)
    .sort();

const uninstall = (...args: string[]) =>
  run('nsenter', [`--net=${ns.path}`, process.execPath, bin, 'uninstall', '--units-dir', dir, ...args]);

async function call(method: string, body: unknown): Promise<Record<string, unknown>> {
  const r = await d!.call(method, body);
  assert.equal(r.body.Err ?? r.body.Error, undefined, `${method}: ${JSON.stringify(r.body)}`);
  return r.body;
}

test('uninstall: refused while the daemon runs and while networks exist; removes only macnet links; --purge', async () => {
  d = await Daemon.start({ netns: ns.path });
  const state = d.opts.stateDir;
  const pool = (await call('IpamDriver.RequestPool', {
    AddressSpace: 'LocalDefault',
    Pool: '198.18.22.0/24',
    Options: {},
    V6: false,
  })) as { PoolID: string };
  const gw = { RequestAddressType: 'com.docker.network.gateway' };
  await call('IpamDriver.RequestAddress', { PoolID: pool.PoolID, Address: '198.18.22.1', Options: gw });
  await call('NetworkDriver.CreateNetwork', {
    NetworkID: NID,
    Options: { 'com.docker.network.generic': { parent: 'eth0', host_access: 'true' } },
    IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '198.18.22.0/24', Gateway: '198.18.22.1/24' }],
    IPv6Data: [],
  });
  const a = (await call('IpamDriver.RequestAddress', { PoolID: pool.PoolID, Address: '', Options: {} })) as {
    Address: string;
  };
  await call('NetworkDriver.CreateEndpoint', {
    NetworkID: NID,
    EndpointID: EID,
    Interface: { Address: a.Address, AddressIPv6: '', MacAddress: '' },
    Options: {},
  });
  // Join makes the endpoint's link; dockerd would move it into the container's namespace next.
  const sandbox = await TestNetns.create('uninstall-c');
  try {
    await call('NetworkDriver.Join', { NetworkID: NID, EndpointID: EID, SandboxKey: sandbox.path, Options: {} });
  } finally {
    await sandbox.delete();
  }
  const made = (await links()).filter((l) => /^mn(p|h)?[0-9a-f]{10,11}$/.test(l) && !l.endsWith('0123456789'));
  assert.equal(made.length, 3, `a probe, a host-access and an endpoint link: ${made.join(', ')}`);
  const all = await links();

  const running = await uninstall('--state-dir', state);
  assert.equal(running.code, 1, running.stderr);
  assert.match(running.stderr, /^macnet: DAEMON_ALREADY_RUNNING: another macnet daemon runs in this network namespace/);
  assert.deepEqual(await links(), all, 'nothing removed');

  await d.stop('SIGKILL'); // a killed daemon leaves its links
  const remain = await uninstall('--state-dir', state, '--purge');
  assert.equal(remain.code, 1, remain.stderr);
  assert.equal(
    remain.stderr,
    `macnet: NETWORKS_REMAIN: 1 macnet network remains in ${state}: ${NID.slice(0, 12)} (parent eth0, ` +
      '198.18.22.0/24); nothing was removed: remove them first with the daemon running (docker network ls ' +
      '--filter driver=macnet; docker network rm), then stop the daemon and run macnet uninstall again\n',
  );
  assert.deepEqual(await links(), all, 'nothing removed');
  assert.ok(fs.existsSync(path.join(state, 'state.db')), 'the state stays');

  // Records lost (a state dir removed by hand): every macnet link goes, the look-alike veths stay.
  const none = path.join(dir, 'no-state');
  const lost = await uninstall('--state-dir', none);
  assert.equal(lost.code, 0, lost.stderr);
  for (const l of made)
    assert.match(
      lost.stdout,
      new RegExp(`^removed (probe|host-access|endpoint) link ${l} \\(macvlan on eth0\\)$`, 'm'),
    );
  assert.match(lost.stdout, new RegExp(`^no state dir at ${none}$`, 'm'));
  assert.match(lost.stdout, /^left in place: no systemd units of macnet in /m);
  assert.match(lost.stdout, /^left in place: the macnet package; to remove it: npm uninstall -g macnet$/m);
  assert.deepEqual(await links(), ['eth0', 'lan0', 'lo', 'mnh0123456789', 'mnp0123456789']);
  assert.equal(fs.existsSync(none), false, 'no state dir is created');

  // The proper way: networks removed with the daemon running, the daemon stopped, then uninstall --purge.
  await d.restart();
  await call('NetworkDriver.DeleteEndpoint', { NetworkID: NID, EndpointID: EID });
  await call('NetworkDriver.DeleteNetwork', { NetworkID: NID });
  for (const ip of [a.Address.split('/')[0], '198.18.22.1'])
    await call('IpamDriver.ReleaseAddress', { PoolID: pool.PoolID, Address: ip });
  await call('IpamDriver.ReleasePool', { PoolID: pool.PoolID });
  assert.equal(await d.stop('SIGTERM'), 0);
  for (const u of ['macnet.socket', 'macnet.service']) fs.writeFileSync(path.join(dir, u), '# installed\n');
  const purge = await uninstall('--state-dir', state, '--purge');
  assert.equal(purge.code, 0, purge.stderr);
  assert.equal(
    purge.stdout,
    'no links of macnet in this network namespace\n' +
      `removed the state dir ${state}\n` +
      `left in place: the systemd units ${dir}/macnet.socket and ${dir}/macnet.service; to remove them: ` +
      `systemctl disable --now macnet.socket macnet.service; rm ${dir}/macnet.socket ${dir}/macnet.service; ` +
      'systemctl daemon-reload\n' +
      'left in place: the macnet package; to remove it: npm uninstall -g macnet\n',
  );
  assert.equal(fs.existsSync(state), false);
  assert.deepEqual(await links(), ['eth0', 'lan0', 'lo', 'mnh0123456789', 'mnp0123456789']);
});
