// The SQLite store's durability: sync() makes the writes before it durable with one fsync for many of them
// (group commit, src/store/group-sync.ts), off the event loop, with SQLite's checkpoints on a worker thread
// (src/store/checkpointer.ts). That the synced state survives a power cut is shown in a VM: test/vm/power-cut.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { isMacnetError } from '../../src/errors';
import { MemoryStore } from '../../src/store/memory';
import { CHECKPOINT_EVERY, WORKER_IDLE_MS } from '../../src/store/checkpointer';
import { SqliteStore } from '../../src/store/sqlite';

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'macnet-durable-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let seq = 0;
const fresh = (opts?: Parameters<typeof SqliteStore.open>[1]) =>
  SqliteStore.open(path.join(tmp, `d${seq++}`, 'state.db'), opts);

/** The main connection's pragma, read through the private handle. */
const pragma = (s: SqliteStore, name: string): unknown =>
  (s as unknown as { db: Database.Database }).db.pragma(name, { simple: true });

describe('SqliteStore durability', () => {
  test('sync covers every write before it; concurrent writers share fsyncs (group commit)', async () => {
    const s = fresh();
    try {
      const g = s.group!;
      await s.sync(); // nothing written since open: no fsync needed
      assert.equal(g.fsyncs, 0);
      await s.put('k', 'v');
      await s.sync();
      assert.equal(g.fsyncs, 1);
      await s.sync();
      assert.equal(g.fsyncs, 1, 'a sync with nothing new to cover runs no fsync');
      // 200 callers, each writing then syncing, all at once: far fewer fsyncs than callers.
      const before = g.fsyncs;
      await Promise.all(
        Array.from({ length: 200 }, async (_, i) => {
          assert.equal(await s.create(`ipam/addresses/${i}`, 'x'), true);
          await s.sync();
        }),
      );
      const used = g.fsyncs - before;
      assert.ok(used >= 1 && used <= 20, `200 concurrent write+sync used ${used} fsyncs`);
      assert.equal((await s.list('ipam/addresses/')).length, 200);
    } finally {
      await s.close();
    }
  });

  test('the event loop keeps running while a sync waits on the disk', async () => {
    const s = fresh();
    try {
      let ticks = 0;
      const timer = setInterval(() => ticks++, 0);
      try {
        for (let i = 0; i < 50; i++) {
          await s.put(`k${i}`, 'v');
          await s.sync();
        }
      } finally {
        clearInterval(timer);
      }
      // Each fsync runs on the thread pool: timers fire between the syncs (with synchronous=FULL on the
      // event loop, a tight write+commit loop would give them no turn).
      assert.ok(ticks > 0, 'no timer ran during 50 write+sync rounds');
    } finally {
      await s.close();
    }
  });

  test('SQLite never checkpoints inside a commit; the worker does, and the WAL stays bounded under a steady stream', async () => {
    const s = fresh();
    try {
      assert.equal(pragma(s, 'wal_autocheckpoint'), 0);
      assert.equal(pragma(s, 'synchronous'), 1, 'NORMAL: commits do not fsync, sync() does');
      // 64 writers without a pause: a passive checkpoint alone never catches up with them, and the WAL grew
      // without bound (a full disk in the power-cut test's VM) until the second, exclusive, pass was added.
      const total = 10 * CHECKPOINT_EVERY;
      let next = 0;
      let maxWal = 0;
      await Promise.all(
        Array.from({ length: 64 }, async () => {
          for (let i = next++; i < total; i = next++) {
            await s.put(`ipam/k/${i}`, 'x'.repeat(200));
            await s.sync();
            if (i % 100 === 0) maxWal = Math.max(maxWal, fs.statSync(`${s.file}-wal`).size);
          }
        }),
      );
      assert.ok(s.checkpointer!.done >= 3, `only ${s.checkpointer!.done} checkpoints in ${total} writes`);
      // Without a restart 3,000 commits of ~3 pages each make a WAL of some 40 MB.
      assert.ok(maxWal < 16 * 2 ** 20, `WAL reached ${(maxWal / 2 ** 20).toFixed(1)} MiB in ${total} commits`);
      assert.equal((await s.list('ipam/k/')).length, total);
    } finally {
      await s.close();
    }
    assert.ok(s.checkpointer!.last, 'no checkpoint came from the worker thread');
    assert.equal(s.checkpointer!.last.error, undefined);
  });

  test('an idle checkpoint thread is stopped, and the next checkpoint starts another', async () => {
    const s = fresh();
    const thread = () => (s.checkpointer as unknown as { worker: unknown }).worker;
    const writes = async (n: number, from: number) => {
      for (let i = from; i < from + n; i++) await s.put(`ipam/k/${i}`, 'x');
      await s.sync();
    };
    const settle = async (done: () => boolean) => {
      for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 20));
    };
    try {
      await writes(CHECKPOINT_EVERY + 1, 0);
      await settle(() => s.checkpointer!.done >= 1);
      assert.ok(thread(), 'the first checkpoint ran on a thread');
      await settle(() => thread() === undefined);
      assert.equal(thread(), undefined, `no thread after ${WORKER_IDLE_MS} ms idle (an idle daemon keeps ~8 MB less)`);
      const before = s.checkpointer!.done;
      await writes(CHECKPOINT_EVERY + 1, CHECKPOINT_EVERY + 1);
      await settle(() => s.checkpointer!.done > before);
      assert.ok(s.checkpointer!.done > before, 'a checkpoint after the retirement');
      const broken = (s.checkpointer as unknown as { broken: boolean }).broken;
      assert.equal(broken, false, "the retired thread's exit is no failure: no fallback to inline checkpoints");
    } finally {
      await s.close();
    }
  });

  test('reopened, the synced writes are there (and the checkpoint thread is gone after close)', async () => {
    const file = path.join(tmp, 'reopen', 'state.db');
    const a = SqliteStore.open(file);
    for (let i = 0; i < CHECKPOINT_EVERY * 2; i++) await a.put(`k/${i}`, String(i));
    await a.sync();
    await a.close();
    const b = SqliteStore.open(file);
    try {
      assert.equal((await b.list('k/')).length, CHECKPOINT_EVERY * 2);
    } finally {
      await b.close();
    }
  });

  test('a busy database still waits on timers, and sync covers the write once it got through', async () => {
    const s = fresh();
    const other = new Database(s.file);
    try {
      other.exec('BEGIN IMMEDIATE');
      let ticks = 0;
      const timer = setInterval(() => ticks++, 1);
      const write = s.put('k', 'v').then(() => s.sync());
      await new Promise((r) => setTimeout(r, 60));
      other.exec('COMMIT');
      await write;
      clearInterval(timer);
      assert.ok(ticks >= 10, `the event loop ran ${ticks} timers while the write waited`);
      assert.equal((await s.get('k'))?.value, 'v');
    } finally {
      other.close();
      await s.close();
    }
  });

  test('sync after close is STORE_ERROR; MemoryStore syncs at once', async () => {
    const s = fresh();
    await s.put('k', 'v');
    await s.close();
    await assert.rejects(s.sync(), (e) => isMacnetError(e, 'STORE_ERROR') && /closed/.test(e.message));
    const m = new MemoryStore();
    await m.put('k', 'v');
    await m.sync();
  });

  test("durability 'none' is the store as it was: no fsync by sync(), SQLite checkpoints itself", async () => {
    const s = fresh({ durability: 'none' });
    try {
      assert.equal(s.group, undefined);
      assert.notEqual(pragma(s, 'wal_autocheckpoint'), 0);
      await s.put('k', 'v');
      await s.sync();
    } finally {
      await s.close();
    }
  });
});
