// LAN probing for ipvlan networks, where no probe macvlan can sit beside the children: the driver probes from
// the parent itself. A real kernel with ipvlan (the VM, test/vm), a "LAN device" in a namespace of its own on
// the other end of the parent's veth.
import { Lan } from '../../src/lan';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NetworkDriver } from '../../src/drivers/driver';
import { Kernel } from '../../src/kernel';
import { silentLogger } from '../../src/log';
import { SqliteStore } from '../../src/store/sqlite';
import { TestNetns } from '../lab/netns';
import { ipJson } from '../lab/sh';
import { nsFixture, requireKind, type NsFixture } from '../kernel/fixture';

let f: NsFixture;
let device: TestNetns;
let deviceMac: string;
let dir: string;
let store: SqliteStore;
let drv: NetworkDriver;
let lan: Lan;
before(async () => {
  f = await nsFixture('lan-ipvlan');
  device = await TestNetns.create('lan-ipvlan-dev');
  await f.k.links.create({ kind: 'veth', name: 'eth0', peer: { name: 'dev0' }, up: true });
  await f.k.links.moveTo('dev0', device.path, 'eth0');
  await Kernel.with(device.path, async (k) => {
    await k.links.setUp('eth0');
    await k.addresses.add('eth0', '198.18.60.5/24');
    deviceMac = (await k.links.get('eth0')).mac!;
  });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), `mnt-${process.pid}-lan-ipvlan-`));
  store = SqliteStore.open(path.join(dir, 'state.db'));
  lan = new Lan(f.k, silentLogger, { windowMs: 300 });
  drv = new NetworkDriver(f.k, store, silentLogger, { lan });
});
after(async () => {
  await drv?.close();
  await lan?.close();
  await store?.close();
  fs.rmSync(dir, { recursive: true, force: true });
  await device?.delete();
  await f?.close();
});

const NID = '6a'.repeat(32);

test('ipvlan: probes go out from the parent; an address a LAN device holds is refused with its MAC; nothing is added to the parent', async (t) => {
  if (!(await requireKind(t, f.k, 'ipvlan', 'eth0'))) return;
  const before = await ipJson<{ ifname: string; flags: string[] }[]>(f.ns.name, 'link', 'show');
  await drv.createNetwork({
    NetworkID: NID,
    Options: { 'com.docker.network.generic': { parent: 'eth0', ipvlan_mode: 'l2' } },
    IPv4Data: [{ Pool: '198.18.60.0/24', Gateway: '198.18.60.1/24' }],
  });
  const found = await lan.check(NID, ['198.18.60.5', '198.18.60.6']);
  assert.deepEqual(
    [...found].map(([a, h]) => [a, h.mac, h.reason]),
    [['198.18.60.5', deviceMac, 'answered']],
    'the device answered; .6 is free',
  );
  // With Docker's default IPAM the driver probes at CreateEndpoint.
  await assert.rejects(
    drv.createEndpoint({ networkId: NID, endpointId: '6b'.repeat(32), address: '198.18.60.5/24' }),
    (e: Error & { code?: string }) =>
      e.code === 'ADDRESS_CONFLICT' && e.message.includes(`address 198.18.60.5 is in use on the LAN by ${deviceMac}`),
  );
  await drv.createEndpoint({ networkId: NID, endpointId: '6c'.repeat(32), address: '198.18.60.6/24' });
  const after = await ipJson<{ ifname: string; flags: string[] }[]>(f.ns.name, 'link', 'show');
  assert.deepEqual(
    after.map((l) => [l.ifname, l.flags.sort().join(',')]),
    before.map((l) => [l.ifname, l.flags.sort().join(',')]),
    "no link added, the parent's flags unchanged",
  );
  await drv.deleteEndpoint(NID, '6c'.repeat(32));
  await drv.deleteNetwork(NID);
});

test("ipvlan: macnet scan sweeps from the parent; a LAN device answering for a container's address is a conflict", async (t) => {
  if (!(await requireKind(t, f.k, 'ipvlan', 'eth0'))) return;
  const id = '7a'.repeat(32);
  await drv.createNetwork({
    NetworkID: id,
    Options: { 'com.docker.network.generic': { parent: 'eth0', ipvlan_mode: 'l2' } },
    IPv4Data: [{ Pool: '198.18.60.0/28', Gateway: '198.18.60.1/28' }],
  });
  const parentMac = (await f.k.links.get('eth0')).mac!;
  await drv.createEndpoint({ networkId: id, endpointId: '7b'.repeat(32), address: '198.18.60.7/28' });
  await drv.createEndpoint({ networkId: id, endpointId: '7c'.repeat(32), address: '198.18.60.8/28' });
  // The device takes .8 as well, behind the driver's back: the container's address now answers at its MAC.
  await Kernel.with(device.path, (k) => k.addresses.add('eth0', '198.18.60.8/28'));
  try {
    const r = await drv.scan(id);
    const row = (a: string) => r.rows.find((x) => x.address === a);
    assert.equal(r.asked.ipv4, 14, 'every address of the /28');
    assert.deepEqual(
      [row('198.18.60.5')?.owner, row('198.18.60.5')?.mac, row('198.18.60.5')?.conflict],
      ['unknown', deviceMac, false],
    );
    const own = row('198.18.60.7')!;
    assert.deepEqual([own.owner, own.mac, own.conflict], ['container (this host)', parentMac, false]);
    assert.match(own.note, /from macnet's records: ipvlan children do not hear their parent's requests/);
    const dup = row('198.18.60.8')!;
    assert.equal(dup.conflict, true, JSON.stringify(dup));
    assert.match(dup.note, new RegExp(`^CONFLICT: answered by a MAC that is not its own: ${deviceMac}`));
  } finally {
    await Kernel.with(device.path, (k) => k.addresses.delete('eth0', '198.18.60.8/28'));
    for (const e of ['7b', '7c']) await drv.deleteEndpoint(id, e.repeat(32));
    await drv.deleteNetwork(id);
  }
});
