// The DHCP client against a real dnsmasq on the lab LAN. Acquisition runs as macnet runs it: from a macvlan
// probe link on a host's eth0, for a foreign MAC no link has; renewal, rebinding and release from a packet
// socket inside a "container" namespace whose macvlan has that MAC and the leased address.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ETH_P_IP, Kernel, type PacketSocket } from '../../src/kernel';
import { acquire, decline, type DhcpLease, LeaseKeeper, rebind, release, renew } from '../../src/dhcp';
import { isMacnetError } from '../../src/errors';
import { Lab, type LabHost } from '../lab/lab';
import type { TestNetns } from '../lab/netns';
import { sh } from '../lab/sh';
import { Dnsmasq, dnsmasqMissing } from './dnsmasq';

const RANGE = '198.18.15.100,198.18.15.199,255.255.255.0,2m';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const clientIdOf = (mac: string) => Buffer.from(`01${mac.replace(/:/g, '')}`, 'hex');

let lab: Lab;
let host: LabHost;
let dns: Dnsmasq | undefined;
let routerMac: string;

before(async () => {
  if (dnsmasqMissing()) return;
  lab = await Lab.create({ hosts: 1 });
  host = lab.hosts[0]!;
  routerMac = (await Kernel.with(lab.lan.path, (k) => k.links.get('sw0'))).mac!;
  dns = await Dnsmasq.start(lab.lan, { range: RANGE });
});
after(async () => {
  await dns?.stop();
  await lab?.destroy();
});

/** Runs fn with a packet socket on a fresh probe link (macvlan on the host's eth0), removed afterwards. */
async function withProbe<T>(fn: (sock: PacketSocket) => Promise<T>): Promise<T> {
  return Kernel.with(host.ns.path, async (k) => {
    await k.links.create({ kind: 'macvlan', name: 'mnd-probe', parent: 'eth0', mode: 'bridge', up: true });
    const sock = await k.openPacketSocket('mnd-probe', { protocol: ETH_P_IP });
    try {
      return await fn(sock);
    } finally {
      sock.close();
      await k.links.delete('mnd-probe');
    }
  });
}

/** A container namespace with a macvlan of the lease's MAC and address; fn gets a packet socket in it. */
async function withContainer<T>(lease: DhcpLease, fn: (sock: PacketSocket, ns: TestNetns) => Promise<T>): Promise<T> {
  const ns = await lab.newNetns('ctr');
  try {
    await sh(
      'ip',
      '-n',
      host.ns.name,
      'link',
      'add',
      'ctr0',
      'link',
      'eth0',
      'address',
      lease.mac,
      'type',
      'macvlan',
      'mode',
      'bridge',
    );
    await sh('ip', '-n', host.ns.name, 'link', 'set', 'ctr0', 'netns', ns.name);
    await sh('ip', '-n', ns.name, 'addr', 'add', `${lease.address}/${lease.prefixLength}`, 'dev', 'ctr0');
    await sh('ip', '-n', ns.name, 'link', 'set', 'ctr0', 'up');
    return await Kernel.with(ns.path, async (k) => {
      const sock = await k.openPacketSocket('ctr0', { protocol: ETH_P_IP });
      try {
        return await fn(sock, ns);
      } finally {
        sock.close();
      }
    });
  } finally {
    await ns.delete();
  }
}

const skip = dnsmasqMissing();

