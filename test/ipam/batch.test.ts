// Group commit of dynamic reservations (src/ipam/batch.ts) and the hosts' start points on a shared store
// (src/ipam/spread.ts), on MemoryStores that count, delay or sabotage transactions: concurrent requests share a
// few transactions and get distinct addresses; a batch partly lost to another writer retries only the lost
// callers; an ambiguous failure puts every create of the batch in the outbox; three hosts allocating at once on
// one store collide rarely, and all finish even on a subnet they must share to the last address.
// On MemoryStore only: the tests count, delay and sabotage its transactions (the real stores' IPAM tests: test-stores).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Ipam } from '../../src/ipam';
import { MemoryStore } from '../../src/store/memory';
import type { TxnOp } from '../../src/store/types';
import { fail } from '../../src/errors';
import { hostSpread } from '../../src/ipam/spread';
import { parseCidrBig, formatAddress } from '../../src/types/address';

const L = 'LocalDefault';
const name = (n: string) => ({ 'com.docker.network.endpoint.name': n });
const PREFIX = 'ipam/addresses/';
const creates = (ops: readonly TxnOp[]) => ops.filter((o) => o.op === 'create').map((o) => o.key);

/** Counts the transactions that reserve addresses, and those refused; `delayMs` is a round trip to the store. */
class CountingStore extends MemoryStore {
  reservations: string[][] = [];
  refused = 0;
  delayMs = 0;
  override async txn(ops: readonly TxnOp[]): Promise<boolean> {
    const keys = creates(ops).filter((k) => k.startsWith(PREFIX));
    if (this.delayMs) await sleep(this.delayMs);
    const ok = await super.txn(ops);
    if (keys.length) {
      this.reservations.push(keys);
      if (!ok) this.refused++;
    }
    return ok;
  }
}

async function pool(store: MemoryStore, host: string | undefined, subnet = '198.18.15.0/24') {
  const ipam = new Ipam(store, host === undefined ? {} : { host });
  await ipam.load();
  const { poolId } = await ipam.requestPool({ addressSpace: L, pool: subnet, v6: false });
  return { ipam, poolId };
}

const ip = (a: { address: string }) => a.address.split('/')[0]!;
const keyOf = (subnet: string, a: string) => `${PREFIX}${L}/${subnet.replace('/', '_')}/${a}`;

test('concurrent requests on one subnet share a few transactions, each address with its record and name', async () => {
  const store = new CountingStore();
  store.delayMs = 2;
  const { ipam, poolId } = await pool(store, 'a', '198.18.0.0/16');
  const got = await Promise.all(
    Array.from({ length: 64 }, (_, i) => ipam.requestAddress({ poolId, options: name(`c${i}`) })),
  );
  const addrs = got.map(ip);
  assert.equal(new Set(addrs).size, 64);
  assert.ok(store.reservations.length <= 4, `${store.reservations.length} transactions for 64 reservations`);
  assert.equal(store.refused, 0);
  const records = await store.list(`${PREFIX}${L}/198.18.0.0_16/`);
  assert.deepEqual(new Set(records.map((e) => e.key.slice(e.key.lastIndexOf('/') + 1))), new Set(addrs));
  for (const [i, a] of addrs.entries()) {
    assert.equal((await store.get(`ipam/sticky/${L}/198.18.0.0_16/c${i}`))?.value, a, `c${i}'s sticky record`);
  }
});

test('callers that each send their next request when the last is answered stay in one batch', async () => {
  // As dockerd starting containers in waves, and the bench: 16 callers, a 4 ms store. A first transaction sent
  // before the others had picked would split them into two batches that then alternate, each caller waiting for
  // the other batch's round trip too.
  const store = new CountingStore();
  store.delayMs = 4;
  const { ipam, poolId } = await pool(store, 'a', '198.18.0.0/16');
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let i = next++; i < 320; i = next++) {
        await new Promise((resolve) => setImmediate(resolve));
        await ipam.requestAddress({ poolId, options: name(`c${i}`) });
      }
    }),
  );
  const sizes = store.reservations.map((k) => k.length);
  assert.ok(sizes.length <= 22, `${sizes.length} transactions for 320 reservations: ${sizes.join(' ')}`);
});

