// The reclaim of a gone host's addresses (src/ipam/lost-hosts.ts), as pure logic: a store with the records of two
// hosts, a fake LAN that says which addresses answer, and the scan's clock given by the test. Each test on both
// real stores, SQLite and etcd (test/lab/test-stores.ts). The Docker test with three hosts, etcd and a host cut
// off from the LAN is test/docker/cluster.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LostHosts } from '../../src/ipam/lost-hosts';
import { eachStore } from '../lab/test-stores';
import { silentLogger } from '../../src/log';

const SUBNET = '198.18.15.0/24';
const key = (ip: string) => `ipam/addresses/LocalDefault/198.18.15.0_24/${ip}`;
const rec = (host: string, owner = 'dynamic') => JSON.stringify({ owner, pool: `LocalDefault/${SUBNET}`, host });
const GRACE = 60_000;

eachStore('IPAM lost hosts tests', __filename, (kind, stores) => {
  async function setup(answering: Set<string>, probe = true) {
    const { store } = await stores.open(kind);
    await store.put('hosts/a', '{}'); // a is present; b is gone
    await store.put(key('198.18.15.1'), JSON.stringify({ owner: 'gateway', pool: 'p', refs: 2, host: 'b' }));
    await store.put(key('198.18.15.2'), rec('a'));
    await store.put(key('198.18.15.3'), rec('b'));
    await store.put(key('198.18.15.4'), rec('b'));
    await store.put(key('198.18.15.5'), rec('self'));
    const asked: string[][] = [];
    const lan = {
      canProbe: (s: string) => probe && s === SUBNET,
      inUse: async (_s: string, candidates: readonly string[]) => {
        asked.push([...candidates]);
        return new Map(
          candidates
            .filter((c) => answering.has(c))
            .map((c) => [c, { mac: '0a:00:00:00:00:01', reason: 'answered' as const }]),
        );
      },
    };
    const forgotten: string[] = [];
    const freed = { forget: async (s: string, ip: string) => void forgotten.push(`${s} ${ip}`) };
    const lost = new LostHosts(store, lan, freed, { self: 'self', graceMs: GRACE, log: silentLogger });
    const held = async () => (await store.list('ipam/addresses/')).map((e) => e.key.split('/').pop()).sort();
    return { store, lost, asked, forgotten, held };
  }

  test("a gone host's silent addresses go after the grace period and two silent probes; answering ones, gateways and present hosts' stay", async () => {
    const answering = new Set(['198.18.15.4']);
    const { lost, asked, forgotten, held } = await setup(answering);
    const t0 = 1_000_000;
    assert.deepEqual(await lost.scan(t0), [], 'the first sight of a missing host starts its grace period');
    assert.deepEqual(await lost.scan(t0 + GRACE - 1), [], 'not before the grace period');
    assert.deepEqual(asked, [], 'no probe before the grace period');
    assert.deepEqual(await lost.scan(t0 + GRACE), [], 'the first silent probe only marks it');
    assert.deepEqual(asked, [['198.18.15.3', '198.18.15.4']], "only the gone host's, no gateway");
    assert.deepEqual(await lost.scan(t0 + GRACE + 2000), [`${SUBNET} 198.18.15.3`]);
    assert.deepEqual(forgotten, [`${SUBNET} 198.18.15.3`], "this host's index is told");
    assert.deepEqual(await held(), ['198.18.15.1', '198.18.15.2', '198.18.15.4', '198.18.15.5']);
    // The one that answered stays for as long as it answers; once silent twice, it goes too.
    for (let i = 3; i < 6; i++) assert.deepEqual(await lost.scan(t0 + GRACE + i * 2000), []);
    answering.clear();
    assert.deepEqual(await lost.scan(t0 + GRACE + 20_000), []);
    assert.deepEqual(await lost.scan(t0 + GRACE + 22_000), [`${SUBNET} 198.18.15.4`]);
  });

  test('a host that comes back within the grace period keeps its addresses, and its grace starts anew', async () => {
    const { store, lost, held } = await setup(new Set());
    const t0 = 1_000_000;
    await lost.scan(t0);
    await store.put('hosts/b', '{}');
    await lost.scan(t0 + GRACE);
    await store.delete('hosts/b');
    assert.deepEqual(await lost.scan(t0 + GRACE + 2000), [], 'missing again: counted from now');
    assert.deepEqual(await lost.scan(t0 + 2 * GRACE), []);
    assert.deepEqual(await lost.scan(t0 + 2 * GRACE + 3000), [], 'the first silent look after the new grace period');
    assert.deepEqual(await lost.scan(t0 + 2 * GRACE + 5000), [`${SUBNET} 198.18.15.3`, `${SUBNET} 198.18.15.4`]);
    assert.equal((await held()).length, 3);
  });

  test('without a vantage on the LAN of the subnet nothing is reclaimed, however long the host is gone', async () => {
    const { lost, asked } = await setup(new Set(), false);
    for (let t = 0; t < 10; t++) assert.deepEqual(await lost.scan(1_000_000 + t * GRACE), []);
    assert.deepEqual(asked, []);
  });

  test('a record rewritten between the looks (the host came back and wrote it again) is not deleted', async () => {
    const { store, lost, held } = await setup(new Set());
    const t0 = 1_000_000;
    await lost.scan(t0);
    await lost.scan(t0 + GRACE);
    await store.put(key('198.18.15.3'), rec('b', 'restored'));
    await store.put('hosts/b', '{}');
    assert.deepEqual(await lost.scan(t0 + GRACE + 2000), []);
    assert.equal((await held()).length, 5);
  });

  test('another host probing the same address at the same moment is no answer: it does not keep the address', async () => {
    const { store, held } = await setup(new Set());
    // Every candidate seen as 'probing' (another macnet host's scan of the same addresses), never answered.
    const probing = new LostHosts(
      store,
      {
        canProbe: () => true,
        inUse: async (_s: string, c: readonly string[]) =>
          new Map(c.map((ip) => [ip, { mac: '0e:00:00:00:00:02', reason: 'probing' as const }])),
      },
      { forget: async () => undefined },
      { self: 'self', graceMs: GRACE, log: silentLogger },
    );
    const t0 = 1_000_000;
    await probing.scan(t0);
    await probing.scan(t0 + GRACE);
    assert.deepEqual(await probing.scan(t0 + GRACE + 2000), [`${SUBNET} 198.18.15.3`, `${SUBNET} 198.18.15.4`]);
    assert.equal((await held()).length, 3);
  });

  test('a macnet probe link (MAC 0e:...) answering is no container: another host keeping the address warm does not keep it', async () => {
    const { store, held } = await setup(new Set());
    const warm = new LostHosts(
      store,
      {
        canProbe: () => true,
        inUse: async (_s: string, c: readonly string[]) =>
          new Map(c.map((ip) => [ip, { mac: '0e:00:00:00:00:03', reason: 'answered' as const }])),
      },
      { forget: async () => undefined },
      { self: 'self', graceMs: GRACE, log: silentLogger },
    );
    const t0 = 1_000_000;
    await warm.scan(t0);
    await warm.scan(t0 + GRACE);
    assert.deepEqual(await warm.scan(t0 + GRACE + 2000), [`${SUBNET} 198.18.15.3`, `${SUBNET} 198.18.15.4`]);
    assert.equal((await held()).length, 3);
  });
});
