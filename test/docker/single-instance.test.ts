// One daemon per network namespace (whatever the mount namespace) and per state dir; a socket is removed
// only by the daemon that created it. Two lab hosts: two network namespaces on one LAN.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Daemon } from '../lab/daemon';
import { Lab } from '../lab/lab';
import { ipJson } from '../lab/sh';

let lab: Lab;
const daemons: Daemon[] = [];
const dirs: string[] = [];
before(async () => {
  lab = await Lab.create({ hosts: 2 });
});
after(async () => {
  for (const d of daemons) await d.remove();
  await lab?.destroy();
  for (const x of dirs) fs.rmSync(x, { recursive: true, force: true });
});

const dir = (label: string) => {
  const x = fs.mkdtempSync(path.join(os.tmpdir(), `mnt-${process.pid}-${label}-`));
  dirs.push(x);
  return x;
};

async function start(netns: string, pluginDir: string, stateDir: string): Promise<Daemon> {
  const d = await Daemon.start({ netns, pluginDir, stateDir });
  daemons.push(d);
  return d;
}

/** Starting must fail; resolves with the daemon's error output. */
async function refused(netns: string, pluginDir: string, stateDir: string): Promise<string> {
  try {
    const d = await start(netns, pluginDir, stateDir);
    assert.fail(`a second daemon started (pid ${d.pid})`);
  } catch (e) {
    return (e as Error).message;
  }
}

test('a second daemon in the same network namespace or on the same state dir is refused, naming the running pid', async () => {
  const [h1, h2] = lab.hosts as [(typeof lab.hosts)[0], (typeof lab.hosts)[0]];
  const p1 = dir('p1');
  const s1 = dir('s1');
  const a = await start(h1!.ns.path, p1, s1);
  // Give it a probe link, which a second daemon's start-up clean-up would delete.
  const pool = (
    await a.call('IpamDriver.RequestPool', {
      AddressSpace: 'LocalDefault',
      Pool: '198.18.15.0/24',
      SubPool: '198.18.15.128/25',
      Options: {},
      V6: false,
    })
  ).body.PoolID;
  await a.call('IpamDriver.RequestAddress', {
    PoolID: pool,
    Address: '198.18.15.1',
    Options: { RequestAddressType: 'com.docker.network.gateway' },
  });
  await a.call('NetworkDriver.CreateNetwork', {
    NetworkID: '7a'.repeat(32),
    Options: { 'com.docker.network.generic': { parent: 'eth0' } },
    IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '198.18.15.0/24', Gateway: '198.18.15.1/24' }],
    IPv6Data: [],
  });
  assert.match(
    String((await a.call('IpamDriver.RequestAddress', { PoolID: pool, Address: '', Options: {} })).body.Address),
    /^198\.18\.15\./,
  );
  const links = async () =>
    (await ipJson<{ ifname: string }[]>(h1!.ns.name, 'link', 'show')).map((l) => l.ifname).sort();
  const before = await links();
  assert.ok(
    before.some((l) => l.startsWith('mnp')),
    before.join(' '),
  );

  const sameNetns = await refused(h1!.ns.path, dir('p2'), dir('s2'));
  assert.match(sameNetns, new RegExp(`DAEMON_ALREADY_RUNNING: .*network namespace.*pid ${a.pid}`));
  assert.deepEqual(await links(), before, "the running daemon's links are untouched");
  const sameState = await refused(h2!.ns.path, dir('p3'), s1);
  assert.match(sameState, new RegExp(`DAEMON_ALREADY_RUNNING: .*state dir ${s1}.*pid ${a.pid}`));
  const sameSocket = await refused(h2!.ns.path, p1, dir('s4'));
  assert.match(sameSocket, new RegExp(`DAEMON_ALREADY_RUNNING: .*${path.join(p1, 'macnet.sock')}`));
  assert.deepEqual(
    (await a.call('Plugin.Activate')).body,
    { Implements: ['NetworkDriver', 'IpamDriver'] },
    'the first still answers',
  );
});

test("a daemon removes only its own socket: a successor's survives the first one's stop; a dead one's is replaced", async () => {
  const [h1, h2] = lab.hosts as [(typeof lab.hosts)[0], (typeof lab.hosts)[0]];
  for (const d of daemons.splice(0)) await d.remove();
  const p = dir('p5');
  const a = await start(h1!.ns.path, p, dir('s5'));
  fs.unlinkSync(a.socket); // someone removed it; a second daemon takes the path
  const b = await start(h2!.ns.path, p, dir('s6'));
  assert.equal(await a.stop('SIGTERM'), 0);
  assert.ok(fs.existsSync(b.socket), "the first daemon left the second one's socket alone");
  assert.deepEqual((await b.call('Plugin.Activate')).body, { Implements: ['NetworkDriver', 'IpamDriver'] });
  assert.equal(await b.stop('SIGKILL'), 'SIGKILL');
  assert.ok(fs.existsSync(b.socket), 'a killed daemon leaves its socket');
  await b.restart(); // a dead daemon's socket is replaced
  assert.deepEqual((await b.call('Plugin.Activate')).body, { Implements: ['NetworkDriver', 'IpamDriver'] });
});
