// macnet's DNS server (src/dns) with real sockets: a DnsServer on an address of a network namespace's lo, asked by
// Node's own resolver (c-ares: UDP, and TCP after a truncated reply) and by raw TCP queries, forwarding what is not
// ours to a real upstream (Debian's dnsmasq, started here in the same namespace). The namespace is the file's own
// (test/lab/etcd-netns.ts runs the file again inside it), so nothing of the host's resolver or links is touched.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Resolver } from 'node:dns/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import * as packet from 'dns-packet';
import { DnsServer } from '../../src/dns/server';
import { Names, type NameRecord } from '../../src/dns/names';
import { answer, reverseAddress, TTL_S } from '../../src/dns/answer';
import { UPSTREAM_TIMEOUT_MS, upstreamsOf } from '../../src/dns/forward';
import { silentLogger } from '../../src/log';
import { inOwnNetns } from '../lab/etcd-netns';
import { which } from '../lab/lab';

const rec = (name: string, host: string, v4: string[], v6: string[] = [], aliases: string[] = []): NameRecord => ({
  name,
  host,
  aliases,
  v4,
  v6,
});

test('names: bare and host-qualified, aliases, a name on two hosts with both addresses, removal, case', () => {
  const n = new Names();
  n.set('a/1', rec('web', 'host-a', ['198.18.15.10'], ['2001:db8::10'], ['www']));
  n.set('b/1', rec('Web', 'host-b', ['198.18.15.20']));
  assert.deepEqual(n.addresses('web'), { v4: ['198.18.15.10', '198.18.15.20'], v6: ['2001:db8::10'] });
  assert.deepEqual(n.addresses('WEB.host-b'), { v4: ['198.18.15.20'], v6: [] });
  assert.deepEqual(n.addresses('www'), { v4: ['198.18.15.10'], v6: ['2001:db8::10'] });
  assert.deepEqual(n.addresses('www.host-a'), { v4: ['198.18.15.10'], v6: ['2001:db8::10'] });
  assert.equal(n.addresses('www.host-b'), undefined);
  assert.deepEqual(n.names('198.18.15.20'), ['web.host-b']);
  n.set('b/1', undefined);
  assert.deepEqual(n.addresses('web'), { v4: ['198.18.15.10'], v6: ['2001:db8::10'] });
  assert.equal(n.addresses('web.host-b'), undefined);
  assert.deepEqual(n.names('198.18.15.20'), []);
  // A record written again with another address replaces the old one.
  n.set('a/1', rec('web', 'host-a', ['198.18.15.11']));
  assert.deepEqual(n.addresses('web'), { v4: ['198.18.15.11'], v6: [] });
  assert.deepEqual(n.names('198.18.15.10'), []);
  // Not a DNS name: never answered (a query for it cannot even be made).
  n.set('c/1', rec('bad name', 'host-c', ['198.18.15.30']));
  assert.equal(n.addresses('bad name'), undefined);
});

test('reverse names: in-addr.arpa and ip6.arpa to addresses; anything else is no address', () => {
  assert.equal(reverseAddress('10.15.18.198.in-addr.arpa'), '198.18.15.10');
  const v6 = '0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa';
  assert.equal(reverseAddress(v6), '2001:db8::10');
  assert.equal(reverseAddress('300.15.18.198.in-addr.arpa'), undefined);
  assert.equal(reverseAddress('web'), undefined);
});

