// A host's presence (src/store/presence.ts) as pure logic, on a fake of the etcd lease calls: a lease lost without
// the client saying so (its key gone) is noticed by the presence's own look, granted again, and `regained` runs;
// a failed grant at start leaves no timer behind. The real etcd lease is test/store/etcd.test.ts's, the whole
// story (a host cut off and back) test/docker/cluster.test.ts's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Presence, presenceKey, type Leasing } from '../../src/store/presence';
import type { StoreLease } from '../../src/store/etcd';
import { silentLogger } from '../../src/log';

class FakeLeasing implements Leasing {
  readonly keys = new Map<string, { value: string; lease: string }>();
  grants = 0;
  down = false;
  async lease(): Promise<StoreLease> {
    if (this.down) throw new Error('etcd unreachable');
    const id = String(++this.grants);
    return {
      id,
      onLost: () => undefined, // the client never reports it: the presence must find out itself
      revoke: async () => {
        for (const [k, v] of this.keys) if (v.lease === id) this.keys.delete(k);
      },
    };
  }
  async putLeased(key: string, value: string, lease: StoreLease): Promise<void> {
    this.keys.set(key, { value, lease: lease.id });
  }
  async get(key: string) {
    if (this.down) throw new Error('etcd unreachable');
    return this.keys.get(key);
  }
}

test('a lease expired unnoticed by the client is found by the missing key, granted again, and regained runs', async () => {
  const store = new FakeLeasing();
  let regained = 0;
  const p = await Presence.start(store, 'h1', silentLogger, async () => void regained++, 0.3);
  try {
    assert.equal(store.keys.get(presenceKey('h1'))?.lease, '1');
    // etcd expires the lease while the host is cut off (the key goes), and does not answer for a moment.
    store.down = true;
    store.keys.clear();
    await sleep(400);
    assert.equal(regained, 0, 'nothing while etcd does not answer');
    store.down = false;
    const t0 = Date.now();
    while (regained === 0 && Date.now() - t0 < 3000) await sleep(50);
    assert.equal(regained, 1, 'regained once');
    assert.ok(p.present);
    assert.equal(store.keys.get(presenceKey('h1'))?.lease, String(store.grants), 'the key is back, on the new lease');
  } finally {
    await p.close();
  }
  assert.equal(store.keys.size, 0, 'close revokes the lease: the key goes');
});

test('a grant that fails at start throws and leaves no timer running', async () => {
  const store = new FakeLeasing();
  store.down = true;
  await assert.rejects(
    Presence.start(store, 'h1', silentLogger, async () => undefined, 0.3),
    /unreachable/,
  );
  // The test process would not end with an interval left: node:test reports that as a hang, not a pass.
});

test('a check after the regain that fails (etcd still fitful) is run again until it succeeds', async () => {
  const store = new FakeLeasing();
  let calls = 0;
  const regained = async () => {
    calls++;
    if (calls < 3) throw new Error('store get: no answer within 2000 ms');
  };
  const p = await Presence.start(store, 'h1', silentLogger, regained, 0.3);
  try {
    store.keys.clear(); // the lease expired while the host was away
    const t0 = Date.now();
    while (calls < 3 && Date.now() - t0 < 6000) await sleep(50);
    assert.equal(calls, 3, 'failed twice, then succeeded');
    await sleep(1500);
    assert.equal(calls, 3, 'not run again once it succeeded');
  } finally {
    await p.close();
  }
});