test('a caller that picks while a transaction is out goes in the next one at once: two in flight, never more', async () => {
  class Overlap extends CountingStore {
    flying = 0;
    peak = 0;
    override async txn(ops: readonly TxnOp[]): Promise<boolean> {
      this.peak = Math.max(this.peak, ++this.flying);
      try {
        return await super.txn(ops);
      } finally {
        this.flying--;
      }
    }
  }
  const store = new Overlap();
  store.delayMs = 20;
  const { ipam, poolId } = await pool(store, 'a', '198.18.0.0/16');
  const first = ipam.requestAddress({ poolId, options: name('first') });
  await sleep(5); // the first one's transaction is out
  const later = await Promise.all(
    Array.from({ length: 3 }, (_, i) => ipam.requestAddress({ poolId, options: name(`later${i}`) })),
  );
  await first;
  assert.equal(store.peak, 2, 'the later callers did not wait for the first transaction');
  assert.deepEqual(
    store.reservations.map((k) => k.length),
    [1, 3],
    'the later callers shared the second transaction',
  );
  // Many callers, many waves: never more than two transactions out at once, and every address once.
  const many = await Promise.all(Array.from({ length: 200 }, () => ipam.requestAddress({ poolId })));
  assert.equal(new Set([...many, ...later].map(ip)).size, 203);
  assert.equal(store.peak, 2, 'never more than two out');
});

test('without a host (one writer, SQLite) the order stays lowest free first, in request order', async () => {
  const store = new CountingStore();
  const { ipam, poolId } = await pool(store, undefined);
  const got = await Promise.all(Array.from({ length: 40 }, () => ipam.requestAddress({ poolId })));
  assert.deepEqual(
    got.map(ip),
    Array.from({ length: 40 }, (_, i) => `198.18.15.${i + 1}`),
  );
});

test("on a shared store a host starts at its own point of the range, ascending, and wraps at the range's end", async () => {
  const store = new CountingStore();
  const { ipam, poolId } = await pool(store, 'host-1', '198.18.15.0/24');
  // The usable range .1-.254: the host's point is spread × 254 addresses above .1.
  const lo = parseCidrBig('198.18.15.1/32').subnet.base;
  const start = lo + (254n * BigInt(Math.floor(hostSpread('host-1') * 2 ** 32))) / 2n ** 32n;
  const first = ip(await ipam.requestAddress({ poolId }));
  assert.equal(first, formatAddress(start, 4));
  const rest = [];
  for (let i = 0; i < 253; i++) rest.push(ip(await ipam.requestAddress({ poolId })));
  assert.equal(new Set([first, ...rest]).size, 254, 'every usable address once');
  assert.equal(rest.at(-1), formatAddress(start - 1n, 4), 'the address below the start point comes last');
});

test('a batch partly lost to another writer: only the callers whose address was taken pick again', async () => {
  class Thief extends CountingStore {
    stolen: string[] = [];
    override async txn(ops: readonly TxnOp[]): Promise<boolean> {
      const keys = creates(ops);
      if (this.stolen.length === 0 && keys.length >= 8) {
        // Another host creates two of the batch's keys while the batch is on its way.
        this.stolen = [keys[2]!, keys[5]!];
        for (const k of this.stolen) await super.create(k, JSON.stringify({ owner: 'x', pool: 'p', host: 'b' }));
      }
      return super.txn(ops);
    }
  }
  const store = new Thief();
  const { ipam, poolId } = await pool(store, 'a');
  const got = (await Promise.all(Array.from({ length: 8 }, () => ipam.requestAddress({ poolId })))).map(ip);
  const first = store.reservations[0]!.map((k) => k.slice(k.lastIndexOf('/') + 1));
  assert.equal(store.refused, 1, 'the first batch was refused');
  const lost = new Set(store.stolen.map((k) => k.slice(k.lastIndexOf('/') + 1)));
  assert.deepEqual(
    got.filter((a) => !first.includes(a)).length,
    2,
    'two callers got a new address; the other six kept the one they had picked',
  );
  assert.ok(!got.some((a) => lost.has(a)), 'no caller got an address the other writer holds');
  assert.equal(new Set(got).size, 8);
  const retried = store.reservations.slice(1).flat();
  assert.equal(retried.length, 8, 'the retries reserved the six kept and the two new addresses, once each');
});

