// Docker's plugin transport: HTTP/1.1 over a unix socket, every call a POST /<Subsystem>.<Method> with a
// JSON body. Handlers never call the Docker API (a plugin that does can deadlock dockerd while it restores
// containers at boot).
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { isMacnetError } from '../errors';
import type { Logger } from '../log';

export type Handler = (body: Record<string, unknown>) => Promise<unknown>;

const CONTENT_TYPE = 'application/vnd.docker.plugins.v1.2+json';

/**
 * Calls whose handler reads nothing from the body. Every other call with an empty body is refused: dockerd
 * re-sends a call with an empty body when it retries one the plugin did not answer (moby/moby#39331, e.g. a
 * call in flight while macnet restarts). Served as if it were "{}", a RequestPool would hand out a default
 * pool instead of the --subnet the user asked for.
 */
const BODY_NOT_NEEDED = new Set([
  'Plugin.Activate', 'NetworkDriver.GetCapabilities', 'IpamDriver.GetCapabilities', 'IpamDriver.GetDefaultAddressSpaces',
  'NetworkDriver.DiscoverNew', 'NetworkDriver.DiscoverDelete', 'NetworkDriver.ProgramExternalConnectivity',
  'NetworkDriver.RevokeExternalConnectivity',
]);

export class PluginServer {
  private readonly server: http.Server;
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(private readonly handlers: ReadonlyMap<string, Handler>, private readonly log: Logger) {
    this.server = http.createServer((req, res) => this.serve(req, res));
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const p = this.dispatch(req.method ?? '', (req.url ?? '').replace(/^\//, ''), Buffer.concat(chunks).toString('utf8'))
        .then(({ status, body }) => {
          const text = JSON.stringify(body);
          res.writeHead(status, { 'Content-Type': CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text) });
          res.end(text);
        });
      this.inflight.add(p);
      void p.finally(() => this.inflight.delete(p));
    });
  }

  private async dispatch(method: string, call: string, raw: string): Promise<{ status: number; body: unknown }> {
    const handler = this.handlers.get(call);
    if (method !== 'POST' || !handler) {
      // 404 tells dockerd "not implemented", which it tolerates for optional calls.
      this.log.debug('call not implemented', { call, method });
      return { status: 404, body: { Err: `macnet does not implement ${method} /${call}` } };
    }
    const started = process.hrtime.bigint();
    let body: Record<string, unknown> = {};
    if (!raw.trim() && !BODY_NOT_NEEDED.has(call)) {
      const msg = `PLUGIN_REQUEST_INVALID: ${call}: refused, the request body is empty. dockerd sends an empty body ` +
        'when it retries a call the plugin did not answer (moby/moby#39331), ' + 'for example one in flight while macnet restarted: ' +
        'run the docker command again';
      this.log.warn('bad request', { call, error: msg });
      return { status: 200, body: { Err: msg, Error: msg } };
    }
    try {
      if (raw.trim()) {
        const parsed: unknown = JSON.parse(raw);
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
        body = parsed as Record<string, unknown>;
      }
    } catch (e) {
      const msg = `PLUGIN_REQUEST_INVALID: ${call}: the request body is not a JSON object (${(e as Error).message})`;
      this.log.warn('bad request', { call, error: msg });
      return { status: 200, body: { Err: msg, Error: msg } };
    }
    try {
      const out = (await handler(body)) ?? {};
      this.log.debug('call', { call, ms: Number(process.hrtime.bigint() - started) / 1e6 });
      return { status: 200, body: out };
    } catch (e) {
      // NetworkDriver replies carry the error in "Err", IpamDriver replies in "Error"; both, always.
      const msg = isMacnetError(e) ? `${e.code}: ${e.message}` : `INTERNAL: ${(e as Error).message ?? String(e)}`;
      (isMacnetError(e) ? this.log.info : this.log.error)('call refused', { call, error: msg, ...(!isMacnetError(e) && { stack: (e as Error).stack }) });
      return { status: 200, body: { Err: msg, Error: msg } };
    }
  }

  /** Listens on `socketPath` with mode 0600 (the plugin dir is root's; the socket grants full control). */
  async listen(socketPath: string): Promise<void> {
    fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o755 });
    // A socket file left by a killed daemon would make listen fail with EADDRINUSE.
    try {
      if (fs.lstatSync(socketPath).isSocket()) fs.unlinkSync(socketPath);
    } catch { /* absent */ }
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      const old = process.umask(0o177);
      this.server.listen(socketPath, () => {
        process.umask(old);
        this.server.off('error', reject);
        resolve();
      });
    });
    fs.chmodSync(socketPath, 0o600);
  }

  /** Stops accepting, lets in-flight calls finish, closes the socket. */
  async close(): Promise<void> {
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    this.server.closeIdleConnections();
    await Promise.allSettled([...this.inflight]);
    this.server.closeAllConnections();
    await closed;
  }
}
