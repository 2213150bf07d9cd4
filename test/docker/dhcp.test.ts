// DHCP mode end to end: `--ipam-driver macnet --ipam-opt mode=dhcp` on a lab host with a real dockerd, the
// LAN's DHCP server a real dnsmasq in the LAN namespace. Leases before start, renewals at T1 that continue
// across a kill -9 of the daemon, a restarted container keeping its lease (restart, stop/start, dockerd
// restart), DHCPRELEASE once a removed container's lease was kept --dhcp-keep seconds, a clear error without a
// server.
import { after, before } from 'node:test';
import { test } from '../lab/engine-test';
import assert from 'node:assert/strict';
import { Daemon } from '../lab/daemon';
import { LAN, Lab, type LabHost } from '../lab/lab';
import { Dnsmasq, dnsmasqMissing } from '../dhcp/dnsmasq';

/** T1 10 s, T2 20 s on a 2-minute lease (dnsmasq's minimum): renewals come within the test's time. */
const RANGE = '198.18.15.100,198.18.15.199,255.255.255.0,2m';
const DHCP_OPTS = [
  '--dhcp-option=option:T1,10',
  '--dhcp-option=option:T2,20',
  '--dhcp-option=option:router,198.18.15.1',
];
const skip = dnsmasqMissing();
/** Seconds a stopped container's lease is kept for its next start: longer than a dockerd restart here. */
const KEEP_S = 20;

let lab: Lab;
let host: LabHost;
let d: Daemon;
let dns: Dnsmasq | undefined;
before(async () => {
  if (skip) return;
  lab = await Lab.create({ hosts: 1, docker: true });
  host = lab.hosts[0]!;
  dns = await Dnsmasq.start(lab.lan, { range: RANGE, extra: DHCP_OPTS });
  d = await Daemon.start({
    netns: host.ns.path,
    mountNs: host.mountNs,
    pluginDir: host.pluginDir,
    extraArgs: ['--dhcp-keep', String(KEEP_S)],
  });
});
after(async () => {
  await dns?.stop();
  await d?.remove();
  await lab?.destroy();
});

const docker = async (...args: string[]) => {
  const r = await host.docker(...args);
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};
const inspect = async (c: string) =>
  JSON.parse(await docker('inspect', c))[0] as {
    NetworkSettings: { Networks: Record<string, { IPAddress: string; MacAddress: string; Gateway: string }> };
  };
