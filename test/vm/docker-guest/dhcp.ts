// Guest scenario: DHCP mode on an ipvlan network against dnsmasq on the LAN (docs/dhcp.md). Every container
// carries the parent's MAC, so the server tells their leases apart by the client-id alone.
import assert from 'node:assert/strict';
import { Dnsmasq } from '../../dhcp/dnsmasq';
import { LAN } from '../../lab/lab';
import { address, g, mknet, ok, onCleanUp, reaches, scenario, start } from './fixture';

scenario('ipvlan-dhcp', async () => {
  const { lab, h1 } = g();
  // --no-ping: dnsmasq's 3 s ping check before an OFFER leaves little of macnet's 5 s bound under emulation.
  const server = await Dnsmasq.start(lab.lan, { range: '198.18.15.100,198.18.15.149,255.255.255.0,10m', ping: false });
  onCleanUp(() => server.stop());
  await mknet(
    h1,
    'dh',
    '--ipam-opt',
    'mode=dhcp',
    '--subnet',
    LAN.subnet4,
    '--gateway',
    LAN.router4,
    '-o',
    'parent=eth0',
    '-o',
    'ipvlan_mode=l2',
  );
  await start(h1, 'd1', 'dh');
  await start(h1, 'd2', 'dh');
  const ips = [await address(h1, 'd1', 'dh'), await address(h1, 'd2', 'dh')];
  assert.notEqual(ips[0], ips[1], 'two addresses');
  const leases = server.leases();
  for (const [i, ip] of ips.entries()) {
    assert.match(ip, /^198\.18\.15\.1([0-3]\d|4\d)$/, `d${i + 1}'s address comes from the server's range`);
    const l = leases.find((x) => x.ip === ip);
    assert.ok(l, `the server holds a lease of ${ip}: ${JSON.stringify(leases)}`);
    assert.equal(l.mac, h1.mac, "the lease is for the parent's MAC, which the container carries");
  }
  assert.equal(await ok(h1, 'exec', 'd2', 'cat', '/sys/class/net/eth0/address'), h1.mac, 'an ipvlan child');
  const ids = ips.map((ip) => leases.find((x) => x.ip === ip)!.clientId);
  assert.notEqual(ids[0], ids[1], `each container's lease has a client-id of its own: ${ids.join(' ')}`);
  for (const id of ids) assert.match(id, /^00(:[0-9a-f]{2}){6}$/, 'client-id type 0 (not a hardware address)');
  await reaches(h1, 'd1', LAN.router4);
  await reaches(h1, 'd1', ips[1]!);
  await reaches(h1, 'd2', ips[0]!);
});
