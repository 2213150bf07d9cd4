// Docker's plugin transport: HTTP/1.1 over a unix socket, every call a POST /<Subsystem>.<Method> with a
// JSON body. Handlers never call the Docker API (a plugin that does can deadlock dockerd while it restores
// containers at boot).
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import * as net from 'node:net';
import { clip, clipText, isMacnetError, MacnetError } from '../errors';
import type { Logger } from '../log';

export type Handler = (body: Record<string, unknown>) => Promise<unknown>;

const CONTENT_TYPE = 'application/vnd.docker.plugins.v1.2+json';

/** The largest request body read: dockerd's largest (CreateNetwork with many options) is a few kB. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** A reply's error message is cut here; values in it are clipped to a few hundred characters already. */
const MAX_ERROR_CHARS = 800;

/**
 * Calls whose handler reads nothing from the body. Every other call with an empty body is refused: dockerd
 * re-sends a call with an empty body when it retries one the plugin did not answer (moby/moby#39331, e.g. a
 * call in flight while macnet restarts). Served as if it were "{}", a RequestPool would hand out a default
 * pool instead of the --subnet the user asked for.
 */
const BODY_NOT_NEEDED = new Set([
  'Plugin.Activate',
  'NetworkDriver.GetCapabilities',
  'IpamDriver.GetCapabilities',
  'IpamDriver.GetDefaultAddressSpaces',
  'NetworkDriver.DiscoverNew',
  'NetworkDriver.DiscoverDelete',
  'NetworkDriver.ProgramExternalConnectivity',
  'NetworkDriver.RevokeExternalConnectivity',
]);

/**
 * A failing reply. Docker shows `Err` (NetworkDriver calls) or `Error` (IpamDriver calls), so both carry
 * "CODE: message"; `Code` carries the stable code alone, for scripts and macnet's own CLI, which never parse
 * the message for it.
 */
export interface FailedReply {
  Err: string;
  Error: string;
  Code: string;
}

export function failedReply(code: string, message: string): FailedReply {
  const msg = clipText(`${code}: ${message}`, MAX_ERROR_CHARS);
  return { Err: msg, Error: msg, Code: code };
}

