// The state's layout version (src/store/schema.ts): a new state gets today's, an older one is migrated step by
// step, a newer one is refused before anything is written; and the state v0.1.0's daemon wrote (the fixture in
// test/fixtures/v0.1.0, made as its README says) opens with today's code, migrated, every record intact.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { DriverState } from '../../src/drivers/state';
import { isMacnetError } from '../../src/errors';
import { parseCidrBig } from '../../src/types/address';
import { type LeaseRecord } from '../../src/lan';
import { leaseKey } from '../../src/lan/lease-records';
import { Ipam } from '../../src/ipam/ipam';
import { stickyKey } from '../../src/ipam/keys';
import { MemoryStore } from '../../src/store/memory';
import { migrate, SCHEMA_KEY, SCHEMA_VERSION } from '../../src/store/schema';
import { SqliteStore } from '../../src/store/sqlite';

const FIXTURE = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'v0.1.0', 'state.db');

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'macnet-schema-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('a new, empty state gets the current version at once', async () => {
  const s = new MemoryStore();
  assert.deepEqual(await migrate(s, 'mem'), { from: SCHEMA_VERSION, to: SCHEMA_VERSION, steps: [] });
  assert.equal((await s.get(SCHEMA_KEY))?.value, String(SCHEMA_VERSION));
  assert.deepEqual(await migrate(s, 'mem'), { from: SCHEMA_VERSION, to: SCHEMA_VERSION, steps: [] }, 'idempotent');
});

test("a state without the key (v0.1.0's layout) is version 0: its next-fit cursors go, everything else stays", async () => {
  const s = new MemoryStore();
  await s.put('ipam/pools/LocalDefault/198.18.1.0_24', '{"id":"LocalDefault/198.18.1.0/24","refs":1}');
  await s.put('ipam/cursors/LocalDefault/198.18.1.0_24', '198.18.1.7');
  await s.put('ipam/addresses/LocalDefault/198.18.1.0_24/198.18.1.7', '{"owner":"dynamic"}');
  const m = await migrate(s, 'mem');
  assert.equal(m.from, 0);
  assert.equal(m.to, SCHEMA_VERSION);
  assert.equal(m.steps.length, SCHEMA_VERSION);
  assert.deepEqual(
    (await s.list('')).map((e) => e.key),
    ['ipam/addresses/LocalDefault/198.18.1.0_24/198.18.1.7', 'ipam/pools/LocalDefault/198.18.1.0_24', SCHEMA_KEY],
  );
});

test('a newer layout is refused with STATE_TOO_NEW, nothing written; so is a newer table layout', async () => {
  const s = new MemoryStore();
  await s.put(SCHEMA_KEY, String(SCHEMA_VERSION + 1));
  await s.put('ipam/cursors/x', '1');
  const was = await s.list('');
  await assert.rejects(migrate(s, '/x/state.db'), (e: unknown) => {
    assert.ok(isMacnetError(e, 'STATE_TOO_NEW'), String(e));
    assert.match(
      e.message,
      /^\/x\/state\.db: the state was written by a newer macnet \(key layout version 3; this macnet knows up to 2\): nothing was changed/,
    );
    return true;
  });
  assert.deepEqual(await s.list(''), was);

  const file = path.join(tmp, 'tables', 'state.db');
  await SqliteStore.open(file).close();
  const db = new Database(file);
  db.prepare("UPDATE meta SET value = 7 WHERE name = 'schema'").run();
  db.close();
  const bytes = fs.readFileSync(file);
  assert.throws(
    () => SqliteStore.open(file),
    (e: unknown) => isMacnetError(e, 'STATE_TOO_NEW') && /table layout 7; this macnet knows up to 1/.test(e.message),
  );
  assert.deepEqual(fs.readFileSync(file), bytes, 'the file is untouched');
});

test('a version that is not a number is a STORE_ERROR, not version 0', async () => {
  const s = new MemoryStore();
  await s.put(SCHEMA_KEY, 'one');
  await assert.rejects(migrate(s, 'mem'), (e: unknown) => isMacnetError(e, 'STORE_ERROR'));
});

