// doctor's checks that depend on the kernel's link kinds. This machine's kernel lacks dummy, 802.1q vlan and
// ipvlan; test/vm/kernel-in-vm.test.ts runs this file again under a stock Debian kernel that has them all (with
// MACNET_REQUIRE_KINDS, where every kind must be reported working and the ipvlan case must run, not skip).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { KIND_CHECKS, KIND_ORDER } from '../../src/doctor/link-kinds';
import { TestNetns } from '../lab/netns';
import { run, sh } from '../lab/sh';
import { kernelLacks } from '../skip-policy';
import { checksIn, finding } from './live';

const required = new Set((process.env.MACNET_REQUIRE_KINDS ?? '').split(',').filter(Boolean));

let ns: TestNetns;
before(async () => {
  ns = await TestNetns.create('doctor-kinds');
  await sh('ip', '-n', ns.name, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
  await sh('ip', '-n', ns.name, 'link', 'set', 'v0', 'up');
  await sh('ip', '-n', ns.name, 'link', 'set', 'v1', 'up');
});
after(async () => {
  await ns?.delete();
});

/** Whether `ip link add` makes a link of the kind here: the answer the check must give, found independently. */
async function ipCanMake(kind: string): Promise<boolean> {
  const args: Record<string, string[]> = {
    macvlan: ['link', 'v0', 'name', 'k-mv', 'type', 'macvlan', 'mode', 'bridge'],
    ipvlan: ['link', 'v1', 'name', 'k-ipv', 'type', 'ipvlan', 'mode', 'l2'],
    vlan: ['link', 'v0', 'name', 'k-vl', 'type', 'vlan', 'id', '42'],
    dummy: ['name', 'k-dm', 'type', 'dummy'],
  };
  const r = await run('ip', ['-n', ns.name, 'link', 'add', ...args[kind]!]);
  if (r.code !== 0) return false;
  await sh('ip', '-n', ns.name, 'link', 'del', args[kind]![args[kind]![0] === 'name' ? 1 : 3]!);
  return true;
}

test('link kinds macvlan, ipvlan, 802.1q vlan and dummy: reported as this kernel makes them, with severities', async (t) => {
  const fs = await checksIn('/proc/self/ns/net', ['kinds']);
  assert.deepEqual(
    fs.map((f) => f.check),
    ['kernel.version', 'kernel.macvlan', 'kernel.ipvlan', 'kernel.vlan', 'kernel.dummy'],
  );
  assert.equal(finding(fs, 'kernel.version').detail?.release, (await sh('uname', '-r')).trim());
  for (const kind of KIND_ORDER) {
    const f = finding(fs, KIND_CHECKS[kind].check);
    const works = await ipCanMake(kind);
    t.diagnostic(`${kind}: ${works ? 'present' : 'missing'} (ip link add); doctor: ${f.severity}`);
    if (required.has(kind)) assert.ok(works, `${kind} is required here but ip link add fails`);
    assert.equal(f.detail?.works, works, `${kind}: ${f.summary}`);
    // Missing macvlan blocks every network; ipvlan and vlan only the networks that use them; dummy none (an
    // internal network's parent is an empty bridge then), so it is ok with no fix and says why.
    const missing = kind === 'macvlan' ? 'blocking' : kind === 'dummy' ? 'ok' : 'warn';
    assert.equal(f.severity, works ? 'ok' : missing, f.summary);
    if (!works && kind !== 'dummy') assert.match(String(f.fix), /^modprobe /);
    if (!works && kind === 'dummy') {
      assert.equal(f.fix, undefined);
      assert.match(f.summary, /^this kernel has no dummy links, and macnet does without: .*empty bridge instead/);
    }
  }
});

test('a parent with ipvlan children in a container namespace: blocking for macvlan, and no macvlan child made', async (t) => {
  const probe = await run('ip', ['-n', ns.name, 'link', 'add', 'link', 'v1', 'name', 'k-ipv', 'type', 'ipvlan']);
  if (probe.code !== 0) {
    assert.ok(!required.has('ipvlan'), `ipvlan is required here: ${probe.stderr}`);
    t.skip(kernelLacks('ipvlan', `link kind (${probe.stderr.trim()}); test/vm runs this under a stock kernel`));
    return;
  }
  const ctr = await TestNetns.create('doctor-ipvlan-ctr');
  try {
    await sh('ip', '-n', ns.name, 'link', 'set', 'k-ipv', 'netns', ctr.name);
    const fs = await checksIn(ns.path, ['parent', 'new-mac'], { parent: 'v1', gateway: '198.18.16.1' });
    const f = finding(fs, 'parent.ipvlan');
    assert.equal(f.severity, 'blocking');
    assert.match(f.summary, new RegExp(`k-ipv \\(in namespace /run/netns/${ctr.name}\\)`));
    assert.equal(finding(fs, 'parent.passthru').severity, 'ok');
    // The kernel gives v1 to ipvlan: the new-MAC check's macvlan child is refused, as a network's would be.
    const nm = finding(fs, 'lan.new-mac');
    assert.equal(nm.severity, 'blocking');
    assert.match(nm.summary, /cannot be made: .*EBUSY/);
  } finally {
    await ctr.delete();
  }
});
