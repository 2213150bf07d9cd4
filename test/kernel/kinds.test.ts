// dummy, 802.1q vlan and ipvlan: kinds this machine's kernel lacks. Here they skip with the reason;
// test/vm/kernel-in-vm.test.ts runs this file under a stock kernel with MACNET_REQUIRE_KINDS, where they must pass.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ipJson } from '../lab/sh';
import { nsFixture, requireKind, type NsFixture } from './fixture';

interface IpLink {
  ifname: string;
  link?: string;
  linkinfo?: { info_kind: string; info_data?: Record<string, unknown> };
}

let f: NsFixture;
before(async () => {
  f = await nsFixture('kinds');
  await f.k.links.create({ kind: 'veth', name: 'p0', peer: { name: 'p1' }, up: true });
});
after(() => f.close());

const ipLink = async (name: string) => (await ipJson<IpLink[]>(f.ns.name, 'link', 'show', 'dev', name))[0]!;

test('dummy link: created, up, addressed, deleted', async (t) => {
  if (!(await requireKind(t, f.k, 'dummy', 'p0'))) return;
  const d = await f.k.links.create({ kind: 'dummy', name: 'dm-test', up: true });
  assert.equal(d.kind, 'dummy');
  assert.equal((await ipLink('dm-test')).linkinfo?.info_kind, 'dummy');
  await f.k.addresses.add('dm-test', '198.18.30.1/24');
  // A macvlan on a dummy parent: what an internal network without a parent uses.
  const mv = await f.k.links.create({ kind: 'macvlan', name: 'dm-mv', parent: 'dm-test', mode: 'bridge' });
  assert.equal(mv.parentIndex, d.index);
  await f.k.links.delete('dm-test');
  assert.equal(await f.k.links.find('dm-mv'), undefined, 'children go with their parent');
});

test('802.1q vlan link: id and protocol read back, a macvlan on top, the same id twice refused', async (t) => {
  if (!(await requireKind(t, f.k, 'vlan', 'p0'))) return;
  const v = await f.k.links.create({ kind: 'vlan', name: 'p0.50', parent: 'p0', id: 50, up: true });
  assert.deepEqual(v.data, { kind: 'vlan', id: 50, protocol: '802.1Q' });
  const ip = await ipLink('p0.50');
  assert.equal(ip.linkinfo?.info_kind, 'vlan');
  assert.equal(ip.linkinfo?.info_data?.id, 50);
  assert.equal(ip.link, 'p0');
  const mv = await f.k.links.create({ kind: 'macvlan', name: 'mv-v50', parent: 'p0.50', mode: 'bridge' });
  assert.equal(mv.parentIndex, v.index);
  await assert.rejects(
    f.k.links.create({ kind: 'vlan', name: 'p0.50b', parent: 'p0', id: 50 }),
    (e: Error & { errno?: string }) =>
      /create vlan "p0.50b" on parent "p0": E[A-Z]+: /.test(e.message) && e.errno !== undefined,
  );
  const qinq = await f.k.links.create({ kind: 'vlan', name: 'p0.60', parent: 'p0', id: 60, protocol: '802.1ad' });
  assert.deepEqual(qinq.data, { kind: 'vlan', id: 60, protocol: '802.1ad' });
  await f.k.links.delete('p0.60');
  await f.k.links.delete('p0.50');
  assert.equal(await f.k.links.find('mv-v50'), undefined);
});

for (const mode of ['l2', 'l3', 'l3s'] as const) {
  test(`ipvlan ${mode} link with each flag (bridge, private, vepa): mode and flag read back`, async (t) => {
    if (!(await requireKind(t, f.k, 'ipvlan', 'p0'))) return;
    for (const flag of ['bridge', 'private', 'vepa'] as const) {
      const name = `iv-${mode}-${flag.slice(0, 3)}`;
      const l = await f.k.links.create({ kind: 'ipvlan', name, parent: 'p0', mode, flag });
      assert.deepEqual(l.data, { kind: 'ipvlan', mode, flag });
      const ip = await ipLink(name);
      assert.equal(ip.linkinfo?.info_kind, 'ipvlan');
      assert.equal(String(ip.linkinfo?.info_data?.mode).toLowerCase(), mode);
      await f.k.links.delete(name);
    }
  });
}
