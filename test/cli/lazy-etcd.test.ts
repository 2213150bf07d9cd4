// The etcd client (etcd3, gRPC) is loaded only by a daemon started with --store etcd: it takes a fifth of a second
// to load, which no SQLite host should pay at every start. It also kept the managed plugin working while its
// rootfs lacked part of gRPC: a static import of it anywhere below the daemon made the plugin crash at start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

test('the CLI and the daemon load no etcd client until --store etcd asks for one', () => {
  const dist = path.join(__dirname, '..', '..', 'src', 'cli');
  const loaded = execFileSync(
    process.execPath,
    [
      '-e',
      `require(${JSON.stringify(path.join(dist, 'main.js'))}); require(${JSON.stringify(path.join(dist, 'daemon.js'))});` +
        'console.log(Object.keys(require.cache).filter((f) => /node_modules\\/(etcd3|@grpc|cockatiel)\\//.test(f)).length)',
    ],
    { encoding: 'utf8' },
  ).trim();
  assert.equal(loaded, '0', 'modules of etcd3, gRPC or cockatiel were loaded');
});
