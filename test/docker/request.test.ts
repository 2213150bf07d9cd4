// Join's SandboxKey as the daemon reads it (src/docker/request.ts): as sent, or by its file name in the
// daemon's --netns-dir (the managed plugin sees dockerd's netns dir under another path; docs/plugin.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sandboxKey } from '../../src/docker/request';

test('a SandboxKey is taken as sent without --netns-dir, by its file name in --netns-dir with it', () => {
  const key = '/var/run/docker/netns/2f6b1e0c9a7d';
  assert.equal(sandboxKey({ SandboxKey: key }, 'Join'), key);
  assert.equal(
    sandboxKey({ SandboxKey: '/srv/docker-exec/netns/2f6b1e0c9a7d' }, 'Join', '/run/docker-exec-root/netns'),
    '/run/docker-exec-root/netns/2f6b1e0c9a7d',
  );
});

test('with --netns-dir, a SandboxKey that names no file is refused, never read as a path out of the directory', () => {
  for (const bad of ['/var/run/docker/netns/..', '/', '/var/run/docker/netns/a b']) {
    assert.throws(
      () => sandboxKey({ SandboxKey: bad }, 'Join', '/run/docker-exec-root/netns'),
      (e: Error & { code?: string }) =>
        e.code === 'PLUGIN_REQUEST_INVALID' && /field SandboxKey must be a path ending in a file name/.test(e.message),
      bad,
    );
  }
  assert.throws(() => sandboxKey({ SandboxKey: 'netns/x' }, 'Join', '/d'), /absolute path/);
});
