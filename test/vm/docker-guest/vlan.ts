// Guest scenarios: 802.1q parents (parent=eth0.<vid>) through Docker (docs/driver.md, "Parents").
import assert from 'node:assert/strict';
import type { LabHost } from '../../lab/lab';
import {
  address,
  cannotReach,
  create,
  g,
  hostLinks,
  madeLink,
  mknet,
  ok,
  onCleanUp,
  reaches,
  scenario,
  start,
} from './fixture';

const S70 = ['--subnet', '198.18.70.0/24'];

interface VlanLink {
  ifname: string;
  mtu: number;
  link?: string;
  linkinfo?: { info_kind?: string; info_data?: { id?: number; protocol?: string } };
}

/** The link as the kernel shows it in the host, or undefined. */
async function link(h: LabHost, name: string): Promise<VlanLink | undefined> {
  const r = await h.exec('ip', '-json', '-details', 'link', 'show', name);
  return r.code === 0 ? (JSON.parse(r.stdout) as VlanLink[])[0] : undefined;
}

async function assertVlan(h: LabHost, name: string, id: number): Promise<void> {
  const l = await link(h, name);
  assert.ok(l, `${h.name}: ${name} exists`);
  assert.deepEqual([l.linkinfo?.info_kind, l.linkinfo?.info_data?.id, l.link], ['vlan', id, 'eth0'], `${name}`);
}

scenario('vlan-lifecycle', async () => {
  const { h1 } = g();
  assert.equal(await link(h1, 'eth0.50'), undefined, 'no eth0.50 before the first network');
  await mknet(h1, 'v50a', '-o', 'parent=eth0.50', '--subnet', '198.18.50.0/24');
  await assertVlan(h1, 'eth0.50', 50);
  await mknet(h1, 'v50b', '-o', 'parent=eth0.50', '--subnet', '198.18.51.0/24');
  await ok(h1, 'network', 'rm', 'v50a');
  await assertVlan(h1, 'eth0.50', 50);
  await ok(h1, 'network', 'rm', 'v50b');
  assert.equal(await link(h1, 'eth0.50'), undefined, 'eth0.50 went with the last network on it');

  // A vlan link the user made stays, also after an ipvlan network on it.
  const made = await h1.exec('ip', 'link', 'add', 'link', 'eth0', 'name', 'eth0.60', 'type', 'vlan', 'id', '60');
  assert.equal(made.code, 0, made.stderr);
  madeLink(h1, 'eth0.60');
  await h1.exec('ip', 'link', 'set', 'eth0.60', 'up');
  await mknet(h1, 'v60', '-o', 'parent=eth0.60', '-o', 'ipvlan_mode=l2', '--subnet', '198.18.60.0/24');
  await ok(h1, 'network', 'rm', 'v60');
  await assertVlan(h1, 'eth0.60', 60);
});

scenario('vlan-isolation', async () => {
  const { lab, h1, h2 } = g();
  // The LAN side of one subnet on both VLANs: the router on vlan 50 (.1), a device on vlan 60 (.2). The switch
  // is not VLAN-aware: it carries the tagged frames of both VLANs on the same ports, a trunk.
  const sh = async (...a: string[]) => assert.equal((await lab.routerExec('ip', ...a)).code, 0, a.join(' '));
  await sh('link', 'add', 'link', 'sw0', 'name', 'sw0.50', 'type', 'vlan', 'id', '50');
  onCleanUp(() => lab.routerExec('ip', 'link', 'del', 'sw0.50'));
  await sh('addr', 'add', '198.18.50.1/24', 'dev', 'sw0.50');
  await sh('link', 'set', 'sw0.50', 'up');
  const dev = await lab.lanDevice('vlan60', 'pv60');
  onCleanUp(() => lab.routerExec('ip', 'link', 'del', 'pv60'));
  for (const a of [
    ['link', 'add', 'link', 'eth0', 'name', 'eth0.60', 'type', 'vlan', 'id', '60'],
    ['addr', 'add', '198.18.50.2/24', 'dev', 'eth0.60'],
    ['link', 'set', 'eth0', 'up'],
    ['link', 'set', 'eth0.60', 'up'],
  ])
    assert.equal((await dev.exec('ip', ...a)).code, 0, a.join(' '));

  // The same subnet on both VLANs (two hosts, so two IPAMs): only the tag keeps them apart.
  const net = (vid: number, range: string) => [
    '-o',
    `parent=eth0.${vid}`,
    '-o',
    'ipvlan_mode=l2',
    '--subnet',
    '198.18.50.0/24',
    '--gateway',
    '198.18.50.1',
    '--ip-range',
    range,
  ];
  await mknet(h1, 'n50', ...net(50, '198.18.50.64/27'));
  await mknet(h2, 'n60', ...net(60, '198.18.50.96/27'));
  await start(h1, 'c50', 'n50');
  await start(h2, 'c60', 'n60');
  const c50 = await address(h1, 'c50', 'n50');
  const c60 = await address(h2, 'c60', 'n60');
  await reaches(h1, 'c50', '198.18.50.1');
  await reaches(h2, 'c60', '198.18.50.2');
  await cannotReach(h1, 'c50', '198.18.50.2');
  await cannotReach(h2, 'c60', '198.18.50.1');
  await cannotReach(h1, 'c50', c60);
  await cannotReach(h2, 'c60', c50);
});

scenario('vlan-mtu', async () => {
  const { h1 } = g();
  const refused = async (parent: string, mtu: number, has: string, limit: number) => {
    const r = await create(h1, 'm', '-o', `parent=${parent}`, '-o', 'ipvlan_mode=l2', '-o', `mtu=${mtu}`, ...S70);
    assert.notEqual(r.code, 0, `mtu=${mtu} on ${parent} must be refused`);
    assert.equal(
      r.stderr.trim(),
      `Error response from daemon: remote: MTU_TOO_LARGE: option mtu=${mtu} is larger than the MTU ${limit} of ` +
        `parent "${has}"; use at most ${limit}`,
    );
  };
  // A vlan macnet is to create gets its base's MTU, so the base's bounds it; nothing is left of the attempt.
  await refused('eth0.70', 1600, 'eth0', 1500);
  assert.deepEqual((await hostLinks(h1)).sort(), ['eth0', 'lo'], 'the refused create left no eth0.70');
  await mknet(h1, 'm', '-o', 'parent=eth0.70', '-o', 'ipvlan_mode=l2', '-o', 'mtu=1400', ...S70);
  assert.equal((await link(h1, 'eth0.70'))?.mtu, 1500, "the vlan has its base's MTU");
  await start(h1, 'mc', 'm');
  assert.equal(await ok(h1, 'exec', 'mc', 'cat', '/sys/class/net/eth0/mtu'), '1400');
  await ok(h1, 'rm', '-f', 'mc');
  await ok(h1, 'network', 'rm', 'm');
  assert.equal(await link(h1, 'eth0.70'), undefined, 'eth0.70 went with its network');

  // A vlan of the user's with a smaller MTU than its base: its own MTU bounds the network.
  const add = ['link', 'add', 'link', 'eth0', 'name', 'eth0.71', 'mtu', '1300', 'type', 'vlan', 'id', '71'];
  assert.equal((await h1.exec('ip', ...add)).code, 0);
  madeLink(h1, 'eth0.71');
  await refused('eth0.71', 1400, 'eth0.71', 1300);
  await mknet(h1, 'm', '-o', 'parent=eth0.71', '-o', 'ipvlan_mode=l2', '-o', 'mtu=1300', ...S70);
});
