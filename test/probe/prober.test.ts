// LinkProber.probe with fake sockets: callers probing the same address at once share one probe, unless one of
// them takes the address for an owner of its own (exclusive), who then sees the other as a claimant.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeSocket } from './fake-socket';
import { ARP_REPLY, decodeArp, encodeArp } from '../../src/probe/packets';
import { LinkProber } from '../../src/probe/prober';

const ME = '0e:00:00:00:00:aa';
const W = { windowMs: 30, count: 1 };
const probed = (s: FakeSocket) => s.sent.map((x) => decodeArp(x.data)!.targetIp);

test('two callers probing one address at once share the probe and its result', async () => {
  const arp = new FakeSocket();
  const pr = new LinkProber(ME, arp);
  const [a, b] = await Promise.all([
    pr.probe(['198.18.15.2', '198.18.15.3'], W),
    pr.probe(['198.18.15.3', '198.18.15.4'], W),
  ]);
  assert.deepEqual(a.get('198.18.15.3'), { free: true });
  assert.deepEqual(b.get('198.18.15.3'), { free: true });
  assert.deepEqual(probed(arp).sort(), ['198.18.15.2', '198.18.15.3', '198.18.15.4'], 'one probe for .3');
  pr.close();
});

test('an exclusive caller and a sharing one never both get the same address free, whichever came first', async () => {
  const arp = new FakeSocket();
  const pr = new LinkProber(ME, arp);
  // IPAM first, the host-access choice joins: the host must not take what IPAM may hand out.
  const [ipam, host] = await Promise.all([
    pr.probe(['198.18.15.9'], W),
    pr.probe(['198.18.15.9', '198.18.15.10'], { ...W, exclusive: true }),
  ]);
  assert.deepEqual(ipam.get('198.18.15.9'), { free: true });
  assert.deepEqual(host.get('198.18.15.9'), { free: false, mac: ME, reason: 'probing' });
  assert.deepEqual(host.get('198.18.15.10'), { free: true }, 'its other candidates are probed as usual');
  // The host-access choice first, IPAM joins.
  const [host2, ipam2] = await Promise.all([
    pr.probe(['198.18.15.20'], { ...W, exclusive: true }),
    pr.probe(['198.18.15.20'], W),
  ]);
  assert.deepEqual(host2.get('198.18.15.20'), { free: true });
  assert.deepEqual(ipam2.get('198.18.15.20'), { free: false, mac: ME, reason: 'probing' });
  pr.close();
});

test('an answer during a shared probe reaches every caller', async () => {
  const arp = new FakeSocket();
  const pr = new LinkProber(ME, arp);
  const both = Promise.all([pr.probe(['198.18.15.5'], W), pr.probe(['198.18.15.5'], W)]);
  arp.feed(
    encodeArp({
      op: ARP_REPLY,
      senderMac: '02:00:00:00:00:05',
      senderIp: '198.18.15.5',
      targetMac: ME,
      targetIp: '0.0.0.0',
    }),
    '02:00:00:00:00:05',
  );
  for (const r of await both)
    assert.deepEqual(r.get('198.18.15.5'), { free: false, mac: '02:00:00:00:00:05', reason: 'answered' });
  pr.close();
});
