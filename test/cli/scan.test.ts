// `macnet scan` argument handling, without a daemon (the lab test is test/docker/scan.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { run } from '../lab/sh';

const bin = path.join(__dirname, '..', '..', '..', 'bin', 'macnet');

test('scan --help; no NETWORK and a tcp docker host are argument errors (exit 2); an absent daemon is refused, exit 1', async () => {
  const h = await run(bin, ['scan', '--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /^Usage: macnet scan NETWORK \[--json\]/);
  assert.match((await run(bin, ['--help'])).stdout, /scan NETWORK \[--json\]/);
  const none = await run(bin, ['scan']);
  assert.deepEqual(
    [none.code, none.stderr.trim()],
    [2, 'macnet: INVALID_ARGUMENT: scan takes one NETWORK (a name, id or id prefix), got 0 (macnet scan --help)'],
  );
  const tcp = await run(bin, ['scan', 'lan', '--docker-host', 'tcp://198.18.0.1:2375']);
  assert.equal(tcp.code, 2);
  assert.match(
    tcp.stderr,
    /^macnet: OPTION_INVALID: --docker-host "tcp:\/\/198\.18\.0\.1:2375" is not valid: give a unix socket/,
  );
  const docker = await run(bin, ['scan', 'lan', '--docker-host', 'unix:///nonexistent/docker.sock']);
  assert.equal(docker.code, 1);
  assert.match(
    docker.stderr,
    /^macnet: DOCKER_UNREACHABLE: scan: cannot reach the Docker Engine API at unix:\/\/\/nonexistent\/docker\.sock/,
  );
  const daemon = await run(bin, ['scan', 'a'.repeat(64), '--plugin-dir', '/nonexistent']);
  assert.equal(daemon.code, 1);
  assert.match(
    daemon.stderr,
    /^macnet: DAEMON_UNREACHABLE: scan: cannot connect to the macnet daemon at \/nonexistent\/macnet\.sock/,
  );
});
