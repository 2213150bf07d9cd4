// Cluster mode, first slice (issue 19): three lab hosts, each with its own dockerd and macnet daemon, on one etcd
// of three members that run on the hosts' LAN addresses (198.18.15.11-13, one member in each host's namespace).
// The same network (name, subnet, parent) is created on every host; containers started at once on all three get
// distinct addresses from the one pool, each answered by exactly one machine. etcd without quorum: a new container
// fails within the store's bound naming the endpoints, running ones keep working, and service resumes by itself.
// Then the same with TLS (certificates made here) and a user with a password.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from '../lab/engine-test';
import { arpSweep } from '../lab/arp';
import { startBurst } from '../lab/burst';
import { Daemon } from '../lab/daemon';
import { EtcdCluster, MACNET_USER, ROOT_PASSWORD } from '../lab/etcd';
import { LAN, Lab, type LabHost } from '../lab/lab';
import { createMacnetNetwork, dockerOk as ok } from '../lab/networks';
import { ipJson } from '../lab/sh';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../src/store/etcd';
import { ETCD_PASSWORD_ENV } from '../../src/cli/store-open';

/** Containers per host in the burst: 3 × 20 keeps the file well under two minutes per engine here (about 40 s). */
const PER_HOST = 20;
/** docker runs in flight per host (as test/docker/lan-scale.test.ts). */
const CONCURRENCY = 8;
const NET = 'lan';
/** --lost-host-grace here: seconds, not the default's minutes, so that a reclaim fits in the test. */
const GRACE_S = 5;
/**
 * A docker run that needs the store fails within a reservation's budget (twice the store's request deadline: the
 * write, then etcd asked whether it was applied, src/store/etcd-verify.ts) plus what dockerd and the plugin take
 * around the call (the container's creation, one LAN probe window, the answer).
 */
const RUN_BOUND_MS = 2 * DEFAULT_REQUEST_TIMEOUT_MS + 3000;

let lab: Lab;
let etcd: EtcdCluster | undefined;
let daemons: Daemon[] = [];

const hosts = (): LabHost[] => lab.hosts;

async function startEtcd(tls: boolean): Promise<EtcdCluster> {
  return EtcdCluster.start({
    members: 3,
    ...(tls && { tls: true, auth: true }),
    placement: { members: hosts().map((h) => ({ netns: h.ns.path, ip: h.ipv4 })), ctlNetns: lab.lan.path },
    parentDir: lab.dir,
  });
}

/** One macnet daemon per host on `etcd`, with `args` (TLS, credentials) and `env` per host. */
async function startDaemons(args: (h: LabHost) => string[], env: (h: LabHost) => Record<string, string> = () => ({})) {
  daemons = await Promise.all(
    hosts().map((h) =>
      Daemon.start({
        netns: h.ns.path,
        mountNs: h.mountNs,
        pluginDir: h.pluginDir,
        extraArgs: [
          '--log-level',
          'info',
          '--store',
          'etcd',
          '--etcd-endpoints',
          etcd!.endpoints.join(','),
          ...args(h),
        ],
        env: env(h),
      }),
    ),
  );
}

async function stopDaemons(): Promise<void> {
  for (const d of daemons.splice(0)) await d.remove();
}

/** The same network on every host, created on all three at once (they race on the pool and gateway records). */
async function createNetworks(): Promise<void> {
  await Promise.all(hosts().map((h) => createMacnetNetwork(h, NET)));
}

async function removeAll(): Promise<void> {
  for (const h of hosts()) {
    const ids = (await h.docker('ps', '-aq')).stdout.split('\n').filter(Boolean);
    if (ids.length) await h.docker('rm', '-f', ...ids);
    await h.docker('network', 'rm', NET);
  }
}

const startAll = (h: LabHost, names: string[]) => startBurst(h, NET, names, CONCURRENCY);

interface Attached {
  readonly host: string;
  readonly name: string;
  readonly mac: string;
  readonly ip: string;
}