test(
  'acquire for a foreign MAC from a probe link; renew and rebind from the container; release',
  { skip },
  async () => {
    const mac = '02:dc:00:00:00:01';
    const t0 = Date.now();
    const lease = await withProbe((sock) =>
      acquire(sock, { mac, clientId: clientIdOf(mac), hostname: 'c1', where: 'probe link mnd-probe (parent eth0)' }),
    );
    assert.match(lease.address, /^198\.18\.15\.1\d\d$/);
    assert.deepEqual(
      { ...lease, address: '', obtainedAt: 0 },
      {
        address: '',
        prefixLength: 24,
        router: '198.18.15.1',
        dns: ['198.18.15.53'],
        domain: 'lab.test',
        serverId: '198.18.15.1',
        serverMac: routerMac,
        leaseSeconds: 120,
        renewSeconds: 60,
        rebindSeconds: 105,
        obtainedAt: 0,
        mac,
        clientId: `01${mac.replace(/:/g, '')}`,
        hostname: 'c1',
      },
    );
    assert.ok(lease.obtainedAt >= t0 && lease.obtainedAt <= Date.now());
    assert.deepEqual(JSON.parse(JSON.stringify(lease)), lease, 'JSON round trip');
    const [line] = dns!.leases();
    assert.deepEqual(line && { ...line, expires: 0 }, {
      expires: 0,
      mac,
      ip: lease.address,
      hostname: 'c1',
      clientId: `01:${mac}`,
    });

    await withContainer(lease, async (sock) => {
      await sleep(1100); // the lease file has whole seconds
      const renewed = await renew(sock, lease, { where: 'ctr0' });
      assert.equal(renewed.address, lease.address);
      assert.equal(renewed.serverId, lease.serverId);
      assert.ok(renewed.obtainedAt > lease.obtainedAt);
      const after1 = dns!.leases()[0]!;
      assert.ok(after1.expires > line!.expires, `expiry moved: ${line!.expires} -> ${after1.expires}`);

      await sleep(1100);
      const rebound = await rebind(sock, renewed, { where: 'ctr0' });
      assert.equal(rebound.address, lease.address);
      assert.ok(dns!.leases()[0]!.expires > after1.expires);

      release(sock, rebound);
      for (let i = 0; i < 50 && dns!.leases().length; i++) await sleep(20);
      assert.deepEqual(dns!.leases(), [], 'released');

      // An address outside the server's range (here: never leased): an authoritative server NAKs the renewal.
      // (dnsmasq ACKs a renewal of a released lease whose address is still free: it simply re-creates it.)
      await assert.rejects(
        renew(sock, { ...rebound, address: '198.18.15.50' }, { where: 'ctr0' }),
        (e) =>
          isMacnetError(e, 'DHCP_NAK') &&
          /refused to extend the lease of 198\.18\.15\.50 .* on ctr0: "/.test(e.message),
      );
      assert.deepEqual(dns!.leases(), []);
    });
  },
);

test('decline: the server drops the lease (the address was found in use on the LAN)', { skip }, async () => {
  const mac = '02:dc:00:00:00:04';
  await withProbe(async (sock) => {
    const lease = await acquire(sock, { mac, clientId: clientIdOf(mac) });
    assert.ok(dns!.leases().some((l) => l.mac === mac));
    decline(sock, lease);
    // dnsmasq logs through a pipe: the line may come a little after the lease file changed.
    const logged = new RegExp(`DHCPDECLINE\\(sw0\\) ${lease.address.replace(/\./g, '\\.')} ${mac}`);
    for (let i = 0; i < 100 && (dns!.leases().some((l) => l.mac === mac) || !logged.test(dns!.log)); i++)
      await sleep(20);
    assert.ok(!dns!.leases().some((l) => l.mac === mac));
    assert.match(dns!.log, logged);
  });
});