test("v0.1.0's state (the fixture) opens with today's code: migrated to version 1, every record readable, allocations intact", async () => {
  const dir = path.join(tmp, 'v0.1.0');
  fs.mkdirSync(dir);
  const file = path.join(dir, 'state.db');
  fs.copyFileSync(FIXTURE, file); // never the fixture itself: opening writes the version and the WAL
  const s = SqliteStore.open(file);
  try {
    assert.equal((await s.get(SCHEMA_KEY))?.value, undefined, 'v0.1.0 wrote no version');
    assert.equal((await s.list('ipam/cursors/')).length, 2, "v0.1.0's next-fit cursors");
    const m = await migrate(s, file);
    assert.deepEqual([m.from, m.to, m.steps.length], [0, 2, 2]);
    assert.equal((await s.get(SCHEMA_KEY))?.value, '2');
    assert.deepEqual(await s.list('ipam/leases/'), [], 'leases moved to the LAN layer (lan/leases/)');
    assert.deepEqual(await s.list('ipam/cursors/'), []);

    // The driver's records, through today's reader.
    const state = new DriverState(s);
    const networks = await state.networks();
    assert.deepEqual(networks.map((n) => [n.config.id.slice(0, 2), n.state, n.config.hostAccess ?? false]).sort(), [
      ['a1', 'ready', true],
      ['b2', 'ready', false],
    ]);
    const eps = await state.endpoints();
    assert.deepEqual(eps.map((e) => [e.linkName, e.ipv4, e.ipv6 ?? '']).sort(), [
      ['mne1e1e1e1e1e', '198.18.21.128/24', '2001:db8:21::2/64'],
      ['mne2e2e2e2e2e', '198.18.21.129/24', '2001:db8:21::3/64'],
      ['mne3e3e3e3e3e', '198.18.21.50/24', '2001:db8:21::4/64'],
      ['mnf1f1f1f1f1f', '198.18.20.113/24', ''],
    ]);
    const ha = await state.hostAccess('eth0');
    assert.equal(ha?.link, 'mnh3e616bf67d');
    assert.deepEqual(Object.values(ha?.networks ?? {}), [['198.18.21.254', '2001:db8:21:0:ffff:ffff:ffff:ffff']]);

    // The IPAM's records, through today's keys.
    const v4 = parseCidrBig('198.18.21.0/24').subnet;
    const dhcp = parseCidrBig('198.18.20.0/24').subnet;
    const lease = JSON.parse((await s.get(leaseKey('LocalDefault', dhcp, '198.18.20.113')))!.value) as LeaseRecord;
    assert.deepEqual(
      [lease.state, lease.lease.hostname, lease.poolId],
      ['bound', 'dns', 'LocalDefault/198.18.20.0/24/dhcp'],
    );
    assert.equal((await s.get(stickyKey('LocalDefault', v4, 'cache')))?.value, '198.18.21.130');

    // The IPAM loads it: what v0.1.0 allocated is taken; a released name gets its sticky address back.
    const ipam = new Ipam(s);
    await ipam.load();
    const pool = 'LocalDefault/198.18.21.0/24/198.18.21.128/25';
    for (const taken of ['198.18.21.128', '198.18.21.129', '198.18.21.50', '198.18.21.1']) {
      await assert.rejects(ipam.requestAddress({ poolId: pool, address: taken }), (e: unknown) =>
        isMacnetError(e, 'IPAM_ADDRESS_IN_USE'),
      );
    }
    const again = await ipam.requestAddress({ poolId: pool, options: { 'com.docker.network.endpoint.name': 'cache' } });
    assert.equal(again.address, '198.18.21.130/24', "the released name's sticky address");
    const next = await ipam.requestAddress({ poolId: pool });
    assert.equal(next.address, '198.18.21.131/24', 'the lowest free address of the range');
    ipam.close();
  } finally {
    await s.close();
  }
});
