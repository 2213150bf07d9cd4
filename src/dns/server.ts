// macnet's DNS server (docs/names.md): UDP and TCP on port 53 of each address it is given (each network's host-access
// address, which the host's own containers and the LAN can reach), answering for the containers' names from a
// NameTable (answer.ts) and forwarding the rest (forward.ts). Addresses come and go with the networks: listenOn and
// stopListening, each idempotent. A failure to bind one address is reported to the caller and leaves the others.
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import * as packet from 'dns-packet';
import { answer, servfail, type NameTable } from './answer';
import { forward, type Upstream } from './forward';
import type { Logger } from '../log';

/** The most a UDP reply may carry for a client that did not say it takes more (RFC 1035; EDNS is not used). */
const UDP_MAX = 512;
/** A TCP client that sends nothing for this long is closed (RFC 7766 suggests seconds). */
const TCP_IDLE_MS = 10_000;

export interface DnsServerOptions {
  readonly port?: number;
  readonly table: NameTable;
  /** Asked per forwarded query, so that a changed /etc/resolv.conf counts at once. */
  readonly upstreams: () => readonly Upstream[];
  readonly log: Logger;
}

interface Listener {
  readonly udp: dgram.Socket;
  readonly tcp: net.Server;
}

export class DnsServer {
  private readonly listeners = new Map<string, Listener>();
  private readonly port: number;
  private closed = false;

  constructor(private readonly opts: DnsServerOptions) {
    this.port = opts.port ?? 53;
  }

  get addresses(): string[] {
    return [...this.listeners.keys()];
  }

  /** Serves on `address` (UDP and TCP); throws the bind error, with nothing left open, if either fails. */
  async listenOn(address: string): Promise<void> {
    if (this.closed || this.listeners.has(address)) return;
    const udp = dgram.createSocket({ type: net.isIPv6(address) ? 'udp6' : 'udp4' });
    const tcp = net.createServer((c) => this.serveTcp(c));
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind({ address, port: this.port, exclusive: true }, () => {
          udp.off('error', reject);
          resolve();
        });
      });
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen({ host: address, port: this.port, exclusive: true }, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
    } catch (e) {
      udp.close();
      tcp.close();
      throw e;
    }
    udp.on('message', (msg, from) => void this.serveUdp(udp, msg, from));
    udp.on('error', (e) => this.opts.log.warn('dns: UDP socket error', { address, error: e.message }));
    this.listeners.set(address, { udp, tcp });
  }

  async stopListening(address: string): Promise<void> {
    const l = this.listeners.get(address);
    if (!l) return;
    this.listeners.delete(address);
    l.udp.close();
    await new Promise<void>((r) => l.tcp.close(() => r()));
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.addresses.map((a) => this.stopListening(a)));
  }

  private async reply(query: Buffer, tcp: boolean): Promise<Buffer> {
    const out = answer(query, this.opts.table);
    if ('reply' in out) return out.reply;
    return (await forward(query, this.opts.upstreams(), tcp)) ?? servfail(query);
  }

  private async serveUdp(sock: dgram.Socket, msg: Buffer, from: dgram.RemoteInfo): Promise<void> {
    let r = await this.reply(msg, false);
    if (r.length > UDP_MAX) r = truncated(r);
    if (r.length === 0 || !this.listeners.size) return;
    sock.send(r, from.port, from.address, () => undefined);
  }

  /** RFC 1035 framing: each message after its length in two bytes; several may follow on one connection. */
  private serveTcp(c: net.Socket): void {
    let buf = Buffer.alloc(0);
    c.setTimeout(TCP_IDLE_MS, () => c.destroy());
    c.on('error', () => c.destroy());
    c.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        void this.reply(msg, true).then((r) => {
          if (r.length === 0 || c.destroyed) return;
          const len = Buffer.alloc(2);
          len.writeUInt16BE(r.length);
          c.write(Buffer.concat([len, r]));
        });
      }
    });
  }
}

/** The reply without its records and with TC set: the client asks again over TCP. */
function truncated(r: Buffer): Buffer {
  const p = packet.decode(r);
  return packet.encode({
    type: 'response',
    id: p.id ?? 0,
    flags: (p.flags ?? 0) | packet.TRUNCATED_RESPONSE,
    questions: p.questions ?? [],
  });
}