const readyCount = () => d.logLines().filter((l) => l.msg === 'ready').length;
async function waitFor<T>(what: string, ms: number, fn: () => T | undefined | Promise<T | undefined>): Promise<T> {
  for (const until = Date.now() + ms; ;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until)
      throw new Error(`${what}: not within ${ms} ms; dnsmasq log:\n${dns?.log.split('\n').slice(-15).join('\n')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const create = (name: string, ...extra: string[]) =>
  host.docker(
    'network',
    'create',
    '-d',
    'macnet',
    '--ipam-driver',
    'macnet',
    '--ipam-opt',
    'mode=dhcp',
    ...extra,
    '-o',
    'parent=eth0',
    name,
  );

test('bad DHCP requests are refused with the option named, before anything exists', { skip }, async () => {
  const noSubnet = await create('bad1');
  assert.notEqual(noSubnet.code, 0);
  assert.match(
    noSubnet.stderr,
    /IPAM_POOL_INVALID: RequestPool: --ipam-opt mode=dhcp needs --subnet, the LAN's IPv4 subnet/,
  );
  const range = await create(
    'bad2',
    '--subnet',
    LAN.subnet4,
    '--gateway',
    LAN.router4,
    '--ip-range',
    '198.18.15.128/25',
  );
  assert.match(range.stderr, /--ip-range 198.18.15.128\/25 has no effect with --ipam-opt mode=dhcp/);
  const noGateway = await create('bad3', '--subnet', LAN.subnet4);
  assert.match(
    noGateway.stderr,
    /IPAM_POOL_INVALID: RequestAddress: --ipam-opt mode=dhcp needs --gateway, the LAN router's address/,
  );
  const mode = await host.docker(
    'network',
    'create',
    '-d',
    'macnet',
    '--ipam-driver',
    'macnet',
    '--ipam-opt',
    'mode=dhcpv4',
    '--subnet',
    LAN.subnet4,
    'bad4',
  );
  assert.match(mode.stderr, /OPTION_INVALID: RequestPool: --ipam-opt mode="dhcpv4" is not valid: use pool .* or dhcp/);
  assert.equal(await docker('network', 'ls', '-q', '--filter', 'driver=macnet'), '');
});

test(
  'containers get leases before they start; renewals at T1 go on across a kill -9 of the daemon; rm releases',
  { skip },
  async (t) => {
    t.after(async () => {
      await host.docker('rm', '-f', 'web', 'db', 'stat');
      await host.docker('network', 'rm', 'dh');
    });
    const n = await create('dh', '--subnet', LAN.subnet4, '--gateway', LAN.router4);
    assert.equal(n.code, 0, n.stderr);
    await docker('run', '-d', '--name', 'web', '--net', 'dh', 'busybox:local', 'sleep', '600');
    await docker('run', '-d', '--name', 'db', '--net', 'dh', 'busybox:local', 'sleep', '600');
    const web = (await inspect('web')).NetworkSettings.Networks.dh!;
    const db = (await inspect('db')).NetworkSettings.Networks.dh!;
    t.diagnostic(`web ${web.IPAddress} ${web.MacAddress}, db ${db.IPAddress} ${db.MacAddress}`);
    const leaseOf = (mac: string) => dns!.leases().find((l) => l.mac === mac);
    for (const c of [web, db]) {
      const l = leaseOf(c.MacAddress);
      assert.ok(l, `dnsmasq leased nothing to ${c.MacAddress}: ${JSON.stringify(dns!.leases())}`);
      assert.equal(l.ip, c.IPAddress, 'the container has the leased address');
      assert.match(c.IPAddress, /^198\.18\.15\.1\d\d$/);
      assert.equal(l.clientId, `01:${c.MacAddress}`);
      assert.equal(c.Gateway, '198.18.15.1', 'the router from the lease');
    }
    assert.notEqual(web.IPAddress, db.IPAddress);
    assert.equal((await host.docker('exec', 'web', 'ping', '-c', '1', '-W', '2', LAN.router4)).code, 0, 'on the LAN');

    // Renewal at T1 (10 s): dnsmasq's lease file shows a later expiry.
    const first = leaseOf(web.MacAddress)!.expires;
    const renewed = await waitFor('a renewal at T1', 20_000, () => {
      const e = leaseOf(web.MacAddress)?.expires;
      return e && e > first ? e : undefined;
    });
    t.diagnostic(`renewed: expiry ${first} → ${renewed}`);

    // kill -9 mid-lease; down past T1; restart: the renewals continue from the stored lease.
    await d.stop('SIGKILL');
    await new Promise((r) => setTimeout(r, 12_000));
    const beforeRestart = leaseOf(web.MacAddress)!.expires;
    assert.equal(beforeRestart, renewed, 'nobody renewed while the daemon was down');
    const n0 = readyCount();
    await d.restart();
    await waitFor('the restarted daemon', 10_000, () => readyCount() > n0 || undefined);
    const after = await waitFor('a renewal after the restart', 20_000, () => {
      const e = leaseOf(web.MacAddress)?.expires;
      return e && e > beforeRestart ? e : undefined;
    });
    t.diagnostic(`after kill -9 and restart: expiry ${beforeRestart} → ${after}`);
    assert.equal(leaseOf(web.MacAddress)?.ip, web.IPAddress, 'same address');

    // docker rm: kept for a start (dockerd cannot tell a removal from a stop), then DHCPRELEASE: gone from the server.
    await docker('rm', '-f', 'db');
    const removed = Date.now();
    await waitFor("the released lease to leave dnsmasq's lease file", (KEEP_S + 10) * 1000, () =>
      leaseOf(db.MacAddress) ? undefined : true,
    );
    t.diagnostic(`released ${((Date.now() - removed) / 1000).toFixed(1)} s after docker rm (--dhcp-keep ${KEEP_S})`);
    assert.ok(Date.now() - removed >= (KEEP_S - 1) * 1000, 'kept for a start first');
  },
);

/** dockerd stopped (SIGTERM: it stops the containers, releasing their addresses) and started again. */
async function restartDockerd(): Promise<void> {
  const c = host.dockerd!;
  if (c.exitCode === null && c.signalCode === null) {
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
  }
  await host.startDockerd();
}

test(
  'a restarted container keeps its lease: same address, MAC and client-id across restart, stop/start and a dockerd restart',
  { skip },
  async (t) => {
    t.after(async () => {
      await host.docker('rm', '-f', 'keep', 'other');
      await host.docker('network', 'rm', 'dh3');
    });
    assert.equal((await create('dh3', '--subnet', LAN.subnet4, '--gateway', LAN.router4)).code, 0);
    const earlier = new Set(dns!.leases().map((l) => l.mac));
    const run = ['--net', 'dh3', '--restart=always', '--stop-timeout', '1', 'busybox:local', 'sleep', '600'];
    await docker('run', '-d', '--name', 'keep', ...run);
    await docker('run', '-d', '--name', 'other', ...run);
    /** "address MAC client-id" as the container and the server see it. */
    const identity = async (c: string) => {
      for (const until = Date.now() + 30_000; ;) {
        const n = (await inspect(c)).NetworkSettings.Networks.dh3;
        const l = n?.IPAddress ? dns!.leases().find((x) => x.mac === n.MacAddress) : undefined;
        if (n && l) {
          assert.equal(l.ip, n.IPAddress, `${c}: the server's lease is the container's address`);
          return `${n.IPAddress} ${n.MacAddress} ${l.clientId}`;
        }
        if (Date.now() > until)
          throw new Error(`${c}: no address or no lease: ${JSON.stringify(n)} ${JSON.stringify(dns!.leases())}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    const first = await identity('keep');
    const other = await identity('other');
    const seen = [`start ${first}`];
    await docker('restart', '-t', '1', 'keep');
    const restarted = await identity('keep');
    seen.push(`restart ${restarted}`);
    await docker('stop', '-t', '1', 'keep');
    await docker('start', 'keep');
    const started = await identity('keep');
    seen.push(`stop/start ${started}`);
    await restartDockerd();
    const both = [await identity('keep'), await identity('other')];
    seen.push(`dockerd restart ${both.join(', ')}`);
    t.diagnostic(seen.join(' | '));
    assert.equal(restarted, first, 'docker restart');
    assert.equal(started, first, 'docker stop; docker start');
    // dockerd starts both at once: which one takes which parked lease is the engine's race, as with addresses.
    assert.deepEqual(both.sort(), [first, other].sort(), 'dockerd restarted');
    const ours = dns!
      .leases()
      .filter((l) => !earlier.has(l.mac))
      .map((l) => l.ip)
      .sort();
    assert.deepEqual(ours, [first, other].map((x) => x.split(' ')[0]).sort(), 'no other lease was taken meanwhile');
  },
);