test('answer: FORMERR for two questions, the id kept; a name not ours is forwarded', () => {
  const n = new Names();
  n.set('k', rec('web', 'h', ['198.18.15.10']));
  const two = packet.encode({
    type: 'query',
    id: 4242,
    questions: [
      { type: 'A', name: 'web' },
      { type: 'A', name: 'web' },
    ],
  });
  const out = answer(two, n);
  assert.ok('reply' in out);
  const r = packet.decode(out.reply);
  assert.equal(r.id, 4242);
  assert.equal((r as unknown as { rcode: string }).rcode, 'FORMERR');
  assert.deepEqual(answer(packet.encode({ type: 'query', id: 1, questions: [{ type: 'A', name: 'x.example' }] }), n), {
    forward: true,
  });
  // A host's label is a zone of ours: a name under it that no container has is NXDOMAIN at once, not forwarded.
  n.setZones(['H']);
  const gone = answer(packet.encode({ type: 'query', id: 2, questions: [{ type: 'A', name: 'gone.h' }] }), n);
  assert.ok('reply' in gone, 'answered, not forwarded');
  const nx = packet.decode(gone.reply) as unknown as { rcode: string; flags: number };
  assert.equal(nx.rcode, 'NXDOMAIN');
  assert.ok(nx.flags & packet.AUTHORITATIVE_ANSWER, 'authoritative');
  assert.ok('reply' in answer(packet.encode({ type: 'query', id: 3, questions: [{ type: 'A', name: 'web.h' }] }), n));
  for (const name of ['h', 'gone.example', 'gone.h.example'])
    assert.deepEqual(
      answer(packet.encode({ type: 'query', id: 4, questions: [{ type: 'A', name }] }), n),
      {
        forward: true,
      },
      `${name}: not in a zone of ours`,
    );
  assert.deepEqual(
    upstreamsOf('# c\nnameserver 198.18.19.21\nnameserver fe80::1%eth0\nsearch x\nnameserver 198.18.19.20\n', [
      '198.18.19.20',
    ]),
    [
      { address: '198.18.19.21', port: 53 },
      { address: 'fe80::1', port: 53 },
    ],
  );
});

const SERVER = '198.18.19.20';
const UPSTREAM = '198.18.19.21';

