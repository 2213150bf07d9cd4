// doctor's live checks on the simulated LAN: each pitfall the lab can produce, with the severity a user sees, and
// a healthy lab host reported healthy. The checks run as the CLI will, in their own process inside a lab host's
// namespace (live.ts). The LAN that drops frames from unknown MACs is an nftables bridge filter on the lab's switch
// that passes only the host's own MAC on its port (what port security or a hypervisor's vSwitch does).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { worst } from '../../src/doctor/finding';
import { Lab, LAN, which } from '../lab/lab';
import type { TestNetns } from '../lab/netns';
import { run, sh } from '../lab/sh';
import { checksIn, finding, startChecksIn } from './live';

let lab: Lab;
before(async () => {
  lab = await Lab.create({ hosts: 2, ipv6: true });
});
after(async () => {
  await lab?.destroy();
});

/** A LAN device (its own namespace, eth0 a veth into the switch through `port`), eth0 up with an address. */
async function device(label: string, port: string, octet: number): Promise<TestNetns> {
  const ns = await lab.lanDevice(label, port);
  await sh('ip', '-n', ns.name, 'addr', 'add', `198.18.15.${octet}/24`, 'dev', 'eth0');
  await sh('ip', '-n', ns.name, 'link', 'set', 'eth0', 'up');
  await sh('ip', '-n', ns.name, 'route', 'add', 'default', 'via', LAN.router4);
  return ns;
}

test('a healthy lab host is reported healthy: parent, sysctls and a new MAC over ARP and NDP all ok', async (t) => {
  const h = lab.hosts[0]!;
  const fs = await checksIn(h.ns.path, ['parent', 'sysctls', 'new-mac'], { parent: 'eth0' });
  for (const f of fs) assert.equal(f.severity, 'ok', `${f.check}: ${f.summary}`);
  assert.deepEqual(
    fs.map((f) => f.check),
    [
      'parent.exists',
      'parent.up',
      'parent.carrier',
      'parent.passthru',
      'parent.ipvlan',
      'sysctl.rp_filter',
      'sysctl.arp_ignore',
      'sysctl.arp_filter',
      'sysctl.arp_announce',
      'lan.new-mac',
    ],
  );
  const nm = finding(fs, 'lan.new-mac');
  assert.equal(nm.detail?.gateway4, LAN.router4, 'the default route gateway, read over netlink');
  assert.equal(nm.detail?.gateway6, LAN.router6);
  for (const k of ['parentArpMs', 'childArpMs', 'parentNdpMs', 'childNdpMs'])
    assert.equal(typeof nm.detail?.[k], 'number', `${k}: ${JSON.stringify(nm.detail)}`);
  assert.match(String(finding(fs, 'parent.exists').summary), /MTU 1500/);
  t.diagnostic(`lan.new-mac on a healthy LAN: ${JSON.stringify(nm.detail)}`);
});

test('parent missing: blocking, naming the links there are; the new-MAC check says it did not run', async () => {
  const fs = await checksIn(lab.hosts[0]!.ns.path, ['parent', 'new-mac'], { parent: 'nosuch0' });
  const f = finding(fs, 'parent.exists');
  assert.equal(f.severity, 'blocking');
  assert.match(f.summary, /"nosuch0" does not exist; the links here are eth0/);
  assert.doesNotMatch(f.summary, /\blo\b/, 'loopback is no candidate parent');
  assert.equal(fs.length, 2, 'nothing else about a parent that is not there');
  assert.equal(finding(fs, 'lan.new-mac').severity, 'warn');
  assert.equal(worst(fs), 'blocking');
});

test('name.vid not there yet on an existing base is no missing parent: the base is judged; a missing base is', async () => {
  const fs = await checksIn(lab.hosts[0]!.ns.path, ['parent', 'new-mac'], { parent: 'eth0.50' });
  assert.deepEqual(
    fs.map((f) => [f.check, f.severity]),
    [
      ['parent.exists', 'ok'],
      ['parent.up', 'ok'],
      ['parent.carrier', 'ok'],
      ['parent.passthru', 'ok'],
      ['parent.ipvlan', 'ok'],
      ['lan.new-mac', 'warn'],
    ],
  );
  assert.match(
    finding(fs, 'parent.exists').summary,
    /^parent eth0\.50 is not there yet: macnet creates it as vlan 50 on eth0, which exists/,
  );
  assert.equal(finding(fs, 'parent.exists').detail?.base, 'eth0');
  assert.match(finding(fs, 'lan.new-mac').summary, /^not checked: eth0\.50 is not there yet .*vlan 50 cannot be asked/);
  const gone = await checksIn(lab.hosts[0]!.ns.path, ['parent'], { parent: 'nosuch0.50' });
  assert.deepEqual(
    gone.map((f) => [f.check, f.severity]),
    [['parent.exists', 'blocking']],
  );
});