test("LeaseKeeper renews a real lease at the server's T1 through a socket in the container", { skip }, async () => {
  await dns!.stop();
  // dnsmasq's shortest lease is 2 minutes, but it passes T1/T2 given as options through.
  dns = await Dnsmasq.start(lab.lan, {
    range: RANGE,
    ping: false,
    extra: ['--dhcp-option=option:T1,2', '--dhcp-option=option:T2,4'],
  });
  const mac = '02:dc:00:00:00:02';
  const lease = await withProbe((sock) => acquire(sock, { mac, clientId: clientIdOf(mac), hostname: 'c2' }));
  // dnsmasq adds a little per-client fuzz to T1 ("sent ... option: 58 T1 3s" for T1,2) so clients spread out.
  assert.ok(lease.renewSeconds >= 2 && lease.renewSeconds < 4, `T1 ${lease.renewSeconds}`);
  assert.equal(lease.rebindSeconds, 4);
  await withContainer(lease, async (sock, ns) => {
    const opened: PacketSocket[] = [];
    const keeper = new LeaseKeeper({
      socketFor: (_key, l) =>
        Kernel.with(ns.path, async (k) => {
          const s = await k.openPacketSocket('ctr0', { protocol: ETH_P_IP });
          opened.push(s);
          assert.equal(l.mac, mac);
          return s;
        }),
      where: (key) => `ctr0 of ${key}`,
    });
    const errors: unknown[] = [];
    keeper.on('error', (_key: string, e: unknown) => errors.push(e));
    try {
      const before = dns!.leases()[0]!;
      const renewed = new Promise<[string, DhcpLease]>((resolve) =>
        keeper.once('renewed', (key: string, l: DhcpLease) => resolve([key, l])),
      );
      keeper.add('ep2', lease);
      const [key, l] = await renewed;
      assert.equal(key, 'ep2');
      assert.equal(l.address, lease.address);
      assert.ok(l.obtainedAt - lease.obtainedAt >= lease.renewSeconds * 1000, 'at T1, not before');
      assert.ok(dns!.leases()[0]!.expires > before.expires);
      assert.deepEqual(keeper.get('ep2'), l);
      assert.deepEqual(errors, []);
      assert.equal(opened.length, 1);
    } finally {
      keeper.stop();
    }
    release(sock, keeper.get('ep2') ?? lease);
  });
});

test('acquisition time against dnsmasq: with --no-ping and with its ping check', { skip }, async (t) => {
  const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const measure = (n: number, base: number) =>
    withProbe(async (sock) => {
      const ms: number[] = [];
      for (let i = 0; i < n; i++) {
        const mac = `02:dc:00:00:01:${(base + i).toString(16).padStart(2, '0')}`;
        const t0 = performance.now();
        const l = await acquire(sock, { mac, clientId: clientIdOf(mac), timeoutMs: 10_000 });
        ms.push(performance.now() - t0);
        release(sock, l); // from the probe link: the server acts on ciaddr and the client id, not the frame's source
      }
      return ms;
    });
  const noPing = await measure(20, 0);
  await dns!.stop();
  dns = await Dnsmasq.start(lab.lan, { range: RANGE });
  const ping = await measure(3, 0x40);
  t.diagnostic(
    `acquire p50 with --no-ping: ${p50(noPing).toFixed(1)} ms (20 runs, max ${Math.max(...noPing).toFixed(1)}); with dnsmasq's ping check: ${p50(ping).toFixed(0)} ms (3 runs)`,
  );
  assert.ok(p50(noPing) < 200);
  // dnsmasq pings a new address and waits up to 3 s for an echo before offering it.
  assert.ok(p50(ping) > 2500 && p50(ping) < 5000);
});

test(
  'no server: DHCP_NO_ANSWER within the bound, DISCOVER sent 4 times, nothing left listening',
  { skip },
  async () => {
    await dns!.stop();
    dns = undefined;
    const mac = '02:dc:00:00:00:03';
    await withProbe(async (sock) => {
      const t0 = performance.now();
      await assert.rejects(
        acquire(sock, { mac, clientId: clientIdOf(mac), where: 'probe link mnd-probe (parent eth0)' }),
        (e) => {
          assert.ok(isMacnetError(e, 'DHCP_NO_ANSWER'));
          assert.equal(
            e.message,
            `no DHCP server answered on probe link mnd-probe (parent eth0) within 5000 ms (DISCOVER sent 4 times for MAC ${mac})`,
          );
          return true;
        },
      );
      const ms = performance.now() - t0;
      assert.ok(ms >= 4990 && ms < 5300, `${ms} ms`);
      assert.equal(sock.listenerCount('packet'), 0);
      // An abort ends it early, with the signal's reason.
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error('container removed')), 100);
      await assert.rejects(acquire(sock, { mac, clientId: clientIdOf(mac), signal: ac.signal }), /container removed/);
      assert.equal(sock.listenerCount('packet'), 0);
    });
  },
);
