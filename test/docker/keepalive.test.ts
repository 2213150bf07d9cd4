// dockerd keeps its connections to a plugin open while idle for as long as it likes (moby's plugin client: an
// http.Transport without an idle timeout) and sends the next call on one of them. A server that closes an idle
// connection (Node's default: after 5 s) races that call: dockerd gets a closed connection, and since a POST is
// not replayed by Go's transport, its plugin client sends the call again with the body already read, empty
// (moby/moby#39331): the likely cause of a Join refused as empty, once, in the 300-container cluster test on
// Docker 20.10. So the daemon's server never closes an idle connection: this test holds one idle past Node's 5 s and
// finds it still open, the next call answered on it. The server with a handler of its own, on a socket in a temp
// dir; no root, no dockerd.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Handler, PluginServer } from '../../src/docker/server';
import { createLogger } from '../../src/log';

/** Longer than Node's default keepAliveTimeout (5 s), which the server used to keep. */
const IDLE_MS = 6000;

let dir: string;
let server: PluginServer;
let socket: string;
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), `mnt-${process.pid}-keepalive-`));
  socket = path.join(dir, 'macnet.sock');
  const handlers = new Map<string, Handler>([['Plugin.Activate', async () => ({ Implements: ['NetworkDriver'] })]]);
  server = new PluginServer(
    handlers,
    createLogger('error', {}, () => undefined),
  );
  await server.listen(socket);
});

after(async () => {
  agent.destroy();
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** One call on the agent's connection: its reply, and whether it went on a connection used before. */
function activate(): Promise<{ status: number; body: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath: socket,
        path: '/Plugin.Activate',
        method: 'POST',
        agent,
        headers: { 'Content-Type': 'application/json' },
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, reused: req.reusedSocket }));
      },
    );
    req.on('error', reject);
    req.end('{}');
  });
}

test('an idle connection from the engine stays open past 5 s, and the next call is answered on it', async () => {
  const first = await activate();
  assert.equal(first.status, 200);
  let closed = false;
  const sockets = Object.values(agent.freeSockets).flat();
  assert.equal(sockets.length, 1, 'the agent keeps the connection of the first call');
  sockets[0]!.once('close', () => (closed = true));
  await sleep(IDLE_MS);
  assert.equal(closed, false, `the server closed a connection idle for ${IDLE_MS} ms`);
  const second = await activate();
  assert.equal(second.status, 200);
  assert.match(second.body, /NetworkDriver/);
  assert.equal(second.reused, true, 'the second call went on the idle connection');
});