/** A store whose next reservation transaction is applied but answered as lost (etcd losing its quorum). */
class LosingStore extends CountingStore {
  loseNext = false;
  override async txn(ops: readonly TxnOp[]): Promise<boolean> {
    const ok = await super.txn(ops);
    if (!this.loseNext || creates(ops).length === 0) return ok;
    this.loseNext = false;
    throw fail('STORE_UNAVAILABLE', {
      op: 'txn',
      key: ops[0]!.key,
      endpoints: ['http://198.18.15.11:2379'],
      timeoutMs: 2000,
      reason: 'etcd did not confirm the write, which may or may not have been applied',
      lastError: 'deadline exceeded',
      unconfirmed: true,
    });
  }
}

test('an ambiguous failure of a batch: every create of it goes to the outbox and is deleted before the next', async () => {
  const store = new LosingStore();
  const { ipam, poolId } = await pool(store, 'a');
  store.loseNext = true;
  const res = await Promise.allSettled(Array.from({ length: 8 }, () => ipam.requestAddress({ poolId })));
  assert.deepEqual(
    res.map((r) => (r.status === 'rejected' ? (r.reason as { code: string }).code : 'ok')),
    Array(8).fill('STORE_UNAVAILABLE'),
  );
  assert.equal(store.reservations.length, 1, 'one transaction');
  assert.equal((await store.list(PREFIX)).length, 8, 'applied after all');
  const next = ip(await ipam.requestAddress({ poolId }));
  const left = (await store.list(PREFIX)).map((e) => e.key);
  assert.deepEqual(left, [keyOf('198.18.15.0/24', next)], 'the eight records are gone; the new one is there');
});

test('three hosts allocating 300 each at once on one store: distinct addresses, few refused batches', async (t) => {
  const store = new CountingStore();
  store.delayMs = 1;
  const hosts = await Promise.all(['host-1', 'host-2', 'host-3'].map((h) => pool(store, h, '198.18.0.0/16')));
  const got = await Promise.all(
    hosts.flatMap(({ ipam, poolId }, h) =>
      Array.from({ length: 300 }, (_, i) => ipam.requestAddress({ poolId, options: name(`h${h}-${i}`) })),
    ),
  );
  const addrs = got.map(ip);
  assert.equal(new Set(addrs).size, 900);
  assert.equal((await store.list(`${PREFIX}${L}/198.18.0.0_16/`)).length, 900);
  t.diagnostic(`${store.refused} of ${store.reservations.length} transactions refused`);
  assert.ok(store.refused <= 3, `${store.refused} of ${store.reservations.length} transactions refused`);
  assert.ok(store.reservations.length < 100, `${store.reservations.length} transactions for 900 reservations`);
});

test('three hosts filling a /24 together: every request is served, distinct, none starves', async () => {
  const store = new CountingStore();
  store.delayMs = 1;
  const hosts = await Promise.all(['host-1', 'host-2', 'host-3'].map((h) => pool(store, h)));
  // Waves of 16 in flight per host, as dockerd sends them, until 3 × 84 = 252 of the 254 addresses are taken.
  const per = await Promise.all(
    hosts.map(async ({ ipam, poolId }) => {
      const mine: string[] = [];
      for (let w = 0; w < 84; w += 12) {
        const n = Math.min(12, 84 - w);
        mine.push(...(await Promise.all(Array.from({ length: n }, () => ipam.requestAddress({ poolId })))).map(ip));
      }
      return mine;
    }),
  );
  const all = per.flat();
  assert.equal(all.length, 252);
  assert.equal(new Set(all).size, 252);
  assert.equal((await store.list(PREFIX)).length, 252);
});

test(
  'a reservation submitted while the delete of stale sticky records is in flight is sent, not left waiting',
  {
    timeout: 30_000,
  },
  async () => {
    // Found on etcd (test/ipam/sticky-prune.test.ts): each new name on a reused address makes the old name's record
    // stale; its delete goes in a transaction of its own after the reservation, and the next request, submitted
    // during that round trip, used to wait forever.
    const store = new CountingStore();
    store.delayMs = 5;
    const ipam = new Ipam(store);
    const { poolId } = await ipam.requestPool({
      addressSpace: L,
      pool: '198.18.15.0/24',
      subPool: '198.18.15.16/30',
      v6: false,
    });
    for (let i = 0; i < 20; i++) {
      const a = await ipam.requestAddress({ poolId, options: name(`run-${i}`) });
      await ipam.releaseAddress(poolId, ip(a));
    }
    assert.ok((await store.list('ipam/sticky/')).length <= 4, 'the stale records went');
  },
);
