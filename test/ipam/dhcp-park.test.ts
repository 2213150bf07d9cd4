// DHCP mode, issue 13: a released lease is parked, and the next start takes it (the lowest parked address, or
// the name's own) with its MAC and client-id, so the server gives the same address back; after keepMs it is
// released. The server is a fake that keys leases on the client-id as dnsmasq does (test/docker/dhcp.test.ts
// runs the real one). Each test on both real stores, SQLite and etcd (test/lab/test-stores.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ipam } from '../../src/ipam/ipam';
import { DhcpLeases, type DhcpSockets } from '../../src/lan';
import { silentLogger } from '../../src/log';
import { eachStore } from '../lab/test-stores';
import {
  BOOTREPLY,
  CLIENT_PORT,
  DHCPACK,
  DHCPDISCOVER,
  DHCPOFFER,
  DHCPRELEASE,
  DHCPREQUEST,
  OPT,
  SERVER_PORT,
  decodeDhcp,
  decodeUdp,
  encodeDhcp,
  encodeUdp,
  optIp,
  optU32,
} from '../../src/dhcp/packets';

type Listener = (p: { data: Buffer; srcMac: string; pktType: number }) => void;

/** Leases per client-id, from .100 up; a RELEASE forgets the client (a new address for it next time). */
class FakeServer {
  readonly byClient = new Map<string, string>();
  readonly seen: string[] = [];
  private next = 100;

  socket() {
    const listeners = new Set<Listener>();
    return {
      on: (_e: 'packet', fn: Listener) => listeners.add(fn),
      off: (_e: 'packet', fn: Listener) => listeners.delete(fn),
      close: () => listeners.clear(),
      send: (data: Buffer) => {
        const m = decodeDhcp(decodeUdp(data)!.payload)!;
        const client = m.options.get(OPT.CLIENT_ID)!.toString('hex');
        const asked = m.options.get(OPT.REQUESTED_IP);
        const type =
          { [DHCPDISCOVER]: 'DISCOVER', [DHCPREQUEST]: 'REQUEST', [DHCPRELEASE]: 'RELEASE' }[m.type] ?? m.type;
        this.seen.push(`${type} ${m.chaddr}${asked ? ` asking ${[...asked].join('.')}` : ''}`);
        if (m.type === DHCPRELEASE) {
          this.byClient.delete(client);
          return;
        }
        if (!this.byClient.has(client)) this.byClient.set(client, `198.18.15.${this.next++}`);
        const reply = encodeDhcp({
          op: BOOTREPLY,
          xid: m.xid,
          chaddr: m.chaddr,
          yiaddr: this.byClient.get(client)!,
          type: m.type === DHCPDISCOVER ? DHCPOFFER : DHCPACK,
          options: [
            [OPT.SERVER_ID, optIp('198.18.15.1')],
            [OPT.LEASE_TIME, optU32(120)],
            [OPT.SUBNET_MASK, optIp('255.255.255.0')],
          ],
        });
        const frame = encodeUdp({
          src: '198.18.15.1',
          dst: '255.255.255.255',
          srcPort: SERVER_PORT,
          dstPort: CLIENT_PORT,
          payload: reply,
        });
        setImmediate(() => {
          for (const fn of listeners) fn({ data: frame, srcMac: '02:00:00:00:00:01', pktType: 1 });
        });
      },
    };
  }
}

