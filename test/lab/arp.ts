// Asking the LAN who answers for addresses, from the router's side: the check that every address a test's
// containers got is answered by exactly one machine (test/docker/lan-scale.test.ts, cluster.test.ts).
import { ETH_P_ARP, Kernel, type PacketSocket } from '../../src/kernel';
import { ARP_REPLY, ARP_REQUEST, decodeArp, encodeArp } from '../../src/probe/packets';
import { LAN, type Lab } from './lab';

/**
 * One ARP request per address from the router's side (sender: the router's address and sw0's MAC), all replies
 * collected for `windowMs`: address → the MACs of every reply (a MAC twice means two replies from one machine).
 */
export async function arpSweep(lab: Lab, addresses: string[], windowMs = 1500): Promise<Map<string, string[]>> {
  const replies = new Map<string, string[]>(addresses.map((a) => [a, []]));
  await Kernel.with(lab.lan.path, async (k) => {
    const sw0 = await k.links.get('sw0');
    const sock: PacketSocket = await k.openPacketSocket(sw0.index, { protocol: ETH_P_ARP });
    try {
      sock.on('packet', (p: { data: Buffer }) => {
        const a = decodeArp(p.data);
        if (a?.op === ARP_REPLY && a.targetIp === LAN.router4) replies.get(a.senderIp)?.push(a.senderMac);
      });
      for (const ip of addresses) {
        sock.send(
          encodeArp({
            op: ARP_REQUEST,
            senderMac: sw0.mac!,
            senderIp: LAN.router4,
            targetMac: '00:00:00:00:00:00',
            targetIp: ip,
          }),
          'ff:ff:ff:ff:ff:ff',
        );
        await new Promise((r) => setTimeout(r, 2)); // paced: 250 requests in a burst would overrun the LAN's queues
      }
      await new Promise((r) => setTimeout(r, windowMs));
    } finally {
      sock.close();
    }
  });
  return replies;
}