/** Every host's `docker network inspect` of the network: its containers, and the IPAM config it shows. */
async function inspectAll(): Promise<{ attached: Attached[]; configs: string[] }> {
  const attached: Attached[] = [];
  const configs: string[] = [];
  for (const h of hosts()) {
    const [net] = JSON.parse(await ok(h, 'network', 'inspect', NET)) as {
      IPAM: { Driver: string; Config: { Subnet: string; Gateway: string }[] };
      Containers: Record<string, { Name: string; MacAddress: string; IPv4Address: string }>;
    }[];
    configs.push(JSON.stringify({ driver: net!.IPAM.Driver, config: net!.IPAM.Config }));
    for (const c of Object.values(net!.Containers ?? {}))
      attached.push({ host: h.name, name: c.Name, mac: c.MacAddress, ip: c.IPv4Address.split('/')[0]! });
  }
  return { attached, configs };
}

/** The address records in etcd (as root: the test's view, not macnet's), by address. */
async function addressesInEtcd(): Promise<string[]> {
  const r = await etcd!.etcdctl(['get', '--prefix', '--keys-only', 'macnet/ipam/addresses/'], {
    ...(etcd!.tls && { as: `root:${ROOT_PASSWORD}` }),
  });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((k) => k.slice(k.lastIndexOf('/') + 1))
    .sort();
}

/** Distinct addresses, none a host's or the router's, each answered on the LAN by the MAC its host shows. */
async function assertOnePool(t: { diagnostic(s: string): void }, expected: number): Promise<Attached[]> {
  const { attached, configs } = await inspectAll();
  assert.equal(attached.length, expected, 'every container is attached on its host');
  assert.equal(new Set(configs).size, 1, `the hosts show one IPAM config: ${configs.join(' | ')}`);
  const byIp = new Map<string, Attached>();
  for (const a of attached) {
    const other = byIp.get(a.ip);
    assert.ok(!other, `${a.ip} given to ${other?.host}/${other?.name} and ${a.host}/${a.name}`);
    byIp.set(a.ip, a);
  }
  for (const ip of [LAN.router4, ...hosts().map((h) => h.ipv4)])
    assert.ok(!byIp.has(ip), `${ip} (the router or a host) was given to a container`);
  assert.deepEqual(
    await addressesInEtcd(),
    [...byIp.keys(), LAN.router4].sort(),
    'etcd holds exactly the addresses of the containers and the gateway',
  );
  const swept = await arpSweep(lab, [...byIp.keys()]);
  const wrong = [...swept]
    .filter(([ip, macs]) => macs.length !== 1 || macs[0] !== byIp.get(ip)!.mac)
    .map(
      ([ip, macs]) => `${ip} (${byIp.get(ip)!.host}, ${byIp.get(ip)!.mac}): replies from ${macs.join(' ') || 'none'}`,
    );
  t.diagnostic(`ARP from the LAN: ${swept.size} addresses, ${swept.size - wrong.length} answered once, by their MAC`);
  assert.deepEqual(wrong, [], 'every address answered exactly once, by the container its host shows');
  return attached;
}

async function ping(h: LabHost, from: string, to: string): Promise<void> {
  const r = await h.docker('exec', from, 'ping', '-c', '1', '-W', '2', to);
  assert.equal(r.code, 0, `${h.name}: ping ${to} from ${from}: ${r.stdout}${r.stderr}`);
}

