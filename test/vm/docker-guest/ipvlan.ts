// Guest scenarios: ipvlan modes and flags through `docker network create` / `run` / `exec` (docs/driver.md).
import assert from 'node:assert/strict';
import type { LabHost } from '../../lab/lab';
import { LAN } from '../../lab/lab';
import { address, cannotReach, g, mknet, nsPing, ok, onCleanUp, pingFrom, reaches, scenario, start } from './fixture';

/** An ipvlan network on the host's eth0 in the LAN's subnet, with a range of its own per host. */
const lanNet = (h: LabHost, name: string, range: string, ...opts: string[]): Promise<string> =>
  mknet(h, name, '-o', 'parent=eth0', '--subnet', LAN.subnet4, '--gateway', LAN.router4, '--ip-range', range, ...opts);

/** ipvlan children carry their parent's MAC: what tells an ipvlan endpoint from a macvlan one from inside. */
async function assertIpvlanChild(h: LabHost, ctr: string): Promise<void> {
  const mac = await ok(h, 'exec', ctr, 'cat', '/sys/class/net/eth0/address');
  assert.equal(mac, h.mac, `${ctr}'s eth0 carries ${h.name}'s MAC (an ipvlan child of eth0)`);
}

scenario('ipvlan-l2', async () => {
  const { h1, h2 } = g();
  await lanNet(h1, 'l2', '198.18.15.64/27', '-o', 'ipvlan_mode=l2');
  await lanNet(h2, 'l2', '198.18.15.96/27', '-o', 'ipvlan_mode=l2');
  await start(h1, 'a1', 'l2');
  await start(h1, 'a2', 'l2');
  await start(h2, 'b1', 'l2');
  await assertIpvlanChild(h1, 'a1');
  await assertIpvlanChild(h2, 'b1');
  const [a1, a2, b1] = [await address(h1, 'a1', 'l2'), await address(h1, 'a2', 'l2'), await address(h2, 'b1', 'l2')];
  await reaches(h1, 'a1', LAN.router4);
  await reaches(h1, 'a1', a2);
  await reaches(h1, 'a2', a1);
  await reaches(h1, 'a1', b1);
  await reaches(h2, 'b1', a2);
  const r = await ok(h1, 'exec', 'a1', 'ip', 'route');
  assert.match(r, new RegExp(`^default via ${LAN.router4.replace(/\./g, '\\.')} dev eth0`, 'm'), r);
});

for (const mode of ['l3', 'l3s'] as const) {
  scenario(mode === 'l3' ? 'ipvlan-l3' : 'ipvlan-l3s', async () => {
    const { lab, h1 } = g();
    // One network, two subnets: two ipvlan networks cannot share a parent (the error table's row).
    await mknet(
      h1,
      'l3',
      '-o',
      'parent=eth0',
      '-o',
      `ipvlan_mode=${mode}`,
      '--subnet',
      '198.18.40.0/24',
      '--subnet',
      '198.18.41.0/24',
    );
    await start(h1, 'c40', 'l3', '--ip', '198.18.40.10');
    await start(h1, 'c41', 'l3', '--ip', '198.18.41.10');
    await reaches(h1, 'c40', '198.18.41.10');
    await reaches(h1, 'c41', '198.18.40.10');
    for (const c of ['c40', 'c41']) {
      const routes = await ok(h1, 'exec', c, 'ip', 'route');
      assert.match(routes, /^default dev eth0\b/m, `${c}: a device default route\n${routes}`);
      assert.doesNotMatch(routes, / via /, `${c}: no gateway\n${routes}`);
      const gw = await ok(h1, 'inspect', c, '-f', '{{(index .NetworkSettings.Networks "l3").Gateway}}');
      assert.equal(gw, '', `${c}: docker inspect shows no gateway`);
    }
    // The LAN: a route that says the subnet is on the wire finds nobody (l3 children answer no ARP, the
    // parent does not answer for them); a route to the host reaches them, and they answer through the parent.
    await lab.routerExec('ip', 'route', 'add', '198.18.40.0/24', 'dev', 'sw0');
    onCleanUp(() => lab.routerExec('ip', 'route', 'del', '198.18.40.0/24'));
    const onLink = await nsPing(lab.lan.path, '198.18.40.10', 2);
    assert.notEqual(onLink.code, 0, `the LAN must not reach 198.18.40.10 on the wire: ${onLink.stdout}`);
    await lab.routerExec('ip', 'route', 'replace', '198.18.40.0/24', 'via', h1.ipv4);
    const routed = await nsPing(lab.lan.path, '198.18.40.10');
    assert.equal(routed.code, 0, `the LAN reaches 198.18.40.10 through ${h1.ipv4}: ${routed.stdout}${routed.stderr}`);
    await reaches(h1, 'c40', LAN.router4);
  });
}

scenario('ipvlan-private', async () => {
  const { lab, h1 } = g();
  await lanNet(h1, 'pv', '198.18.15.64/27', '-o', 'ipvlan_flag=private');
  await start(h1, 'p1', 'pv');
  await start(h1, 'p2', 'pv');
  const [p1, p2] = [await address(h1, 'p1', 'pv'), await address(h1, 'p2', 'pv')];
  await reaches(h1, 'p1', LAN.router4);
  await reaches(h1, 'p2', LAN.router4);
  for (const a of [p1, p2]) {
    const r = await nsPing(lab.lan.path, a);
    assert.equal(r.code, 0, `the gateway reaches ${a}: ${r.stdout}${r.stderr}`);
  }
  await cannotReach(h1, 'p1', p2);
  await cannotReach(h1, 'p2', p1);
});

scenario('ipvlan-vepa', async () => {
  const { lab, h1 } = g();
  await lanNet(h1, 'vp', '198.18.15.64/27', '-o', 'ipvlan_flag=vepa');
  await start(h1, 'v1', 'vp');
  await start(h1, 'v2', 'vp');
  const v2 = await address(h1, 'v2', 'vp');
  await reaches(h1, 'v1', LAN.router4);
  // vepa sends even traffic between siblings to the wire; the switch sends it back only with hairpin on h1's port.
  await cannotReach(h1, 'v1', v2);
  const port = `p${h1.index}`;
  await lab.routerExec('ip', 'link', 'set', port, 'type', 'bridge_slave', 'hairpin', 'on');
  onCleanUp(() => lab.routerExec('ip', 'link', 'set', port, 'type', 'bridge_slave', 'hairpin', 'off'));
  // Three tries: the first may go to resolving v2 anew after the failed attempts above.
  const r = await h1.docker('exec', 'v1', 'ping', '-c', '3', '-W', '2', v2);
  assert.equal(r.code, 0, `with hairpin, v1 reaches v2 through the switch: ${r.stdout}${r.stderr}`);
  await reaches(h1, 'v2', await address(h1, 'v1', 'vp'));
  await lab.routerExec('ip', 'link', 'set', port, 'type', 'bridge_slave', 'hairpin', 'off');
  // Not `cannotReach` at once: v1 has v2's neighbour entry now, which does not change what the switch does.
  const again = await pingFrom(h1, 'v1', v2);
  assert.notEqual(again.code, 0, `hairpin off again: v1 must not reach v2: ${again.stdout}`);
});
