// The names' view (src/names/view.ts) in a cluster: another host's names are answered while its presence key
// (hosts/<id>) exists and for a grace period after it went; a host that comes back is answered again; this host's
// own names always. On a MemoryStore (keys written by hand), and on a real etcd member with real Presence leases:
// a clean stop revokes the lease, a crashed host's lease expires.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/store/memory';
import { EtcdStore } from '../../src/store/etcd';
import { Presence, presenceKey } from '../../src/store/presence';
import { NameView } from '../../src/names/view';
import { NameWriter } from '../../src/names/records';
import { silentLogger } from '../../src/log';
import { EtcdCluster } from '../lab/etcd';
import { inOwnNetns } from '../lab/etcd-netns';
import { until } from '../lab/until';
import type { Store } from '../../src/store/types';

const GRACE_MS = 300;

async function write(store: Store, host: string, name: string, v4: string): Promise<void> {
  await new NameWriter(store, host, host).set({
    name,
    aliases: [],
    host,
    v4: [v4],
    v6: [],
    network: 'n1',
    container: name,
  });
}
const resolves = (view: NameView, name: string) => view.names.addresses(name)?.v4 ?? [];

test('memory store: names follow their host presence, with a grace; own names always; off: every record', async () => {
  const store = new MemoryStore();
  await write(store, 'self', 'mine', '198.18.15.10');
  await write(store, 'a', 'web', '198.18.15.11');
  await write(store, 'b', 'gone', '198.18.15.12');
  await store.put(presenceKey('a'), JSON.stringify({ label: 'ha' }));
  const view = new NameView(store, { presence: true, self: 'self', graceMs: GRACE_MS, selfLabel: 'me' });
  const plain = new NameView(store);
  try {
    await Promise.all([view.start(), plain.start()]);
    assert.deepEqual(resolves(view, 'mine'), ['198.18.15.10'], 'own names without a presence key');
    assert.deepEqual(resolves(view, 'web'), ['198.18.15.11'], 'a present host');
    assert.deepEqual(resolves(view, 'gone'), [], 'a host without its key at start: not answered');
    assert.deepEqual(resolves(plain, 'gone'), ['198.18.15.12'], 'without presence (SQLite): every record');
    assert.ok(view.names.isZone('me') && view.names.isZone('ha'), 'zones: this host and the present one');
    assert.ok(!view.names.isZone('hb'), 'not a host without presence');

    // b comes back: its names with it; a new record of b's is answered at once.
    await store.put(presenceKey('b'), '{}');
    assert.ok(await until(async () => resolves(view, 'gone').length === 1, 2000), 'b present again');
    await write(store, 'b', 'new', '198.18.15.13');
    assert.ok(await until(async () => resolves(view, 'new').length === 1, 2000));

    // a's key goes: still answered during the grace, then not; a record written meanwhile stays held.
    await store.delete(presenceKey('a'));
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(resolves(view, 'web'), ['198.18.15.11'], 'answered during the grace');
    assert.ok(await until(async () => resolves(view, 'web').length === 0, 3000), 'withdrawn after the grace');
    assert.ok(!view.names.isZone('ha') && view.names.isZone('me'), "a's zone goes with its names; this host's stays");
    await write(store, 'a', 'web2', '198.18.15.14');
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(resolves(view, 'web2'), [], 'a gone host: its new record is kept, not answered');
    await store.put(presenceKey('a'), '{}');
    assert.ok(await until(async () => resolves(view, 'web2').length === 1 && resolves(view, 'web').length === 1, 2000));

    // Back within the grace: never withdrawn (a daemon restarted on purpose).
    await store.delete(presenceKey('b'));
    await new Promise((r) => setTimeout(r, 50)); // the delete seen, the key not back yet: still answered
    assert.deepEqual(resolves(view, 'gone'), ['198.18.15.12'], 'no blink while the key is away');
    await store.put(presenceKey('b'), '{}');
    await new Promise((r) => setTimeout(r, GRACE_MS + 200));
    assert.deepEqual(resolves(view, 'gone'), ['198.18.15.12'], 'nor after the grace: the key came back');
  } finally {
    await view.close();
    await plain.close();
  }
});

const ADDRS = ['198.18.19.11'];
if (inOwnNetns('names view tests on etcd', __filename, ADDRS)) {
  describe('on a real etcd member, with real presence leases', () => {
    let cluster: EtcdCluster;
    before(async () => {
      cluster = await EtcdCluster.start({ members: 1 });
    });
    after(() => cluster?.close());
    test('etcd: a host stopped cleanly (lease revoked) and a crashed one (lease expired) lose their names; back, they have them', async () => {
      const open = () => EtcdStore.open({ endpoints: cluster.endpoints, prefix: 'view/' });
      const [mine, h1] = [await open(), await open()];
      const view = new NameView(mine, { presence: true, self: 'self', graceMs: GRACE_MS });
      const noop = async () => undefined;
      let p1: Presence | undefined = await Presence.start(h1, 'h1', silentLogger, noop, 2);
      try {
        // h2's presence as a daemon that then crashed leaves it: a lease of 5 s that nobody keeps alive.
        const grant = await cluster.etcdctl(['lease', 'grant', '5']);
        const lease = /lease ([0-9a-f]+) granted/.exec(grant.stdout)?.[1];
        assert.ok(lease, `etcdctl lease grant: ${grant.stdout}${grant.stderr}`);
        await write(h1, 'h2', 'two', '198.18.15.22');
        assert.equal((await cluster.etcdctl(['put', `view/${presenceKey('h2')}`, '{}', `--lease=${lease}`])).code, 0);
        await write(h1, 'h1', 'one', '198.18.15.21');
        await view.start();
        assert.deepEqual(resolves(view, 'one'), ['198.18.15.21']);
        assert.deepEqual(resolves(view, 'two'), ['198.18.15.22']);
        assert.ok(await until(async () => resolves(view, 'two').length === 0, 15_000), 'h2 crashed: withdrawn');
        assert.deepEqual(resolves(view, 'one'), ['198.18.15.21']);

        await p1.close(); // a clean stop: the lease is revoked, the key goes at once
        p1 = undefined;
        assert.ok(await until(async () => resolves(view, 'one').length === 0, 5000), 'h1 stopped: withdrawn');
        p1 = await Presence.start(h1, 'h1', silentLogger, noop, 2);
        assert.ok(await until(async () => resolves(view, 'one').length === 1, 5000), 'h1 back');
      } finally {
        await view.close();
        await p1?.close();
        await Promise.all([mine, h1].map((s) => s.close()));
      }
    });
  });
}