test('parent down: blocking, with the command that brings it up', async () => {
  const ns = await lab.lanDevice('down', 'pdown'); // eth0 left down
  const fs = await checksIn(ns.path, ['parent', 'new-mac'], { parent: 'eth0', gateway: LAN.router4 });
  const up = finding(fs, 'parent.up');
  assert.equal(up.severity, 'blocking');
  assert.equal(up.fix?.startsWith('ip link set eth0 up'), true);
  assert.equal(finding(fs, 'lan.new-mac').severity, 'warn');
});

test('no carrier (the switch port at the other end of the veth is down): blocking', async () => {
  const ns = await device('nocarrier', 'pnc', 40);
  await lab.routerExec('ip', 'link', 'set', 'pnc', 'down');
  const fs = await checksIn(ns.path, ['parent'], { parent: 'eth0' });
  assert.equal(finding(fs, 'parent.up').severity, 'ok');
  const c = finding(fs, 'parent.carrier');
  assert.equal(c.severity, 'blocking');
  assert.match(c.summary, /eth0 has no carrier/);
});

test('a parent taken by a passthru macvlan in a container namespace: blocking, naming it and where it is', async () => {
  const ns = await device('passthru', 'ppt', 41);
  const ctr = await lab.newNetns('ptctr');
  await sh('ip', '-n', ns.name, 'link', 'add', 'link', 'eth0', 'name', 'pt0', 'type', 'macvlan', 'mode', 'passthru');
  await sh('ip', '-n', ns.name, 'link', 'set', 'pt0', 'netns', ctr.name);
  // The sysctls are read from the namespace the checks run in: one set here shows up in their findings.
  await run('nsenter', [`--net=${ns.path}`, 'sysctl', '-qw', 'net.ipv4.conf.all.arp_ignore=2']);
  const fs = await checksIn(ns.path, ['parent', 'sysctls', 'new-mac'], { parent: 'eth0' });
  const pt = finding(fs, 'parent.passthru');
  assert.equal(pt.severity, 'blocking');
  assert.match(pt.summary, new RegExp(`pt0 \\(in namespace /run/netns/${ctr.name}\\)`));
  assert.equal(finding(fs, 'parent.ipvlan').severity, 'ok');
  // The kernel refuses the new-MAC check's own macvlan child too.
  const nm = finding(fs, 'lan.new-mac');
  assert.equal(nm.severity, 'blocking');
  assert.match(nm.summary, /cannot be made: .*EINVAL/);
  assert.equal(finding(fs, 'sysctl.arp_ignore').severity, 'warn');
  assert.equal(finding(fs, 'sysctl.arp_ignore').detail?.['net.ipv4.conf.all.arp_ignore'], 2);
});

