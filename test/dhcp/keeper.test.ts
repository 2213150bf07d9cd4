// The LeaseKeeper's schedule with a fake clock and scripted exchange results (the exchanges themselves are
// tested against dnsmasq in client.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { DhcpLease } from '../../src/dhcp/lease';
import { LeaseKeeper } from '../../src/dhcp/keeper';
import { MacnetError } from '../../src/errors';

class FakeClock {
  t = 1_000_000;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private next = 0;
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number) => {
    const id = ++this.next;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  };
  clearTimeout = (id: unknown) => {
    this.timers = this.timers.filter((x) => x.id !== id);
  };
  pending = () => this.timers.length;
  /** Runs timers in order up to `to`, letting promises settle after each. */
  async advance(to: number): Promise<void> {
    for (;;) {
      await new Promise((r) => setImmediate(r));
      const due = this.timers.filter((x) => x.at <= to).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((x) => x !== due);
      this.t = due.at;
      due.fn();
    }
    this.t = to;
    await new Promise((r) => setImmediate(r));
  }
}

const LEASE: DhcpLease = {
  address: '198.18.15.100',
  prefixLength: 24,
  dns: [],
  serverId: '198.18.15.1',
  serverMac: '02:00:00:00:00:01',
  leaseSeconds: 120,
  renewSeconds: 60,
  rebindSeconds: 105,
  obtainedAt: 1_000_000,
  mac: '02:dc:00:00:00:01',
  clientId: '01',
};

function keeper(clock: FakeClock, answer: (kind: 'renew' | 'rebind', at: number) => DhcpLease | Error) {
  const calls: { kind: string; at: number; timeoutMs: number }[] = [];
  const opened: { closed: boolean }[] = [];
  const k = new LeaseKeeper({
    clock,
    socketFor: () => {
      const s = Object.assign(new EventEmitter(), {
        closed: false,
        send() {},
        close() {
          s.closed = true;
        },
      });
      opened.push(s);
      return s;
    },
    client: {
      renew: async (_s, _l, o) => {
        calls.push({ kind: 'renew', at: clock.t, timeoutMs: o.timeoutMs! });
        const r = answer('renew', clock.t);
        if (r instanceof Error) throw r;
        return r;
      },
      rebind: async (_s, _l, o) => {
        calls.push({ kind: 'rebind', at: clock.t, timeoutMs: o.timeoutMs! });
        const r = answer('rebind', clock.t);
        if (r instanceof Error) throw r;
        return r;
      },
    },
  });
  const events: string[] = [];
  for (const ev of ['renewed', 'changed', 'expired', 'error'])
    k.on(ev, (key: string, _x: unknown, y: unknown) => events.push(`${ev} ${key} ${ev === 'expired' ? y : ''}`.trim()));
  return { k, calls, opened, events };
}

test('renews at T1; the renewed lease is rescheduled from its own obtainedAt', async () => {
  const c = new FakeClock();
  const { k, calls, opened, events } = keeper(c, (_k, at) => ({ ...LEASE, obtainedAt: at }));
  k.add('ep1', LEASE);
  await c.advance(1_000_000 + 59_999);
  assert.equal(calls.length, 0);
  await c.advance(1_000_000 + 60_000);
  assert.deepEqual(calls, [{ kind: 'renew', at: 1_060_000, timeoutMs: 5000 }]);
  assert.deepEqual(events, ['renewed ep1']);
  assert.equal(k.get('ep1')!.obtainedAt, 1_060_000);
  assert.ok(
    opened.every((s) => s.closed),
    'sockets closed after each attempt',
  );
  await c.advance(1_120_000);
  assert.equal(calls.length, 2);
  k.stop();
  assert.equal(c.pending(), 0, 'stop() clears every timer');
});

test('no answer: retries halve the time to T2 (minimum lease/16), then rebind until expiry, then expired', async () => {
  const c = new FakeClock();
  const { k, calls, events } = keeper(c, () => new MacnetError('DHCP_NO_ANSWER', 'silence'));
  k.add('ep1', LEASE);
  await c.advance(1_000_000 + 200_000);
  const rel = calls.map((x) => `${x.kind}@${(x.at - 1_000_000) / 1000}`);
  // T1 60: 45 s to T2, half 22.5 -> 82.5; 22.5 left, half 11.25 -> 93.75; 11.25 left, min 7.5 -> 101.25;
  // 3.75 left -> T2 105 (rebind); 15 s to expiry: half 7.5 (= min) -> 112.5; 7.5 left -> 120 = expiry.
  assert.deepEqual(rel, ['renew@60', 'renew@82.5', 'renew@93.75', 'renew@101.25', 'rebind@105', 'rebind@112.5']);
  assert.deepEqual(events.slice(-1), ['expired ep1 expired']);
  assert.equal(events.filter((e) => e.startsWith('error')).length, 6);
  assert.equal(k.get('ep1'), undefined);
  assert.equal(c.pending(), 0);
});

