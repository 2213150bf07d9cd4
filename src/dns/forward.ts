// Names that are not ours go to the host's resolvers (the nameservers of the host's /etc/resolv.conf, read by the
// caller): the query's own bytes, over UDP or TCP as it came, to each upstream in turn until one answers. Each
// query gets a socket of its own, so replies of two clients that chose the same id cannot be crossed.
import * as dgram from 'node:dgram';
import * as net from 'node:net';

/** How long one upstream has to answer before the next one is asked. */
export const UPSTREAM_TIMEOUT_MS = 2000;

export interface Upstream {
  readonly address: string;
  readonly port: number;
}

/** The reply of the first upstream that answers `query`, or undefined when none did. */
export async function forward(
  query: Buffer,
  upstreams: readonly Upstream[],
  tcp: boolean,
  timeoutMs = UPSTREAM_TIMEOUT_MS,
): Promise<Buffer | undefined> {
  for (const u of upstreams) {
    const r = await (tcp ? overTcp : overUdp)(query, u, timeoutMs).catch(() => undefined);
    if (r && r.length >= 12 && r.readUInt16BE(0) === query.readUInt16BE(0)) return r;
  }
  return undefined;
}

function overUdp(query: Buffer, u: Upstream, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(net.isIPv6(u.address) ? 'udp6' : 'udp4');
    const done = (r: Buffer | undefined) => {
      clearTimeout(timer);
      sock.close();
      resolve(r);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    sock.on('error', () => done(undefined));
    sock.on('message', (msg, from) => {
      if (from.address === u.address && from.port === u.port) done(msg);
    });
    sock.send(query, u.port, u.address);
  });
}

function overTcp(query: Buffer, u: Upstream, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: u.address, port: u.port });
    let got = Buffer.alloc(0);
    const done = (r: Buffer | undefined) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    sock.on('error', () => done(undefined));
    sock.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      sock.write(Buffer.concat([len, query]));
    });
    sock.on('data', (c: Buffer) => {
      got = Buffer.concat([got, c]);
      if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) done(got.subarray(2, 2 + got.readUInt16BE(0)));
    });
    sock.on('end', () => done(undefined));
  });
}

/** The nameservers of a resolv.conf text, port 53, without `exclude` (our own addresses: no loop). */
export function upstreamsOf(resolvConf: string, exclude: readonly string[] = []): Upstream[] {
  const out: Upstream[] = [];
  for (const line of resolvConf.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    const address = m?.[1]?.replace(/%.*$/, '');
    if (address && net.isIP(address) && !exclude.includes(address)) out.push({ address, port: 53 });
  }
  return out;
}