if (inOwnNetns('DNS server tests', __filename, [SERVER, UPSTREAM])) {
  describe('a DnsServer on real sockets, with a real upstream', () => {
    const names = new Names();
    let upstreams = [{ address: UPSTREAM, port: 53 }];
    const server = new DnsServer({ table: names, upstreams: () => upstreams, log: silentLogger });
    let dnsmasq: ChildProcess | undefined;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'macnet-dns-test-'));
    const resolver = new Resolver({ timeout: 3000, tries: 1 });
    resolver.setServers([SERVER]);

    before(async () => {
      const bin = which('dnsmasq');
      assert.ok(bin, 'dnsmasq is installed (dnsmasq-base)');
      dnsmasq = spawn(
        bin,
        [
          '--conf-file=/dev/null',
          '--keep-in-foreground',
          `--listen-address=${UPSTREAM}`,
          '--bind-interfaces',
          '--no-resolv',
          '--no-hosts',
          '--address=/upstream.test/198.18.1.1',
          '--user=root',
          '--group=root',
          `--pid-file=${path.join(dir, 'pid')}`,
          '--log-facility=-',
        ],
        { stdio: 'ignore' },
      );
      await server.listenOn(SERVER);
      // dnsmasq is up when it answers.
      const up = new Resolver({ timeout: 500, tries: 1 });
      up.setServers([UPSTREAM]);
      for (let i = 0; ; i++) {
        try {
          await up.resolve4('upstream.test');
          break;
        } catch (e) {
          if (i > 50) throw e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    });
    after(async () => {
      await server.close();
      dnsmasq?.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    });

    test('A, AAAA and PTR of a container, bare and with its host, with the short TTL', async () => {
      names.set('a/1', rec('web', 'host-a', ['198.18.15.10'], ['2001:db8::10'], ['www']));
      assert.deepEqual(await resolver.resolve4('web', { ttl: true }), [{ address: '198.18.15.10', ttl: TTL_S }]);
      assert.deepEqual(await resolver.resolve6('web'), ['2001:db8::10']);
      assert.deepEqual(await resolver.resolve4('www.host-a'), ['198.18.15.10']);
      assert.deepEqual(await resolver.reverse('198.18.15.10'), ['web.host-a']);
      assert.deepEqual(await resolver.reverse('2001:db8::10'), ['web.host-a']);
      // Ours without an IPv6 address: NOERROR and no record, not a referral to other servers.
      names.set('b/1', rec('db', 'host-b', ['198.18.15.20']));
      await assert.rejects(resolver.resolve6('db'), (e: NodeJS.ErrnoException) => e.code === 'ENODATA');
    });

    test('a name on two hosts answers with both addresses; <name>.<host> picks one; a removed one stops', async () => {
      names.set('a/2', rec('dup', 'host-a', ['198.18.15.31']));
      names.set('b/2', rec('dup', 'host-b', ['198.18.15.32']));
      assert.deepEqual((await resolver.resolve4('dup')).sort(), ['198.18.15.31', '198.18.15.32']);
      assert.deepEqual(await resolver.resolve4('dup.host-b'), ['198.18.15.32']);
      names.set('b/2', undefined);
      assert.deepEqual(await resolver.resolve4('dup'), ['198.18.15.31']);
      names.set('a/2', undefined);
      // Not ours any more: forwarded, and the upstream knows no such name.
      await assert.rejects(resolver.resolve4('dup'), (e: NodeJS.ErrnoException) => e.code !== undefined);
      // Under a host's label: ours to deny, NXDOMAIN from us even with no upstream answering.
      names.setZones(['host-a', 'host-b']);
      const saved = upstreams;
      upstreams = [{ address: '198.18.19.22', port: 53 }]; // nothing there
      try {
        await assert.rejects(resolver.resolve4('dup.host-a'), (e: NodeJS.ErrnoException) => e.code === 'ENOTFOUND');
      } finally {
        upstreams = saved;
        names.setZones([]);
      }
    });

    test('other names go to the upstream; without an upstream that answers, SERVFAIL', async () => {
      assert.deepEqual(await resolver.resolve4('upstream.test'), ['198.18.1.1']);
      upstreams = [{ address: '198.18.19.22', port: 53 }]; // nothing there
      try {
        // Our server gives each upstream UPSTREAM_TIMEOUT_MS; this client waits longer than that.
        const patient = new Resolver({ timeout: 3 * UPSTREAM_TIMEOUT_MS, tries: 1 });
        patient.setServers([SERVER]);
        await assert.rejects(patient.resolve4('upstream.test'), (e: NodeJS.ErrnoException) => e.code === 'ESERVFAIL');
      } finally {
        upstreams = [{ address: UPSTREAM, port: 53 }];
      }
    });

    test('TCP: queries on one connection; a reply too long for UDP is truncated there and whole over TCP', async () => {
      const many = Array.from({ length: 60 }, (_, i) => `198.18.16.${i + 1}`);
      names.set('c/1', rec('big', 'host-c', many));
      // c-ares asks again over TCP when the UDP reply has TC set.
      assert.deepEqual((await resolver.resolve4('big')).sort(), [...many].sort());
      const sock = net.connect({ host: SERVER, port: 53 });
      await new Promise((r) => sock.once('connect', r));
      const ask = (id: number, name: string) => {
        const q = packet.encode({
          type: 'query',
          id,
          flags: packet.RECURSION_DESIRED,
          questions: [{ type: 'A', name }],
        });
        const len = Buffer.alloc(2);
        len.writeUInt16BE(q.length);
        sock.write(Buffer.concat([len, q]));
      };
      ask(1, 'big');
      ask(2, 'upstream.test');
      let buf = Buffer.alloc(0);
      const replies: packet.DecodedPacket[] = [];
      await new Promise<void>((resolve) => {
        sock.on('data', (c: Buffer) => {
          buf = Buffer.concat([buf, c]);
          while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
            replies.push(packet.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))));
            buf = buf.subarray(2 + buf.readUInt16BE(0));
          }
          if (replies.length === 2) resolve();
        });
      });
      sock.destroy();
      const byId = new Map(replies.map((r) => [r.id, r]));
      assert.equal(byId.get(1)!.answers!.length, 60);
      assert.equal(byId.get(1)!.flag_tc, false);
      assert.deepEqual(
        byId.get(2)!.answers!.map((a) => (a as { data: string }).data),
        ['198.18.1.1'],
      );
    });

    test('an address that is not on the machine is refused with the bind error; one stopped can be served again', async () => {
      await assert.rejects(server.listenOn('198.18.19.99'), (e: NodeJS.ErrnoException) => e.code === 'EADDRNOTAVAIL');
      assert.deepEqual(server.addresses, [SERVER]);
      await server.stopListening(SERVER);
      await assert.rejects(resolver.resolve4('web'));
      await server.listenOn(SERVER);
      assert.deepEqual(await resolver.resolve4('web'), ['198.18.15.10']);
    });
  });
}