describe('three hosts with one address pool on etcd', () => {
  before(async () => {
    lab = await Lab.create({ hosts: 3, docker: true });
    etcd = await startEtcd(false);
    await startDaemons(() => ['--lost-host-grace', String(GRACE_S)]);
    await createNetworks();
  });
  after(async () => {
    // dockerd first (it calls the plugins while it stops, and they need etcd), then the plugins, then etcd.
    try {
      await lab?.destroy();
    } finally {
      await stopDaemons();
      await etcd?.close();
    }
  });

  test(`${3 * PER_HOST} containers started at once on three hosts: distinct addresses, each answered once`, async (t) => {
    t.after(removeContainers);
    const names = (h: LabHost) => Array.from({ length: PER_HOST }, (_, i) => `b${h.index}-${i}`);
    const t0 = Date.now();
    const failures = (await Promise.all(hosts().map((h) => startAll(h, names(h))))).flat();
    t.diagnostic(`${3 * PER_HOST} containers started in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assert.deepEqual(failures, []);
    await assertOnePool(t, 3 * PER_HOST);
  });

  test('etcd without quorum, then stopped: a new container fails within the bound naming the endpoints; running ones keep working; service resumes by itself; a restarted daemon keeps to its own records', async (t) => {
    t.after(async () => {
      for (let i = 0; i < 3; i++) etcd!.startMember(i);
      await removeContainers();
    });
    const [h1, h2, h3] = hosts() as [LabHost, LabHost, LabHost];
    for (const h of hosts())
      await ok(h, 'run', '-d', '--name', `o${h.index}`, '--net', NET, 'busybox:local', 'sleep', '600');
    const ips = await Promise.all(
      hosts().map(async (h) =>
        ok(h, 'inspect', '-f', `{{(index .NetworkSettings.Networks "${NET}").IPAddress}}`, `o${h.index}`),
      ),
    );

    /** A docker run on `h` that must fail within the bound, naming the endpoints. */
    const refusedRun = async (h: LabHost, name: string, what: string) => {
      const t0 = Date.now();
      const r = await h.docker('run', '-d', '--name', name, '--net', NET, 'busybox:local', 'sleep', '600');
      const ms = Date.now() - t0;
      t.diagnostic(`docker run ${what} failed after ${ms} ms (store deadline ${DEFAULT_REQUEST_TIMEOUT_MS} ms)`);
      assert.notEqual(r.code, 0, `docker run fails ${what}`);
      for (const e of etcd!.endpoints) assert.ok(r.stderr.includes(e), `the error names ${e}: ${r.stderr}`);
      assert.match(r.stderr, /on etcd .*(no answer within|did not confirm)/);
      assert.ok(ms < RUN_BOUND_MS, `failed after ${ms} ms, bound ${RUN_BOUND_MS} ms`);
    };
    // A container to remove during the outage: dockerd does not retry a release that failed.
    await ok(h3, 'run', '-d', '--name', 'gone', '--net', NET, 'busybox:local', 'sleep', '600');
    const goneIp = await ok(h3, 'inspect', '-f', `{{(index .NetworkSettings.Networks "${NET}").IPAddress}}`, 'gone');
    assert.ok((await addressesInEtcd()).includes(goneIp));
    // One member of three stopped, the leader (the hard case: the other two elect a new one meanwhile): reservations
    // go on at once on every host, several at a time.
    const leader = await etcd!.leader();
    await etcd!.stopMember(leader, 'SIGKILL');
    const t1 = Date.now();
    const during = await Promise.all(
      hosts().flatMap((h) =>
        [0, 1].map((k) =>
          h.docker('run', '-d', '--name', `l${h.index}-${k}`, '--net', NET, 'busybox:local', 'sleep', '600'),
        ),
      ),
    );
    t.diagnostic(`6 docker runs with the leader (member ${leader}) killed: ${Date.now() - t1} ms for all`);
    assert.deepEqual(
      during.filter((r) => r.code !== 0).map((r) => r.stderr.trim()),
      [],
      'every docker run with one member of three stopped succeeds',
    );
    etcd!.startMember(leader);
    await etcd!.waitHealthy(etcd!.endpoints);
    for (const h of hosts()) await ok(h, 'rm', '-f', `l${h.index}-0`, `l${h.index}-1`);

    await etcd!.stopMember(1);
    await etcd!.stopMember(2);
    await refusedRun(h1, 'x1', 'with two members of three stopped (no quorum)');
    await etcd!.stopMember(0);
    await refusedRun(h2, 'x0', 'with every member stopped');

    // Removing a container needs no store: its link and record are the host's own (SQLite in the state dir), and
    // the release of its address is kept until etcd answers.
    const rm = await h3.docker('rm', '-f', 'gone');
    assert.equal(rm.code, 0, `docker rm during the outage: ${rm.stderr}`);
    assert.equal((await h3.docker('ps', '-aq', '-f', 'name=^gone$')).stdout.trim(), '', 'the container is gone');

    // The data path needs no store: containers on the three hosts still reach each other.
    await ping(h1, 'o1', ips[1]!);
    await ping(h2, 'o2', ips[2]!);
    await ping(h3, 'o3', ips[0]!);

    // A daemon starting now (on a LAN machine of its own) refuses within the bound and leaves nothing behind.
    const dev = await lab.lanDevice('late', 'plate');
    await dev.exec('ip', 'addr', 'add', '198.18.15.50/24', 'dev', 'eth0');
    await dev.exec('ip', 'link', 'set', 'eth0', 'up');
    const stateDir = fs.mkdtempSync(path.join(lab.dir, 'late-state-'));
    const pluginDir = fs.mkdtempSync(path.join(lab.dir, 'late-plugins-'));
    const s0 = Date.now();
    const refused = await Daemon.start({
      netns: dev.path,
      stateDir,
      pluginDir,
      extraArgs: ['--store', 'etcd', '--etcd-endpoints', etcd!.endpoints.join(',')],
    }).then(
      async (d) => {
        await d.remove();
        assert.fail('a daemon started with etcd stopped');
      },
      (e: Error) => e.message,
    );
    const startMs = Date.now() - s0;
    t.diagnostic(`a daemon starting with etcd stopped exited after ${startMs} ms`);
    assert.match(refused, /exited with 1 before ready/);
    assert.match(refused, /STORE_UNAVAILABLE/);
    for (const e of etcd!.endpoints) assert.ok(refused.includes(e), `the refusal names ${e}`);
    assert.ok(startMs < DEFAULT_REQUEST_TIMEOUT_MS + 3000, `refused after ${startMs} ms`);
    assert.deepEqual(fs.readdirSync(pluginDir), [], 'no socket left');
    assert.ok(!fs.readdirSync(stateDir).includes('host-id'), 'no host id made');

    for (let i = 0; i < 3; i++) etcd!.startMember(i);
    await etcd!.waitHealthy(etcd!.endpoints);
    // The release made during the outage reaches etcd by itself, before any other request on the network.
    const r0 = Date.now();
    while ((await addressesInEtcd()).includes(goneIp) && Date.now() - r0 < 15_000) await sleep(200);
    t.diagnostic(`the release made during the outage reached etcd ${Date.now() - r0} ms after the quorum was back`);
    assert.ok(!(await addressesInEtcd()).includes(goneIp), `${goneIp} was released in etcd`);
    await h1.docker('rm', '-f', 'x1');
    await h2.docker('rm', '-f', 'x0');
    const back = Date.now();
    await ok(h1, 'run', '-d', '--name', 'x2', '--net', NET, 'busybox:local', 'sleep', '600');
    t.diagnostic(`the first docker run after the members came back took ${Date.now() - back} ms`);
    await assertOnePool(t, 4);

    // Each host's driver records are its own (SQLite in its state dir; etcd holds only the shared pool), so a
    // daemon restarted on one host reconciles its own network only: it builds no link for the other hosts'
    // networks. (The LAN probe link is made at the first probe after a start and removed at a stop: left out.)
    const r = await etcd!.etcdctl(['get', '--prefix', '--keys-only', 'macnet/']);
    const keys = r.stdout.split('\n').filter(Boolean);
    assert.deepEqual(
      keys.filter((k) => !/^macnet\/(ipam|meta)\//.test(k)).map((k) => k.replace(/[^/]+$/, '<id>')),
      ['macnet/hosts/<id>', 'macnet/hosts/<id>', 'macnet/hosts/<id>'],
      "etcd holds the shared pool, the layout version and the hosts' presence only",
    );
    const links = async () =>
      (await ipJson<{ ifname: string }[]>(h2.ns.name, 'link', 'show'))
        .map((l) => l.ifname)
        .filter((n) => !/^mnp[0-9a-f]{10}$/.test(n));
    const before = (await links()).sort();
    await daemons[1]!.stop();
    await daemons[1]!.restart();
    assert.deepEqual((await links()).sort(), before, "h2's links are the same after its daemon's restart");
    await ok(h2, 'run', '-d', '--name', 'x3', '--net', NET, 'busybox:local', 'sleep', '600');
    await ping(h2, 'x3', ips[0]!);
    await assertOnePool(t, 5);
  });

  test('a host gone from etcd keeps the addresses that answer; cut off from the LAN past the grace period, it loses them; back, it never answers for one twice', async (t) => {
    t.after(async () => {
      await lab.routerExec('ip', 'link', 'set', 'p3', 'up');
      await removeContainers();
    });
    const [h1, h2, h3] = hosts() as [LabHost, LabHost, LabHost];
    const ipOf = (h: LabHost, name: string) =>
      ok(h, 'inspect', '-f', `{{(index .NetworkSettings.Networks "${NET}").IPAddress}}`, name);
    const run = (h: LabHost, name: string, ...extra: string[]) =>
      ok(h, 'run', '-d', '--name', name, '--net', NET, ...extra, 'busybox:local', 'sleep', '600');
    await run(h1, 'l1');
    await run(h2, 'l2');
    await run(h3, 'l3a');
    await run(h3, 'l3b');
    const [a, b] = [await ipOf(h3, 'l3a'), await ipOf(h3, 'l3b')];
    const record = async (ip: string) => {
      const r = await etcd!.etcdctl([
        'get',
        '--print-value-only',
        `macnet/ipam/addresses/LocalDefault/${LAN.subnet4.replace('/', '_')}/${ip}`,
      ]);
      return r.stdout.trim() ? (JSON.parse(r.stdout) as { owner: string; host?: string }) : undefined;
    };
    const h3id = (await record(a))!.host!;
    const waitFor = async (what: string, cond: () => Promise<boolean>, ms: number) => {
      const t0 = Date.now();
      while (!(await cond())) {
        if (Date.now() - t0 > ms) {
          const cluster = /presence|checked|reclaim|gone|address/;
          for (const [i, d] of daemons.entries())
            for (const l of d.logLines())
              if (cluster.test(String(l['msg'])) || l['level'] === 'error')
                t.diagnostic(`h${i + 1}: ${JSON.stringify(l).slice(0, 400)}`);
          assert.fail(`${what}: not within ${ms} ms`);
        }
        await sleep(250);
      }
      return Date.now() - t0;
    };

    // h3's daemon stops (its lease goes with it): its containers answer on the LAN, so however long the grace
    // period has passed, the other hosts keep their addresses.
    await daemons[2]!.stop();
    await sleep((GRACE_S + 10) * 1000);
    assert.equal((await record(a))?.host, h3id, `${a} kept while it answers`);
    assert.equal((await record(b))?.host, h3id, `${b} kept while it answers`);
    await daemons[2]!.restart();

    // h3 cut off from the LAN (its switch port down): no etcd for it, its containers silent. After the lease's
    // TTL, the grace period and two silent probes, the other hosts reclaim both addresses.
    await lab.routerExec('ip', 'link', 'set', 'p3', 'down');
    const cut = Date.now();
    const gone = await waitFor(
      'the silent addresses of h3 reclaimed',
      async () => (await record(a)) === undefined && (await record(b)) === undefined,
      60_000,
    );
    t.diagnostic(
      `h3's silent addresses were reclaimed ${gone} ms after it was cut off (TTL 15 s + grace ${GRACE_S} s)`,
    );
    // One of them is another host's container's now (h1 finds it silent on the LAN too). A scan of h2's that
    // listed the records before h1 deleted them may still be probing them for a moment: h1's static check would
    // see that probe and refuse the address, so the run waits a scan period.
    await sleep(3000);
    await run(h1, 'taker', '--ip', a);
    const takerMac = await ok(
      h1,
      'inspect',
      '-f',
      `{{(index .NetworkSettings.Networks "${NET}").MacAddress}}`,
      'taker',
    );

    // h3 back on the LAN: its lease is regained, and its containers' addresses are checked: the one still free is
    // h3's again; the one h1 holds now is no longer answered by h3's container (its interface is down).
    await lab.routerExec('ip', 'link', 'set', 'p3', 'up');
    const back = await waitFor('h3 rewrote its free address', async () => (await record(b))?.host === h3id, 60_000);
    t.diagnostic(
      `h3 was cut off for ${Math.round((Date.now() - cut - back) / 1000)} s; back, it rewrote ${b} after ${back} ms`,
    );
    await waitFor(
      "h3's container off the LAN for the address h1 holds",
      async () => (await h3.docker('exec', 'l3a', 'cat', '/sys/class/net/eth0/operstate')).stdout.trim() === 'down',
      10_000,
    );
    assert.equal((await record(a))?.host !== h3id, true, `${a} stays h1's`);
    const logged = daemons[2]!.logLines().filter((l) => l['code'] === 'ADDRESS_CONFLICT' && l['address'] === a);
    assert.equal(logged.length, 1, 'the conflict is logged once, as an error naming the address');
    assert.equal(logged[0]!['level'], 'error');
    const swept = await arpSweep(lab, [a, b, await ipOf(h1, 'l1'), await ipOf(h2, 'l2')]);
    assert.deepEqual(swept.get(a), [takerMac], `${a} answered by h1's container only`);
    for (const [ip, macs] of swept) assert.equal(macs.length, 1, `${ip} answered once: ${macs.join(' ')}`);
  });

  test('TLS with a client certificate, and a user with a password (from a file, and from the environment)', async (t) => {
    await removeAll();
    await stopDaemons();
    await etcd!.close();
    etcd = await startEtcd(true);
    const tls = etcd.tls!;
    const pwFile = path.join(lab.dir, 'etcd-password');
    fs.writeFileSync(pwFile, `${MACNET_USER.password}\n`, { mode: 0o600 });
    const common = ['--etcd-cacert', tls.ca, '--etcd-cert', tls.cert, '--etcd-key', tls.key];
    await startDaemons(
      (h) => [...common, '--etcd-user', MACNET_USER.user, ...(h.index === 3 ? [] : ['--etcd-password-file', pwFile])],
      (h): Record<string, string> => (h.index === 3 ? { [ETCD_PASSWORD_ENV]: MACNET_USER.password } : {}),
    );
    assert.ok(etcd.endpoints.every((e) => e.startsWith('https://')));
    await createNetworks();
    t.after(removeContainers);
    const names = (h: LabHost) => Array.from({ length: 4 }, (_, i) => `s${h.index}-${i}`);
    assert.deepEqual((await Promise.all(hosts().map((h) => startAll(h, names(h))))).flat(), []);
    const attached = await assertOnePool(t, 12);
    const [h1] = hosts() as [LabHost];
    const far = attached.find((a) => a.host === 'h3')!;
    await ping(h1, 's1-0', far.ip);
  });
});

async function removeContainers(): Promise<void> {
  for (const h of lab.hosts) {
    const ids = (await h.docker('ps', '-aq')).stdout.split('\n').filter(Boolean);
    if (ids.length) await h.docker('rm', '-f', ...ids);
  }
}
