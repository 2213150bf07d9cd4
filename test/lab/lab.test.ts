// The lab harness itself: a simulated LAN where macvlan children (made through src/kernel) in "container"
// namespaces reach each other and the router across hosts, and a real dockerd per host whose built-in
// macvlan driver does the same (lab-docker.test.ts, on each engine). Each test destroys its lab and checks that
// nothing of this process remains.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Kernel } from '../../src/kernel';
import { Lab, LAN, labResidue } from './lab';
import { listNetns } from './netns';
import { ipJson } from './sh';

const ourNetns = () => listNetns().filter((n) => n.startsWith(`mnt-${process.pid}-`));

before(() => {
  assert.equal(process.getuid?.(), 0, 'the lab needs root (network and mount namespaces)');
});

// Should a test fail before its own destroy, nothing of it may outlive this file.
after(() => Lab.destroyAll());

async function assertClean(lab: Lab): Promise<void> {
  await lab.destroy();
  await lab.destroy(); // idempotent
  assert.deepEqual(ourNetns(), [], 'no namespace of this process remains');
  assert.deepEqual(labResidue(), { dirs: [], mounts: [], processes: [], cgroups: [] });
}

async function ping(
  exec: (cmd: string, ...args: string[]) => Promise<{ code: number; stdout: string }>,
  to: string,
  what: string,
) {
  const r = await exec('ping', '-c', '1', '-W', '2', to);
  assert.equal(r.code, 0, `${what}: ping ${to} failed: ${r.stdout}`);
}

test('two hosts: macvlan children moved into container namespaces reach each other and the router', async (t) => {
  const lab = await Lab.create({ hosts: 2, ipv6: true });
  t.diagnostic(`lab without docker created in ${lab.createMs.toFixed(0)} ms`);
  try {
    for (const h of lab.hosts) {
      await ping((...a) => h.exec(...a), LAN.router4, `${h.name} → router`);
      await ping((...a) => h.exec(...a), LAN.router6, `${h.name} → router over IPv6`);
    }
    const containers = [];
    for (const [i, host] of lab.hosts.entries()) {
      const ns = await lab.newNetns(`c${i + 1}`);
      const ip = `198.18.15.${101 + i}`;
      // The kernel layer, as the plugin will use it: create on the host's eth0, move in renamed, configure inside.
      const mac = await Kernel.with(host.ns.path, async (k) => {
        const link = await k.links.create({ kind: 'macvlan', name: `mv${i + 1}`, parent: 'eth0', mode: 'bridge' });
        await k.links.moveTo(link.name, ns.path, 'eth0');
        assert.equal(await k.links.find(link.name), undefined, 'the child left the host namespace');
        return link.mac;
      });
      await Kernel.with(ns.path, async (k) => {
        await k.addresses.add('eth0', `${ip}/24`);
        await k.links.setUp('eth0');
      });
      // Checked independently of src/kernel: what `ip` sees in the container namespace.
      const [l] = await ipJson<
        { ifname: string; address: string; linkinfo?: { info_kind?: string; info_data?: { mode?: string } } }[]
      >(ns.name, 'link', 'show', 'eth0');
      assert.equal(l?.linkinfo?.info_kind, 'macvlan');
      assert.equal(l?.linkinfo?.info_data?.mode, 'bridge');
      assert.ok(mac, 'links.create reported a MAC');
      assert.equal(l?.address, mac);
      assert.notEqual(l?.address, host.mac, "the child has its own MAC, not its parent's");
      containers.push({ ns, ip });
    }
    const [c1, c2] = containers as [(typeof containers)[0], (typeof containers)[0]];
    await ping((...a) => c1.ns.exec(...a), c2.ip, 'container 1 → container 2 (other host)');
    await ping((...a) => c2.ns.exec(...a), c1.ip, 'container 2 → container 1 (other host)');
    for (const c of containers) {
      await ping((...a) => c.ns.exec(...a), LAN.router4, `${c.ip} → router`);
      await ping((...a) => lab.routerExec(...a), c.ip, `router → ${c.ip}`);
    }
  } finally {
    await assertClean(lab);
    t.diagnostic(`destroyed in ${lab.destroyMs.toFixed(0)} ms`);
  }
});
