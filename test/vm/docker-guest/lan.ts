// Guest scenarios: ipvlan and the host and the LAN around it: host access (IPv4 and IPv6), `macnet scan`.
import assert from 'node:assert/strict';
import type { Row } from '../../../src/drivers/inventory';
import { LAN } from '../../lab/lab';
import { address, g, hostLinks, mknet, nsPing, ok, onCleanUp, reaches, scenario, start } from './fixture';
import { scanAsUser } from '../../lab/readme';

scenario('ipvlan-host-access', async () => {
  const { h1 } = g();
  await mknet(
    h1,
    'ha',
    '-o',
    'parent=eth0',
    '-o',
    'ipvlan_mode=l2',
    '-o',
    'host_access=true',
    '--subnet',
    LAN.subnet4,
    '--gateway',
    LAN.router4,
    '--ip-range',
    '198.18.15.64/27',
    '--ipv6',
    '--subnet',
    LAN.subnet6,
    '--gateway',
    LAN.router6,
  );
  await start(h1, 'c1', 'ha');
  const [c4, c6] = [await address(h1, 'c1', 'ha'), await address(h1, 'c1', 'ha', true)];
  assert.ok(c6, 'the container has an IPv6 address');
  const link = (await hostLinks(h1)).find((l) => /^mnh[0-9a-f]{10}$/.test(l));
  assert.ok(link, `a host-access link in ${h1.name}`);
  const info = JSON.parse((await h1.exec('ip', '-json', '-details', 'addr', 'show', 'dev', link)).stdout) as {
    linkinfo?: { info_kind?: string };
    addr_info: { family: string; local: string; scope: string }[];
  }[];
  assert.equal(info[0]?.linkinfo?.info_kind, 'ipvlan', 'the host-access link is an ipvlan child of eth0');
  const host6 = info[0]!.addr_info.find((a) => a.family === 'inet6' && a.scope === 'global')?.local;
  assert.ok(host6, `the host-access link has an IPv6 address: ${JSON.stringify(info)}`);
  // Host to container, both families; container to host, at its LAN address (v4) and host-access address (v6).
  for (const a of [c4, c6]) {
    const r = await nsPing(h1.ns.path, a);
    assert.equal(r.code, 0, `${h1.name} reaches its container at ${a}: ${r.stdout}${r.stderr}`);
  }
  await reaches(h1, 'c1', h1.ipv4);
  await reaches(h1, 'c1', host6);
  // The LAN still reaches both, the host's own traffic unchanged.
  await reaches(h1, 'c1', LAN.router4);
  await reaches(h1, 'c1', LAN.router6);
});

const scan = scanAsUser;

scenario('ipvlan-scan', async (t) => {
  const { lab, h1, h2 } = g();
  const dev = await lab.lanDevice('scandev', 'psd');
  onCleanUp(() => lab.routerExec('ip', 'link', 'del', 'psd'));
  await dev.exec('ip', 'addr', 'add', '198.18.15.2/24', 'dev', 'eth0');
  await dev.exec('ip', 'link', 'set', 'eth0', 'up');
  const devMac = (
    JSON.parse((await dev.exec('ip', '-json', 'link', 'show', 'eth0')).stdout) as { address: string }[]
  )[0]!.address;
  const opts = ['-o', 'parent=eth0', '-o', 'ipvlan_mode=l2', '--subnet', LAN.subnet4, '--gateway', LAN.router4];
  await mknet(h1, 'sc', ...opts, '--ip-range', '198.18.15.64/27');
  await mknet(h2, 'sc', ...opts, '--ip-range', '198.18.15.96/27');
  await start(h1, 's1', 'sc');
  await start(h2, 's2', 'sc');
  const [s1, s2] = [await address(h1, 's1', 'sc'), await address(h2, 's2', 'sc')];
  const r = await scan(h1, 'sc', '--json');
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Row[];
  t.diagnostic(rows.map((x) => `${x.address} ${x.mac} ${x.owner} ${x.note}`).join('\n'));
  const row = (ip: string) => {
    const x = rows.find((y) => y.address === ip);
    assert.ok(x, `${ip} missing from the scan`);
    return x;
  };
  // ipvlan children carry the parent's MAC: this host's container, from macnet's records; the other host's
  // container answers with that host's MAC, which carries no macnet signature.
  assert.deepEqual([row(s1).owner, row(s1).mac], ['container (this host)', h1.mac]);
  assert.deepEqual([row(s2).owner, row(s2).mac], ['unknown', h2.mac]);
  assert.equal(row(h1.ipv4).owner, 'host');
  assert.equal(row(LAN.router4).owner, 'gateway');
  assert.deepEqual([row('198.18.15.2').owner, row('198.18.15.2').mac], ['unknown', devMac]);
  assert.deepEqual(
    rows.filter((x) => x.conflict).map((x) => x.address),
    [],
    'no conflict: containers sharing the parent MAC are not duplicates',
  );
  const text = await scan(h1, 'sc');
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^ADDRESS +MAC +OWNER +NOTE$/m);
  assert.equal(await ok(h1, 'network', 'inspect', '-f', '{{index .Options "ipvlan_mode"}}', 'sc'), 'l2');
});
