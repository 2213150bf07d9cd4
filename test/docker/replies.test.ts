// Every failing plugin reply carries its code in a field of its own (issue 18): `Code` beside `Err` and `Error`
// (what Docker shows, "CODE: message"), for each way a call can fail: a refusal, a defect, a cause chain, an
// unknown call, an empty or malformed body, a body too large. The daemon's server with handlers of this test's
// own, on a socket in a temp dir; no root, no dockerd. The log lines are checked too: the error's code, details
// and cause chain, and the stack of a defect.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { CATALOGUE, MacnetError } from '../../src/errors';
import { type Handler, PluginServer } from '../../src/docker/server';
import { createLogger } from '../../src/log';

const lines: Record<string, unknown>[] = [];
let dir: string;
let server: PluginServer;
let socket: string;

const handlers = new Map<string, Handler>([
  ['Plugin.Activate', async () => ({ Implements: ['NetworkDriver'] })],
  [
    'NetworkDriver.CreateNetwork',
    async () => {
      throw new MacnetError('PARENT_NOT_FOUND', 'option parent="eth9": not found', { option: 'parent', value: 'eth9' });
    },
  ],
  [
    'NetworkDriver.CreateEndpoint',
    async () => {
      const errno = Object.assign(new Error('ENODEV: no such device'), { code: 'ENODEV' });
      throw new MacnetError('KERNEL_ERROR', 'create macvlan "mn1": ENODEV: no such device', {}, errno);
    },
  ],
  [
    'IpamDriver.RequestAddress',
    async () => {
      throw new TypeError("Cannot read properties of undefined (reading 'x')");
    },
  ],
]);

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), `mnt-${process.pid}-replies-`));
  socket = path.join(dir, 'macnet.sock');
  server = new PluginServer(
    handlers,
    createLogger('debug', {}, (l) => lines.push(JSON.parse(l) as Record<string, unknown>)),
  );
  await server.listen(socket);
});

after(async () => {
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function post(call: string, body: string | Buffer): Promise<{ status: number; reply: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath: socket, path: `/${call}`, method: 'POST', headers: { 'Content-Length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, reply: JSON.parse(Buffer.concat(chunks).toString()) }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A request that declares a 2 MiB body and sends none: refused on the declared length, then closed. */
function declareLarge(call: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const c = net.connect(socket, () =>
      c.write(`POST /${call} HTTP/1.1\r\nHost: x\r\nContent-Length: ${2 * 1024 * 1024}\r\n\r\n`),
    );
    c.on('data', (b: Buffer) => chunks.push(b));
    c.on('close', () => resolve(Buffer.concat(chunks).toString()));
    c.on('error', reject);
  });
}

function assertFailed(reply: Record<string, unknown>, code: string): void {
  assert.equal(reply['Code'], code, `Code field: ${JSON.stringify(reply)}`);
  assert.ok(code in CATALOGUE, `${code} is in the catalogue`);
  assert.equal(reply['Err'], reply['Error'], 'Err and Error alike');
  assert.match(String(reply['Err']), new RegExp(`^${code}: \\S`), 'what Docker shows starts with the code');
}

test('every failing plugin reply has its Code field: refusal, defect, unknown call, empty, malformed and oversized bodies', async () => {
  assertFailed((await post('NetworkDriver.CreateNetwork', '{}')).reply, 'PARENT_NOT_FOUND');
  assertFailed((await post('NetworkDriver.CreateEndpoint', '{}')).reply, 'KERNEL_ERROR');
  assertFailed((await post('IpamDriver.RequestAddress', '{}')).reply, 'INTERNAL');
  const unknown = await post('NetworkDriver.Nope', '{}');
  assert.equal(unknown.status, 404);
  assertFailed(unknown.reply, 'PLUGIN_REQUEST_INVALID');
  assertFailed((await post('NetworkDriver.CreateNetwork', '')).reply, 'PLUGIN_REQUEST_INVALID');
  assertFailed((await post('NetworkDriver.CreateNetwork', '[1')).reply, 'PLUGIN_REQUEST_INVALID');
  const large = await declareLarge('NetworkDriver.CreateNetwork');
  assert.match(large, /^HTTP\/1\.1 413 /);
  assertFailed(
    JSON.parse(large.slice(large.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>,
    'PLUGIN_REQUEST_TOO_LARGE',
  );
  const ok = await post('Plugin.Activate', '');
  assert.equal(ok.reply['Code'], undefined, 'a reply that did not fail has no Code');
});

test("the log writes the refused call's error with code, details and cause chain, and a defect's stack", () => {
  const refused = lines.filter((l) => l['msg'] === 'call refused');
  const byCall = (c: string) => refused.find((l) => l['call'] === c)?.['error'] as Record<string, unknown>;
  const parent = byCall('NetworkDriver.CreateNetwork');
  assert.equal(parent['code'], 'PARENT_NOT_FOUND');
  assert.deepEqual(parent['details'], { option: 'parent', value: 'eth9' });
  const kernel = byCall('NetworkDriver.CreateEndpoint');
  assert.deepEqual(kernel['cause'], {
    message: 'ENODEV: no such device',
    code: 'ENODEV',
    stack: (kernel['cause'] as { stack: string }).stack,
  });
  assert.match(String((kernel['cause'] as { stack: string }).stack), /^Error: ENODEV/);
  const defect = byCall('IpamDriver.RequestAddress');
  assert.match(String(defect['stack']), /^TypeError: Cannot read properties/);
  assert.equal(refused.find((l) => l['call'] === 'IpamDriver.RequestAddress')?.['level'], 'error');
});
