// LinkProber.sweep with fake sockets: every reply counted, only replies to our own requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeSocket } from './fake-socket';
import { ARP_REPLY, ARP_REQUEST, arpProbe, decodeArp, encodeArp, unsolicitedNa } from '../../src/probe/packets';
import { LinkProber } from '../../src/probe/prober';

const ME = '0e:00:00:00:00:aa';
const reply = (mac: string, ip: string, to = ME) =>
  encodeArp({ op: ARP_REPLY, senderMac: mac, senderIp: ip, targetMac: to, targetIp: '0.0.0.0' });

test('sweep: one probe per address; every reply to us is counted, two MACs for one address are both kept', async () => {
  const arp = new FakeSocket();
  const nd = new FakeSocket();
  const pr = new LinkProber(ME, arp, nd);
  const done = pr.sweep(['198.18.15.2', '198.18.15.3', '198.18.15.4', '2001:db8:15::2'], { windowMs: 30, burst: 2 });
  arp.feed(reply('02:00:00:00:00:02', '198.18.15.2'), '02:00:00:00:00:02');
  arp.feed(reply('02:00:00:00:00:99', '198.18.15.2'), '02:00:00:00:00:99');
  arp.feed(reply('0a:00:00:00:00:03', '198.18.15.3'), '0a:00:00:00:00:03');
  // Not counted: a reply to another machine, a request (someone asking), our own frame looped back.
  arp.feed(reply('02:00:00:00:00:04', '198.18.15.4', '02:00:00:00:00:bb'), '02:00:00:00:00:04');
  arp.feed(
    encodeArp({
      op: ARP_REQUEST,
      senderMac: '02:00:00:00:00:05',
      senderIp: '198.18.15.4',
      targetMac: '00:00:00:00:00:00',
      targetIp: '198.18.15.1',
    }),
    '02:00:00:00:00:05',
  );
  arp.feed(arpProbe(ME, '198.18.15.4'), ME, 4);
  nd.feed(unsolicitedNa('0a:00:00:00:00:06', '2001:db8:15::2').packet, '0a:00:00:00:00:06');
  const r = await done;
  assert.deepEqual(Object.fromEntries(r), {
    '198.18.15.2': ['02:00:00:00:00:02', '02:00:00:00:00:99'],
    '198.18.15.3': ['0a:00:00:00:00:03'],
    '198.18.15.4': [],
    '2001:db8:15::2': ['0a:00:00:00:00:06'],
  });
  assert.deepEqual(
    arp.sent.map((s) => [decodeArp(s.data)!.senderIp, decodeArp(s.data)!.targetIp, s.dst]),
    [
      ['0.0.0.0', '198.18.15.2', 'ff:ff:ff:ff:ff:ff'],
      ['0.0.0.0', '198.18.15.3', 'ff:ff:ff:ff:ff:ff'],
      ['0.0.0.0', '198.18.15.4', 'ff:ff:ff:ff:ff:ff'],
    ],
    'RFC 5227 probes: sender 0.0.0.0, so no cache learns the probe link',
  );
  assert.equal(nd.sent[0]!.dst, '33:33:ff:00:00:02', 'IPv6: a DAD NS to the solicited-node group');
  // After the sweep, replies no longer land anywhere (and nothing throws).
  arp.feed(reply('02:00:00:00:00:02', '198.18.15.2'), '02:00:00:00:00:02');
  assert.deepEqual(r.get('198.18.15.2')!.length, 2);
  pr.close();
});
