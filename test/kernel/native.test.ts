// The native addon's own defects (issue 18), each shown by a test that fails without its fix: a datagram or
// netlink message larger than 64 KiB arrives whole (fed through a socketpair: the kernel does not produce such
// a netlink message on demand); a watch handle dropped without unwatch() stops polling at its garbage collection;
// a namespace path too long for the addon is refused, not cut to a shorter path that may exist. No root needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { addon, type AddonError } from '../../src/kernel/addon';

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const NLMSG_DONE = 3;
const BIG = 100 * 1024;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pair(): [number, number] {
  return addon.socketPair(AF_UNIX, SOCK_DGRAM);
}

test('recv: a 100 KiB datagram arrives whole (no fixed 64 KiB buffer)', () => {
  const [a, b] = pair();
  try {
    const sent = Buffer.alloc(BIG);
    for (let i = 0; i < BIG; i++) sent[i] = (i * 7) & 0xff;
    assert.equal(fs.writeSync(b, sent), BIG);
    const got = addon.recv(a);
    assert.ok(got, 'a datagram was queued');
    assert.equal(got.data.length, BIG);
    assert.ok(got.data.equals(sent), 'the same bytes');
    assert.equal(addon.recv(a), null, 'nothing else queued');
  } finally {
    addon.closeFd(a);
    addon.closeFd(b);
  }
});

test('transact: a netlink reply of 100 KiB in one message arrives whole (no EMSGSIZE)', async () => {
  const [a, b] = pair();
  try {
    const seq = 4242;
    const request = Buffer.alloc(16);
    request.writeUInt32LE(16, 0);
    request.writeUInt32LE(seq, 8);
    const reply = Buffer.alloc(BIG);
    reply.writeUInt32LE(BIG, 0); // nlmsg_len
    reply.writeUInt16LE(NLMSG_DONE, 4);
    reply.writeUInt32LE(seq, 8);
    for (let i = 16; i < BIG; i++) reply[i] = i & 0xff;
    const pending = addon.transact(a, request, seq, 5000);
    // The request reaches the other end; the "kernel" answers with one large message.
    const into = Buffer.alloc(64);
    let n = 0;
    for (let i = 0; i < 200 && n === 0; i++) {
      try {
        n = fs.readSync(b, into);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        await sleep(5);
      }
    }
    assert.equal(n, 16, 'the request was sent as one datagram');
    fs.writeSync(b, reply);
    const got = await pending;
    assert.equal(got.length, BIG);
    assert.ok(got.equals(reply), 'the whole message, byte for byte');
  } finally {
    addon.closeFd(a);
    addon.closeFd(b);
  }
});

test('watch: a handle dropped without unwatch() stops polling once collected; unwatch stops it and is idempotent', async () => {
  const [a, b] = pair();
  try {
    // One datagram that nobody reads: the fd stays readable, so a live watch calls back on every loop turn.
    fs.writeSync(b, Buffer.from('x'));
    let calls = 0;
    // Held until it has polled (a slow machine, the VM, may not poll within a fixed time), then dropped.
    const holder: { handle?: object } = { handle: addon.watch(a, () => calls++) };
    for (let i = 0; i < 250 && calls === 0; i++) await sleep(20);
    assert.ok(calls > 0, 'the watch polls while its handle lives');
    delete holder.handle;
    // Collected, then finalized (finalizers run after the GC, on the loop): stable once no call arrives for
    // 200 ms after a collection; a handle kept alive by its callback polls on every turn of the loop.
    let stable = false;
    for (let i = 0; i < 20 && !stable; i++) {
      gc();
      await sleep(50);
      const before = calls;
      await sleep(200);
      stable = calls === before;
    }
    assert.ok(stable, `still polling after the handle was dropped and collected (${calls} calls)`);

    let kept = 0;
    const handle = addon.watch(a, () => kept++);
    for (let i = 0; i < 250 && kept === 0; i++) await sleep(20);
    assert.ok(kept > 0);
    addon.unwatch(handle);
    addon.unwatch(handle);
    const at = kept;
    await sleep(50);
    assert.equal(kept, at, 'no call after unwatch');
  } finally {
    addon.closeFd(a);
    addon.closeFd(b);
  }
});

test('openSocket: a namespace path longer than the addon takes is refused (ENAMETOOLONG), not cut to another path', () => {
  // Cut at 4095 characters this would read "////...///proc/self/ns/net": the caller's own namespace.
  const own = '/proc/self/ns/net';
  const long = '/'.repeat(4095 - own.length) + own + '/../../../net';
  assert.throws(
    () => addon.openSocket(long, 16 /* AF_NETLINK */, 3 /* SOCK_RAW */, 0),
    (e: AddonError) => e.code === 'ENAMETOOLONG' && /network namespace path/.test(e.message),
  );
  assert.throws(
    () => addon.openInNetns(long, '/proc/sys/net/ipv4/ip_forward', fs.constants.O_RDONLY),
    (e: AddonError) => e.code === 'ENAMETOOLONG',
  );
});
