// Addresses, routes and neighbours through src/kernel, checked with `ip -json`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ipJson } from '../lab/sh';
import { nsFixture, type NsFixture } from './fixture';

interface IpAddr {
  addr_info: { family: string; local: string; prefixlen: number; nodad?: boolean }[];
}
interface IpRoute {
  dst: string;
  gateway?: string;
  dev: string;
  metric?: number;
  flags: string[];
  scope?: string;
}

let f: NsFixture;
before(async () => {
  f = await nsFixture('addr');
  await f.k.links.create({ kind: 'veth', name: 'p0', peer: { name: 'p1' }, up: true });
  await f.k.links.setUp('p1');
});
after(() => f.close());

const addrsOf = async (dev: string) =>
  (await ipJson<IpAddr[]>(f.ns.name, 'addr', 'show', 'dev', dev))[0]!.addr_info.filter(
    (a) => !a.local.startsWith('fe80'),
  );

test('IPv4 and IPv6 addresses: add, list, delete', async () => {
  await f.k.addresses.add('p0', '198.18.15.5/24');
  await f.k.addresses.add('p0', '2001:db8:15::5/64', { nodad: true });
  const ip = await addrsOf('p0');
  assert.deepEqual(ip.map((a) => `${a.local}/${a.prefixlen}`).sort(), ['198.18.15.5/24', '2001:db8:15::5/64']);
  assert.equal(ip.find((a) => a.family === 'inet6')!.nodad, true);
  const ours = (await f.k.addresses.list({ link: 'p0' })).filter((a) => a.scope === 0);
  assert.deepEqual(ours.map((a) => `${a.address}/${a.prefix}`).sort(), ['198.18.15.5/24', '2001:db8:15::5/64']);
  const v6 = ours.find((a) => a.family === 6)!;
  assert.equal(v6.nodad, true);
  assert.equal(v6.tentative, false); // nodad: usable at once
  assert.deepEqual(
    (await f.k.addresses.list({ link: 'p0', family: 4 })).map((a) => a.address),
    ['198.18.15.5'],
  );
  await assert.rejects(f.k.addresses.add('p0', '198.18.15.5/24'), /add address 198.18.15.5\/24 to link "p0": EEXIST: /);
  await f.k.addresses.delete('p0', '198.18.15.5/24');
  await f.k.addresses.delete('p0', '2001:db8:15::5/64');
  assert.deepEqual(await addrsOf('p0'), []);
  await assert.rejects(
    f.k.addresses.add('p0', '198.18.15.5'),
    /address "198.18.15.5" is not valid: write address\/prefix/,
  );
  await assert.rejects(
    f.k.addresses.add('nope0', '198.18.15.5/24'),
    /add address 198.18.15.5\/24 to link "nope0": ENODEV: no such device$/,
  );
});