test('no DHCP server: DHCP_NO_ANSWER naming the parent, and nothing left behind', { skip }, async (t) => {
  await dns!.stop();
  dns = undefined;
  t.after(async () => {
    await host.docker('rm', '-f', 'lonely');
    await host.docker('network', 'rm', 'dh2');
  });
  assert.equal((await create('dh2', '--subnet', LAN.subnet4, '--gateway', LAN.router4)).code, 0);
  const started = Date.now();
  const r = await host.docker('run', '--name', 'lonely', '--net', 'dh2', 'busybox:local', 'true');
  const ms = Date.now() - started;
  assert.notEqual(r.code, 0);
  assert.match(
    r.stderr,
    /DHCP_NO_ANSWER: no DHCP server answered on probe link mnp[0-9a-f]{10} on parent eth0 within 5000 ms \(DISCOVER sent \d times for MAC 0a(:[0-9a-f]{2}){5}\)/,
  );
  t.diagnostic(`refused after ${ms} ms: ${r.stderr.trim().split('\n').pop()}`);
  assert.equal(await docker('network', 'inspect', '-f', '{{len .Containers}}', 'dh2'), '0');
  const links = JSON.parse((await lab.hosts[0]!.ns.exec('ip', '-json', 'link', 'show')).stdout) as { ifname: string }[];
  assert.deepEqual(
    links.map((l) => l.ifname).filter((n) => /^mn[0-9a-f]{11}$/.test(n)),
    [],
    'no endpoint link',
  );
});
