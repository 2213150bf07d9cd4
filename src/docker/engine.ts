// The Docker Engine API over its unix socket, as much as macnet needs: JSON GETs and the event stream. Paths are
// unversioned, so every engine answers in its own current version (Docker 29 refuses versions below 1.44, 20.10
// knows none above 1.41); macnet reads only fields every one of them has.
import * as http from 'node:http';

export class EngineApi {
  constructor(readonly socketPath: string) {}

  /** GET `urlPath`: the parsed JSON, undefined on 404; any other status throws with the engine's message. */
  get<T>(urlPath: string, timeoutMs = 10_000): Promise<T | undefined> {
    return new Promise((resolve, reject) => {
      const req = http.get(
        { socketPath: this.socketPath, path: urlPath, headers: { Host: 'docker' }, timeout: timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const body = Buffer.concat(chunks).toString();
            if (res.statusCode === 404) return resolve(undefined);
            if (res.statusCode !== 200) return reject(new Error(`GET ${urlPath}: ${res.statusCode} ${body.trim()}`));
            try {
              resolve(JSON.parse(body) as T);
            } catch (e) {
              reject(e as Error);
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`GET ${urlPath}: no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
    });
  }

  /**
   * Follows /events with `filters` (the API's JSON form): `onEvent` for each, `onOpen` once the engine answered
   * (events from then on are delivered), `onEnd` when the stream ends or fails. Returns a function that stops it.
   */
  events(
    filters: Record<string, string[]>,
    on: { onOpen(): void; onEvent(e: EngineEvent): void; onEnd(error: Error | undefined): void },
  ): () => void {
    let ended = false;
    const end = (e: Error | undefined) => {
      if (ended) return;
      ended = true;
      on.onEnd(e);
    };
    const urlPath = `/events?filters=${encodeURIComponent(JSON.stringify(filters))}`;
    const req = http.get({ socketPath: this.socketPath, path: urlPath, headers: { Host: 'docker' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return end(new Error(`GET /events: ${res.statusCode}`));
      }
      on.onOpen();
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line) continue;
          try {
            on.onEvent(JSON.parse(line) as EngineEvent);
          } catch {
            /* a line that is not an event: skipped */
          }
        }
      });
      res.on('error', (e) => end(e));
      res.on('end', () => end(undefined));
    });
    req.on('error', (e) => end(e));
    return () => {
      ended = true;
      req.destroy();
    };
  }
}

export interface EngineEvent {
  readonly Type?: string;
  readonly Action?: string;
  readonly Actor?: { readonly ID?: string; readonly Attributes?: Record<string, string> };
}

/** The parts of GET /containers/{id}/json macnet reads. */
export interface ContainerInspect {
  readonly Id: string;
  readonly Name: string;
  readonly State?: { readonly Running?: boolean };
  readonly NetworkSettings?: {
    readonly Networks?: Record<
      string,
      {
        readonly NetworkID?: string;
        readonly EndpointID?: string;
        readonly Aliases?: readonly string[] | null;
        readonly DNSNames?: readonly string[] | null;
        readonly IPAddress?: string;
        readonly GlobalIPv6Address?: string;
      }
    >;
  };
}