eachStore('IPAM DHCP park tests', __filename, (kind, stores) => {
  /** sharedMac: an ipvlan network, whose containers all carry the parent's MAC. */
  async function setup(keepMs?: number, sharedMac?: string) {
    const server = new FakeServer();
    const links: DhcpSockets = {
      probeSocket: async () => ({ sock: server.socket(), where: 'a fake probe link', ...(sharedMac && { sharedMac }) }),
      containerSocket: async () => undefined,
    };
    // As the daemon opens them (src/cli/daemon.ts): leases in this host's own SQLite, the IPAM on the shared store.
    const { store, local } = await stores.open(kind);
    const leases = new DhcpLeases(local, links, silentLogger, { ...(keepMs !== undefined && { keepMs }) });
    const ipam = new Ipam(store, { leases });
    // As the daemon stops both (src/cli/daemon.ts): the IPAM's warm set, the leases' renewals and parking timers.
    const close = () => {
      ipam.close();
      leases.stop();
    };
    const { poolId } = await ipam.requestPool({
      addressSpace: '',
      pool: '198.18.15.0/24',
      options: { mode: 'dhcp' },
      v6: false,
    });
    const start = async (name?: string) => {
      const options: Record<string, string> = name ? { 'com.docker.network.endpoint.name': name } : {};
      const a = (await ipam.requestAddress({ poolId, options })).address.replace('/24', '');
      return `${a} ${leases.leaseOf('198.18.15.0/24', a)!.lease.mac}`;
    };
    return { ipam, close, poolId, server, start, stop: (ip: string) => ipam.releaseAddress(poolId, ip.split(' ')[0]!) };
  }

  test("a stopped container's lease is parked: its start gets the same address, MAC and client-id, no RELEASE", async (t) => {
    const { close, server, start, stop } = await setup();
    t.after(close);
    const a = await start();
    const b = await start();
    for (let i = 0; i < 3; i++) {
      await stop(a);
      assert.equal(await start(), a, `restart ${i + 1}`);
    }
    assert.equal(server.seen.filter((s) => s.startsWith('RELEASE')).length, 0);
    assert.ok(
      server.seen.some((s) => s.includes(`asking ${a.split(' ')[0]}`)),
      'asked for its address again (option 50)',
    );
    // Two at once: the same two leases, the lowest parked address to the first start.
    await Promise.all([stop(a), stop(b)]);
    assert.deepEqual((await Promise.all([start(), start()])).sort(), [a, b].sort());
  });

  test('a parked lease nobody takes is released after keepMs; then a start gets a new client', async (t) => {
    const { close, server, start, stop } = await setup(50);
    t.after(close);
    const a = await start();
    await stop(a);
    await new Promise((r) => setTimeout(r, 150));
    assert.deepEqual(
      server.seen.filter((s) => s.startsWith('RELEASE')),
      [`RELEASE ${a.split(' ')[1]}`],
    );
    assert.notEqual(await start(), a);
  });

  test("keepMs 0: released at once, as before; with a name, the name's own parked lease", async (t) => {
    const now = await setup(0);
    t.after(() => now.close());
    const a = await now.start();
    await now.stop(a);
    assert.equal(now.server.seen.filter((s) => s.startsWith('RELEASE')).length, 1);
    const named = await setup();
    t.after(() => named.close());
    const web = await named.start('web');
    const db = await named.start('db');
    await named.stop(web);
    await named.stop(db);
    assert.equal(await named.start('db'), db, "db's own, although web's address is lower");
    assert.equal(await named.start('web'), web);
  });

  test("ipvlan: every lease has the parent's MAC and a type-0 client-id of its own; a name finds its own", async (t) => {
    const parent = '02:11:22:33:44:55';
    const { close, server, start, stop } = await setup(undefined, parent);
    t.after(close);
    const [a, b, web] = [await start(), await start(), await start('web')];
    assert.deepEqual(
      [a, b, web].map((x) => x.split(' ')[1]),
      [parent, parent, parent],
    );
    assert.equal(new Set([a, b, web].map((x) => x.split(' ')[0])).size, 3, 'three addresses: three clients');
    const ids = [...server.byClient.keys()];
    assert.equal(ids.length, 3);
    for (const id of ids) assert.match(id, /^00[0-9a-f]{12}$/, 'type 0 + 6 bytes');
    assert.ok(
      server.seen.every((s) => s.split(' ')[1] === parent),
      'chaddr is the parent MAC',
    );
    // The name's parked lease goes to the name, not to the lowest address (all three share the MAC).
    await Promise.all([stop(a), stop(web)]);
    assert.equal(await start('web'), web);
    assert.equal(await start(), a);
  });
});