test('a LAN that drops frames from unknown MACs (nftables on the switch): blocking, with the environment fix', async (t) => {
  assert.ok(which('nft'), 'nft is not installed (apt-get install nftables; .ci/run installs it)');
  const h = lab.hosts[1]!;
  // Only the host's own MAC passes its switch port, into the bridge (forward) and to the router (input).
  const rules = `table bridge doctor {
  set known { type ether_addr; elements = { ${h.mac} } }
  chain input_chain { type filter hook input priority 0; policy accept; iifname "p2" ether saddr != @known drop; }
  chain forward_chain { type filter hook forward priority 0; policy accept; iifname "p2" ether saddr != @known drop; }
}
`;
  const r = await run('nsenter', [`--net=${lab.lan.path}`, 'nft', '-f', '-'], { input: rules });
  assert.equal(r.code, 0, `nft: ${r.stderr}`);
  const environment = { name: 'vmware', switchFix: 'allow forged transmits and promiscuous mode on the port group' };
  const fs = await checksIn(h.ns.path, ['parent', 'new-mac'], { parent: 'eth0', environment });
  for (const f of fs.filter((x) => x.check.startsWith('parent.'))) assert.equal(f.severity, 'ok', f.summary);
  const nm = finding(fs, 'lan.new-mac');
  assert.equal(nm.severity, 'blocking', nm.summary);
  assert.match(nm.summary, /answered the parent but not a macvlan child with a new MAC \(ARP, NDP\)/);
  assert.match(nm.summary, /runs on vmware/);
  assert.equal(nm.fix?.startsWith(environment.switchFix), true);
  assert.match(String(nm.fix), /-o kind=ipvlan/);
  t.diagnostic(`lan.new-mac on a LAN dropping new MACs: ${JSON.stringify(nm.detail)}`);
  // Bare metal: the fix is ipvlan or the switch port's MAC limit.
  const bare = finding(await checksIn(h.ns.path, ['new-mac'], { parent: 'eth0' }), 'lan.new-mac');
  assert.equal(bare.severity, 'blocking');
  assert.match(String(bare.fix), /^use -o kind=ipvlan/);
  // The fix taken: an ipvlan network (--network tells doctor its containers use the parent's MAC) is ok there.
  const network = { name: 'lan', id: 'x', kind: 'ipvlan', ownMacs: false, ipv6: false };
  const ipvlan = finding(await checksIn(h.ns.path, ['new-mac'], { parent: 'eth0', network }), 'lan.new-mac');
  assert.equal(ipvlan.severity, 'ok', ipvlan.summary);
  assert.match(ipvlan.summary, /send from eth0's own MAC \(ipvlan\)/);
  await run('nsenter', [`--net=${lab.lan.path}`, 'nft', 'delete', 'table', 'bridge', 'doctor']);
});

test('a gateway that never answers: warn, cannot tell', async () => {
  const ns = await device('silent', 'psil', 42);
  const fs = await checksIn(ns.path, ['new-mac'], { parent: 'eth0', gateway: '198.18.15.250' }, { rounds: 2 });
  const nm = finding(fs, 'lan.new-mac');
  assert.equal(nm.severity, 'warn');
  assert.match(nm.summary, /answered neither/);
});

/** The MACs the switch learned on `port`. */
async function learned(port: string): Promise<string[]> {
  const out = await sh('bridge', '-n', lab.lan.name, '-json', 'fdb', 'show', 'br', 'sw0');
  return (JSON.parse(out) as { mac: string; ifname?: string; state?: string }[])
    .filter((e) => e.ifname === port && e.state !== 'permanent')
    .map((e) => e.mac);
}

const PASSTHRU = ['type', 'macvlan', 'mode', 'passthru'];

for (const signal of ['SIGINT', 'SIGKILL'] as const) {
  test(`${signal} while the new-MAC check asks: its macvlan child goes with the process`, async () => {
    const port = signal === 'SIGINT' ? 'pint' : 'pkil';
    const ns = await device(`int-${signal.toLowerCase()}`, port, signal === 'SIGINT' ? 43 : 44);
    const own = (await sh('ip', '-n', ns.name, '-json', 'link', 'show', 'eth0')).match(/"address":"([^"]+)"/)![1]!;
    // A gateway nobody answers for, asked for about 20 s: the check is surely still running when signalled.
    const child = startChecksIn(ns.path, ['new-mac'], { parent: 'eth0', gateway: '198.18.15.251' }, { rounds: 50 });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      // Its child link has asked once the switch has learned a second MAC on the port.
      let mac: string | undefined;
      for (let i = 0; i < 100 && !mac; i++) {
        await new Promise((r) => setTimeout(r, 100));
        mac = (await learned(port)).find((m) => m !== own);
      }
      assert.ok(mac, 'the check never sent from its child link');
      // What proves the child gone below: while it lives, the kernel refuses a passthru macvlan on eth0.
      const refused = await run('ip', ['-n', ns.name, 'link', 'add', 'link', 'eth0', 'name', 'pt9', ...PASSTHRU]);
      assert.notEqual(refused.code, 0, "a passthru macvlan was made beside the check's child");
      child.kill(signal);
      await exited;
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    }
    // A passthru macvlan needs a parent without any macvlan child: made, it proves the check's child is gone.
    // The kernel frees the dead process's namespace in a work queue: allow it a moment.
    let made = false;
    for (let i = 0; i < 50 && !made; i++) {
      const r = await run('ip', ['-n', ns.name, 'link', 'add', 'link', 'eth0', 'name', 'pt9', ...PASSTHRU]);
      made = r.code === 0;
      if (!made) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(made, 'a macvlan child of eth0 is left behind');
    await sh('ip', '-n', ns.name, 'link', 'del', 'pt9');
  });
}
