// The state database holds every network's addresses and options: its files are root's alone (0600), also
// when the state dir existed already with a looser mode and a looser umask.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SqliteStore } from '../../src/store/sqlite';

test('database files are 0600 whatever exists: a 0755 state dir, umask 022, files left 0644', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mnt-${process.pid}-perm-`));
  const old = process.umask(0o022);
  try {
    fs.chmodSync(dir, 0o755);
    const file = path.join(dir, 'state.db');
    let s = SqliteStore.open(file);
    await s.put('a', '1');
    const modes = () =>
      Object.fromEntries(
        ['state.db', 'state.db-wal', 'state.db-shm']
          .filter((f) => fs.existsSync(path.join(dir, f)))
          .map((f) => [f, (fs.statSync(path.join(dir, f)).mode & 0o777).toString(8)]),
      );
    assert.deepEqual(modes(), { 'state.db': '600', 'state.db-wal': '600', 'state.db-shm': '600' });
    await s.close();
    // Files an older version left readable by all are tightened at the next open.
    for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o644);
    s = SqliteStore.open(file);
    await s.put('b', '2');
    for (const [f, m] of Object.entries(modes())) assert.equal(m, '600', f);
    await s.close();
  } finally {
    process.umask(old);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
