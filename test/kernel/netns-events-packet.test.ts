// Namespaces as targets (by path and by pid), link moves, event subscriptions and packet sockets.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { ETH_P_ARP, Kernel, type KernelEvent } from '../../src/kernel';
import { isMacnetError } from '../../src/errors';
import { ipJson } from '../lab/sh';
import { TestNetns } from '../lab/netns';
import { nsFixture, type NsFixture } from './fixture';

let f: NsFixture;
let other: TestNetns;
before(async () => {
  f = await nsFixture('move');
  other = await TestNetns.create('move-target');
  await f.k.links.create({ kind: 'veth', name: 'p0', peer: { name: 'p1' }, up: true });
});
after(async () => {
  await f.close();
  await other.delete();
});

test('a link moves to another namespace by path, renamed on the way, and works there', async () => {
  await f.k.links.create({ kind: 'macvlan', name: 'mv-move', parent: 'p0', mac: '02:00:00:00:bb:01' });
  await f.k.links.moveTo('mv-move', other.path, 'eth0');
  assert.equal(await f.k.links.find('mv-move'), undefined);
  await Kernel.with(other.path, async (k) => {
    const l = await k.links.get('eth0');
    assert.equal(l.kind, 'macvlan');
    assert.equal(l.mac, '02:00:00:00:bb:01');
    await k.addresses.add('eth0', '198.18.16.2/24');
    await k.links.setUp('eth0');
    const ip = await ipJson<{ addr_info: { local: string }[] }[]>(other.name, 'addr', 'show', 'dev', 'eth0');
    assert.ok(ip[0]!.addr_info.some((a) => a.local === '198.18.16.2'));
    await k.links.delete('eth0');
  });
});

test('a link moves to the namespace of a process given by pid, and Kernel opens /proc/PID/ns/net', async () => {
  const child = spawn('nsenter', [`--net=${other.path}`, 'sleep', '30'], { stdio: 'ignore' });
  try {
    // nsenter execs sleep in place: the pid is the sleeping process once it has entered the namespace.
    await new Promise((r) => setTimeout(r, 200));
    await f.k.links.create({ kind: 'macvlan', name: 'mv-pid', parent: 'p0' });
    await f.k.links.moveTo('mv-pid', { pid: child.pid! });
    await Kernel.with({ pid: child.pid! }, async (k) => {
      assert.equal((await k.links.get('mv-pid')).kind, 'macvlan');
      await k.links.delete('mv-pid');
    });
  } finally {
    child.kill('SIGKILL');
  }
});

test('a namespace that does not exist is NETNS_NOT_FOUND with the path in the message', async () => {
  assert.throws(
    () => Kernel.open('/run/netns/mnt-does-not-exist'),
    (e: Error) => {
      assert.ok(isMacnetError(e, 'NETNS_NOT_FOUND'));
      assert.match(e.message, /\/run\/netns\/mnt-does-not-exist/);
      return true;
    },
  );
  await f.k.links.create({ kind: 'macvlan', name: 'mv-nons', parent: 'p0' });
  await assert.rejects(f.k.links.moveTo('mv-nons', '/run/netns/mnt-does-not-exist'), (e: Error) =>
    isMacnetError(e, 'NETNS_NOT_FOUND'),
  );
  assert.ok(await f.k.links.find('mv-nons'), 'nothing changed');
  await f.k.links.delete('mv-nons');
});

test('events: link and address changes arrive from the subscribed namespace', async () => {
  const events = f.k.subscribe();
  const seen: KernelEvent[] = [];
  events.on('event', (e: KernelEvent) => seen.push(e));
  try {
    const created = events.waitFor((e) => e.type === 'link' && e.action === 'new' && e.link.name === 'mv-ev');
    await f.k.links.create({ kind: 'macvlan', name: 'mv-ev', parent: 'p0', up: true });
    const ev = await created;
    assert.equal(ev.type === 'link' && ev.link.kind, 'macvlan');
    const addr = events.waitFor(
      (e) => e.type === 'address' && e.action === 'new' && e.address.address === '2001:db8:16::7',
    );
    await f.k.addresses.add('mv-ev', '2001:db8:16::7/64', { nodad: true });
    await addr;
    const gone = events.waitFor((e) => e.type === 'link' && e.action === 'del' && e.link.name === 'mv-ev');
    await f.k.links.delete('mv-ev');
    await gone;
    assert.ok(seen.some((e) => e.type === 'address' && e.action === 'del' && e.address.address === '2001:db8:16::7'));
  } finally {
    events.close();
  }
});

function arpRequest(srcMac: string, srcIp: string, dstIp: string): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt16BE(1, 0); // Ethernet
  b.writeUInt16BE(0x0800, 2); // IPv4
  b.writeUInt8(6, 4);
  b.writeUInt8(4, 5);
  b.writeUInt16BE(1, 6); // request
  Buffer.from(srcMac.split(':').map((x) => parseInt(x, 16))).copy(b, 8);
  Buffer.from(srcIp.split('.').map(Number)).copy(b, 14);
  Buffer.from(dstIp.split('.').map(Number)).copy(b, 24);
  return b;
}

test("packet socket in another namespace: an ARP request gets the owner's reply", async () => {
  // p1 goes into `other` with 198.18.17.2; we ask for it from p0 and expect its MAC in the reply.
  await f.k.links.moveTo('p1', other.path);
  const target = await Kernel.with(other.path, async (k) => {
    await k.addresses.add('p1', '198.18.17.2/24');
    await k.links.setUp('p1');
    return k.links.get('p1');
  });
  const p0 = await f.k.links.get('p0');
  const sock = await f.k.openPacketSocket('p0', { protocol: ETH_P_ARP });
  try {
    const reply = new Promise<{ mac: string; op: number }>((resolve) => {
      sock.on('packet', (p: { data: Buffer; srcMac: string }) => {
        if (p.data.readUInt16BE(6) === 2) resolve({ mac: p.srcMac, op: 2 });
      });
    });
    sock.send(arpRequest(p0.mac!, '198.18.17.1', '198.18.17.2'), 'ff:ff:ff:ff:ff:ff');
    const got = await Promise.race([
      reply,
      new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no ARP reply in 3 s')), 3000)),
    ]);
    assert.equal(got.mac, target.mac);
  } finally {
    sock.close();
  }
});