test('a NAK expires the lease at once; a new address from rebinding is a change', async () => {
  const c = new FakeClock();
  const nak = keeper(c, () => new MacnetError('DHCP_NAK', 'no'));
  nak.k.add('a', LEASE);
  await c.advance(1_061_000);
  assert.deepEqual(nak.events, ['error a', 'expired a nak']);
  const moved = keeper(c, (kind, at) =>
    kind === 'renew' ? new MacnetError('DHCP_NO_ANSWER', 'x') : { ...LEASE, address: '198.18.15.101', obtainedAt: at },
  );
  moved.k.add('b', { ...LEASE, obtainedAt: c.t - 106_000 }); // re-adopted after a restart, past T2
  await c.advance(c.t + 1);
  assert.deepEqual(
    moved.calls.map((x) => x.kind),
    ['rebind'],
  );
  assert.deepEqual(moved.events, ['changed b']);
  moved.k.stop();
});

test('re-adoption: a lease past expiry expires at once; one past T1 renews at once; an infinite one is left alone', async () => {
  const c = new FakeClock();
  const { k, calls, events } = keeper(c, (_k, at) => ({ ...LEASE, obtainedAt: at }));
  k.add('old', { ...LEASE, obtainedAt: c.t - 121_000 });
  k.add('mid', { ...LEASE, obtainedAt: c.t - 70_000 });
  k.add('inf', { ...LEASE, leaseSeconds: 0xffffffff, renewSeconds: 0xffffffff, rebindSeconds: 0xffffffff });
  await c.advance(c.t);
  assert.deepEqual(events.sort(), ['expired old expired', 'renewed mid']);
  assert.deepEqual(
    calls.map((x) => x.kind),
    ['renew'],
  );
  assert.deepEqual(k.keys().sort(), ['inf', 'mid']);
  k.stop();
  assert.equal(c.pending(), 0);
  assert.throws(() => k.add('x', LEASE));
});

test('a long lease is timed in steps below the 2^31 ms setTimeout limit', async () => {
  const c = new FakeClock();
  const { k, calls } = keeper(c, (_k, at) => ({ ...LEASE, obtainedAt: at }));
  const days60 = 60 * 86400;
  k.add('long', { ...LEASE, leaseSeconds: days60, renewSeconds: days60 / 2, rebindSeconds: days60 * 0.875 });
  await c.advance(c.t + 25 * 86400_000);
  assert.equal(calls.length, 0, 'not fired early by a timer overflow');
  await c.advance(1_000_000 + 30 * 86400_000);
  assert.equal(calls.length, 1);
  k.stop();
});

test('stop() during an attempt aborts it and closes its socket', async () => {
  const c = new FakeClock();
  let signal: AbortSignal | undefined;
  const opened: { closed: boolean }[] = [];
  const k = new LeaseKeeper({
    clock: c,
    socketFor: () => {
      const s = Object.assign(new EventEmitter(), {
        closed: false,
        send() {},
        close() {
          s.closed = true;
        },
      });
      opened.push(s);
      return s;
    },
    client: {
      renew: (_s, _l, o) => {
        signal = o.signal;
        return new Promise((_r, rej) => o.signal!.addEventListener('abort', () => rej(o.signal!.reason)));
      },
      rebind: () => Promise.reject(new Error('not used')),
    },
  });
  const events: string[] = [];
  k.on('error', () => events.push('error'));
  k.add('a', LEASE);
  await c.advance(1_060_000);
  assert.equal(opened.length, 1);
  assert.equal(opened[0]!.closed, false);
  k.stop();
  await new Promise((r) => setImmediate(r));
  assert.ok(signal?.aborted);
  assert.equal(opened[0]!.closed, true);
  assert.deepEqual(events, [], 'an abort is not an error');
  assert.equal(c.pending(), 0);
});