test('routes: device route, gateway route with metric, onlink, IPv6 default; idempotent delete', async () => {
  await f.k.addresses.add('p0', '198.18.15.5/24');
  await f.k.addresses.add('p0', '2001:db8:15::5/64', { nodad: true });
  await f.k.routes.add({ dst: '198.18.20.0/24', dev: 'p0' });
  await f.k.routes.add({ dst: '198.18.21.0/24', gateway: '198.18.15.1', metric: 77 });
  await f.k.routes.add({ dst: '198.18.22.0/24', gateway: '198.18.99.1', dev: 'p0', onlink: true });
  await f.k.routes.add({ dst: 'default', family: 6, gateway: '2001:db8:15::1', dev: 'p0' });
  const v4 = await ipJson<IpRoute[]>(f.ns.name, 'route', 'show');
  const r20 = v4.find((r) => r.dst === '198.18.20.0/24')!;
  assert.equal(r20.dev, 'p0');
  assert.equal(r20.scope, 'link');
  const r21 = v4.find((r) => r.dst === '198.18.21.0/24')!;
  assert.deepEqual([r21.gateway, r21.metric, r21.dev], ['198.18.15.1', 77, 'p0']);
  assert.ok(v4.find((r) => r.dst === '198.18.22.0/24')!.flags.includes('onlink'));
  const v6 = await ipJson<IpRoute[]>(f.ns.name, '-6', 'route', 'show');
  assert.equal(v6.find((r) => r.dst === 'default')?.gateway, '2001:db8:15::1');
  // The kernel layer lists the same.
  const ours = await f.k.routes.list();
  assert.ok(ours.some((r) => r.dst === '198.18.21.0/24' && r.gateway === '198.18.15.1' && r.metric === 77));
  assert.ok(ours.some((r) => r.dst === '198.18.22.0/24' && r.onlink));
  assert.ok(ours.some((r) => r.family === 6 && r.dst === 'default' && r.gateway === '2001:db8:15::1'));
  await assert.rejects(
    f.k.routes.add({ dst: '198.18.21.0/24', gateway: '198.18.15.1', metric: 77 }),
    /add route 198.18.21.0\/24 via 198.18.15.1 metric 77: EEXIST: /,
  );
  for (const r of [
    { dst: '198.18.20.0/24', dev: 'p0' },
    { dst: '198.18.21.0/24', gateway: '198.18.15.1', metric: 77 },
    { dst: '198.18.22.0/24', gateway: '198.18.99.1', dev: 'p0' },
    { dst: 'default', family: 6 as const, gateway: '2001:db8:15::1' },
  ]) {
    assert.equal(await f.k.routes.deleteIfExists(r), true);
    assert.equal(await f.k.routes.deleteIfExists(r), false);
  }
  assert.equal(
    (await ipJson<IpRoute[]>(f.ns.name, 'route', 'show')).filter((r) => r.dst !== '198.18.15.0/24').length,
    0,
  );
  await assert.rejects(f.k.routes.add({ dst: '198.18.23.0/24' }), /give a gateway, a device, or both/);
  await assert.rejects(
    f.k.routes.add({ dst: '198.18.23.0/33', dev: 'p0' }),
    /route destination "198.18.23.0\/33" is not valid/,
  );
  await assert.rejects(
    f.k.routes.add({ dst: '198.18.23.0/24', gateway: '2001:db8::1' }),
    /route gateway "2001:db8::1" is not valid: use an IPv4 address/,
  );
  await f.k.addresses.delete('p0', '198.18.15.5/24');
  await f.k.addresses.delete('p0', '2001:db8:15::5/64');
});

test('neighbours: set permanent entries, list, delete', async () => {
  await f.k.neighbours.set('p0', '198.18.15.9', '02:00:00:00:00:09');
  await f.k.neighbours.set('p0', '2001:db8:15::9', '02:00:00:00:00:0a');
  const ip = await ipJson<{ dst: string; lladdr: string; state: string[] }[]>(f.ns.name, 'neigh', 'show', 'dev', 'p0');
  assert.deepEqual(ip.map((n) => [n.dst, n.lladdr, n.state[0]]).sort(), [
    ['198.18.15.9', '02:00:00:00:00:09', 'PERMANENT'],
    ['2001:db8:15::9', '02:00:00:00:00:0a', 'PERMANENT'],
  ]);
  const ours = await f.k.neighbours.list({ link: 'p0' });
  assert.ok(ours.some((n) => n.address === '198.18.15.9' && n.mac === '02:00:00:00:00:09' && n.state === 'permanent'));
  // Replacing an entry is not an error (a re-created container with a new MAC).
  await f.k.neighbours.set('p0', '198.18.15.9', '02:00:00:00:00:19');
  assert.equal(
    (await f.k.neighbours.list({ link: 'p0', family: 4 })).find((n) => n.address === '198.18.15.9')?.mac,
    '02:00:00:00:00:19',
  );
  await f.k.neighbours.delete('p0', '198.18.15.9');
  await f.k.neighbours.delete('p0', '2001:db8:15::9');
  assert.deepEqual(
    (await f.k.neighbours.list({ link: 'p0' })).filter((n) => n.state === 'permanent'),
    [],
  );
});
