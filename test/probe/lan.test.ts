// Probing on a real LAN: a device in its own namespace holds addresses; a lab host probes through a macvlan
// probe link and AF_PACKET sockets of the kernel layer.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ETH_P_ARP, ETH_P_IPV6, Kernel } from '../../src/kernel';
import { LinkProber } from '../../src/probe/prober';
import { Lab } from '../lab/lab';
import type { TestNetns } from '../lab/netns';
import { sh } from '../lab/sh';

let lab: Lab;
let device: TestNetns;
let deviceMac: string;
before(async () => {
  lab = await Lab.create({ hosts: 2, ipv6: true });
  // A LAN device: a veth into the LAN bridge with 198.18.15.2 and 2001:db8:15::2.
  device = await lab.lanDevice('device', 'dev0');
  await sh('ip', '-n', device.name, 'addr', 'add', '198.18.15.2/24', 'dev', 'eth0');
  await sh('ip', '-n', device.name, 'addr', 'add', '2001:db8:15::2/64', 'dev', 'eth0', 'nodad');
  await sh('ip', '-n', device.name, 'link', 'set', 'eth0', 'up');
  deviceMac = (await Kernel.with(device.path, (k) => k.links.get('eth0'))).mac!;
});
after(async () => {
  await lab?.destroy();
});

async function prober(hostIndex: number, fn: (p: LinkProber) => Promise<void>): Promise<void> {
  await Kernel.with(lab.hosts[hostIndex]!.ns.path, async (k) => {
    const link = await k.links.create({ kind: 'macvlan', name: 'mnp-test', parent: 'eth0', mode: 'bridge', up: true });
    await k.links.set('mnp-test', { allmulti: true });
    const arp = await k.openPacketSocket('mnp-test', { protocol: ETH_P_ARP });
    const nd = await k.openPacketSocket('mnp-test', { protocol: ETH_P_IPV6 });
    const p = new LinkProber(link.mac!, arp, nd);
    try {
      await fn(p);
    } finally {
      p.close();
      arp.close();
      nd.close();
      await k.links.delete('mnp-test');
    }
  });
}

test("a LAN device's IPv4 and IPv6 addresses answer the probe with its MAC; unused ones stay silent", async () => {
  await prober(0, async (p) => {
    const r = await p.probe(['198.18.15.2', '198.18.15.3', '2001:db8:15::2', '2001:db8:15::3', '198.18.15.11']);
    assert.deepEqual(r.get('198.18.15.2'), { free: false, mac: deviceMac, reason: 'answered' });
    assert.deepEqual(r.get('2001:db8:15::2'), { free: false, mac: deviceMac, reason: 'answered' });
    assert.deepEqual(r.get('198.18.15.3'), { free: true });
    assert.deepEqual(r.get('2001:db8:15::3'), { free: true });
    // The host's own address on the parent does not answer: macvlan isolates a parent from its children.
    // (The LAN guard therefore checks the parent's own addresses through netlink instead.)
    assert.deepEqual(r.get('198.18.15.11'), { free: true });
  });
});

test('two hosts probing the same address at once both see the conflict; a defended address is seen as taken', async () => {
  await prober(0, async (a) => {
    await prober(1, async (b) => {
      const [ra, rb] = await Promise.all([
        a.probe(['198.18.15.40'], { windowMs: 300 }),
        b.probe(['198.18.15.40'], { windowMs: 300 }),
      ]);
      assert.equal(ra.get('198.18.15.40')?.free, false);
      assert.equal(rb.get('198.18.15.40')?.free, false);
      a.defend('198.18.15.41');
      const r = await b.probe(['198.18.15.41']);
      assert.equal(r.get('198.18.15.41')?.free, false, 'the defender answers');
    });
  });
});