export class PluginServer {
  private readonly server: http.Server;
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(
    private readonly handlers: ReadonlyMap<string, Handler>,
    private readonly log: Logger,
  ) {
    this.server = http.createServer((req, res) => this.serve(req, res));
    // Idle connections stay open until the engine closes them. dockerd's plugin client keeps its own without an
    // idle timeout and sends the next call on one; closing it here (Node's default after 5 s) races that call,
    // which dockerd then sends again with an empty body (moby/moby#39331): likely why one `docker run` of 300 failed
    // with an empty Join in CI.
    // close() still ends them (closeIdleConnections).
    this.server.keepAliveTimeout = 0;
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const call = (req.url ?? '').replace(/^\//, '');
    // Refused before buffering: a declared length over the bound at once, a chunked body once it passes it.
    if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) {
      this.refuseLarge(req, res, call, Number(req.headers['content-length']));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        if (chunks.length) chunks.length = 0;
        if (!res.headersSent) this.refuseLarge(req, res, call, size);
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) return;
      const p = this.dispatch(req.method ?? '', call, Buffer.concat(chunks).toString('utf8')).then(
        ({ status, body }) => {
          const text = JSON.stringify(body);
          res.writeHead(status, { 'Content-Type': CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text) });
          res.end(text);
        },
      );
      this.inflight.add(p);
      void p.finally(() => this.inflight.delete(p));
    });
  }

  /** 413 with the usual error body, then the connection is closed: the rest of the body is never read. */
  private refuseLarge(req: http.IncomingMessage, res: http.ServerResponse, call: string, bytes: number): void {
    const e = new MacnetError(
      'PLUGIN_REQUEST_TOO_LARGE',
      `${clip(call, 100)}: refused, the request body is larger ` +
        `than 1 MiB (${bytes} bytes so far); Docker's plugin calls are a few kB`,
      { bytes },
    );
    this.log.warn('bad request', { call: clipText(call, 100), error: e, bytes });
    const text = JSON.stringify(failedReply(e.code, e.message));
    res.writeHead(413, { 'Content-Type': CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text) });
    // The rest of the body is read and dropped (never buffered) for a second, then the connection is closed. Closing
    // at once fails the client's next write (EPIPE), and a client that stops at that error never reads the reply.
    req.resume();
    res.end(text, () => {
      const t = setTimeout(() => req.socket.destroy(), 1000).unref();
      req.socket.once('close', () => clearTimeout(t));
    });
  }

  private async dispatch(method: string, call: string, raw: string): Promise<{ status: number; body: unknown }> {
    const handler = this.handlers.get(call);
    if (method !== 'POST' || !handler) {
      // 404 tells dockerd "not implemented", which it tolerates for optional calls.
      this.log.debug('call not implemented', { call, method });
      const what = `${clipText(method, 20)} /${clipText(call, 100)}`;
      return { status: 404, body: failedReply('PLUGIN_REQUEST_INVALID', `macnet does not implement ${what}`) };
    }
    const started = process.hrtime.bigint();
    let body: Record<string, unknown> = {};
    if (!raw.trim() && !BODY_NOT_NEEDED.has(call)) {
      const reply = failedReply(
        'PLUGIN_REQUEST_INVALID',
        `${call}: refused, the request body is empty. dockerd sends an empty body ` +
          'when it retries a call the plugin did not answer (moby/moby#39331), ' +
          'for example one in flight while macnet restarted: ' +
          'run the docker command again',
      );
      this.log.warn('bad request', { call, error: reply.Err });
      return { status: 200, body: reply };
    }
    try {
      if (raw.trim()) {
        const parsed: unknown = JSON.parse(raw);
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
          throw new Error('not a JSON object');
        body = parsed as Record<string, unknown>;
      }
    } catch (e) {
      // V8's parse errors quote the input: only its first characters.
      const why = clipText((e as Error).message, 200);
      const reply = failedReply('PLUGIN_REQUEST_INVALID', `${call}: the request body is not a JSON object (${why})`);
      this.log.warn('bad request', { call, error: reply.Err });
      return { status: 200, body: reply };
    }
    try {
      const out = (await handler(body)) ?? {};
      this.log.debug('call', { call, ms: Number(process.hrtime.bigint() - started) / 1e6 });
      return { status: 200, body: out };
    } catch (e) {
      const reply = isMacnetError(e)
        ? failedReply(e.code, e.message)
        : failedReply('INTERNAL', (e as Error)?.message ?? String(e));
      // The error itself: the logger writes its code, details, stack and cause chain.
      (isMacnetError(e) ? this.log.info : this.log.error)('call refused', { call, error: e, reply: reply.Err });
      return { status: 200, body: reply };
    }
  }

  /** The socket file this server created (device and inode): the only one it ever removes. */
  private owned: { path: string; dev: number; ino: number } | undefined;

  /**
   * Listens on `socketPath` with mode 0600 (the plugin dir is root's; the socket grants full control). A socket
   * file there that answers belongs to a live daemon (another network namespace, same plugin dir): refused
   * with DAEMON_ALREADY_RUNNING. One that does not answer was left by a killed daemon and is replaced.
   */
  async listen(socketPath: string): Promise<void> {
    fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o755 });
    await PluginServer.assertFree(socketPath);
    // Bound under a name of its own, then renamed into place: libuv unlinks the path it bound when the server
    // closes, whoever's file is there by then, so it must never be the shared path. The rename also replaces a
    // dead daemon's socket file atomically (listen on the path itself would fail with EADDRINUSE).
    const bound = path.join(path.dirname(socketPath), `.macnet-${process.pid}-${Date.now()}.sock`);
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      const old = process.umask(0o177);
      this.server.listen(bound, () => {
        process.umask(old);
        this.server.off('error', reject);
        resolve();
      });
    });
    fs.chmodSync(bound, 0o600);
    fs.renameSync(bound, socketPath);
    const mine = fs.lstatSync(socketPath);
    this.owned = { path: socketPath, dev: mine.dev, ino: mine.ino };
  }

  /**
   * Refuses (DAEMON_ALREADY_RUNNING) when a socket file at `socketPath` answers: a live daemon serves it.
   * True when a dead one's socket file is there (to be replaced), false when the path is free.
   */
  static async assertFree(socketPath: string): Promise<boolean> {
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(socketPath);
    } catch {
      /* absent */
    }
    if (!st?.isSocket()) return false;
    if (await answers(socketPath)) {
      throw new MacnetError(
        'DAEMON_ALREADY_RUNNING',
        `the plugin socket ${socketPath} is served by another process ` +
          '(a macnet daemon in another network namespace?): give this daemon its own --plugin-dir, or stop that one',
        { socket: socketPath },
      );
    }
    return true;
  }

  /**
   * Socket activation (systemd's LISTEN_FDS, src/cli/systemd.ts): serves a listening socket someone else made.
   * It is never removed by this process, since it is not this process's: libuv unlinks only a path it bound.
   */
  async listenFd(fd: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ fd }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  /**
   * Removes the socket file if it is still the one this server created (same device and inode): a successor
   * may have taken the path meanwhile. Synchronous, so that a fatal exit can call it. Idempotent.
   */
  removeSocket(): void {
    const o = this.owned;
    this.owned = undefined;
    if (!o) return;
    try {
      const st = fs.lstatSync(o.path);
      if (st.dev === o.dev && st.ino === o.ino) fs.unlinkSync(o.path);
    } catch {
      /* gone */
    }
  }

  /** Stops accepting, lets in-flight calls finish, closes the socket. */
  async close(): Promise<void> {
    this.removeSocket(); // new connections fail at once rather than wait for a server that is going
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    this.server.closeIdleConnections();
    await Promise.allSettled([...this.inflight]);
    this.server.closeAllConnections();
    await closed;
  }
}

/** Whether something accepts connections on the unix socket at `p` (within a second). */
function answers(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(p);
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
