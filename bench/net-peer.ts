// A small TCP peer for the data-path figure (bench/datapath.ts), run inside a container's network namespace
// with `nsenter --net=/proc/<container pid>/ns/net node dist/bench/net-peer.js ...`, so that the bytes cross
// the container's own interface. One server per container; one client process per measurement.
//
//   net-peer server --port P                         prints "listening <port>" once it accepts connections
//   net-peer client --connect HOST:PORT --mode up   [--seconds S]   client → server bulk send; the server counts
//   net-peer client --connect HOST:PORT --mode down [--seconds S]   server → client bulk send; the client counts
//   net-peer client --connect HOST:PORT --mode rr [--count N] [--warmup W] [--size B]   request/response
//   net-peer client --connect HOST:PORT --stdin    one run per JSON line on stdin ({"mode":"up","seconds":0.5},
//                                                  {"mode":"rr","count":500,"warmup":50}), one result line each
//
// The client prints one JSON line: {"bytes","ms","mbitPerS"} for up/down (counted by the receiver, from its
// first byte to the sender's end; up adds "peer", the client address as the server saw it), {"samplesMs":[...]}
// for rr (each round trip timed on its own). With --stdin the process stays up between runs, so a benchmark can
// alternate short runs of several clients without paying Node's start-up per run; each run is a new connection.
//
// The protocol: the client sends one JSON line naming the mode, then the data. Bulk writes are 256 KiB
// buffers written while the socket accepts them (respecting backpressure), so the sender is never idle while
// the kernel can take more. Nagle is off for rr: every request is one small segment and the answer comes back
// at once, as in a request/response protocol.
import * as net from 'node:net';
import * as readline from 'node:readline';
import { parseArgs } from 'node:util';

const CHUNK = Buffer.alloc(256 * 1024, 0x5a);

interface Header {
  mode: 'up' | 'down' | 'rr';
  seconds?: number;
}

const now = (): number => Number(process.hrtime.bigint()) / 1e6;

/** Writes CHUNK for `seconds` while the socket takes it, then ends the socket. */
function blast(sock: net.Socket, seconds: number): void {
  const until = now() + seconds * 1000;
  const pump = () => {
    while (now() < until) {
      if (!sock.write(CHUNK)) {
        sock.once('drain', pump);
        return;
      }
    }
    sock.end();
  };
  pump();
}

/** Counts bytes from the first one to 'end'. */
function count(sock: net.Socket, initial: Buffer, done: (bytes: number, ms: number) => void): void {
  let bytes = initial.length;
  let first = initial.length ? now() : 0;
  sock.on('data', (b: Buffer) => {
    if (!first) first = now();
    bytes += b.length;
  });
  sock.once('end', () => done(bytes, first ? now() - first : 0));
}

function serve(port: number): void {
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (sock) => {
    let head = Buffer.alloc(0);
    const onHeader = (b: Buffer) => {
      head = Buffer.concat([head, b]);
      const nl = head.indexOf(0x0a);
      if (nl < 0) return;
      sock.off('data', onHeader);
      const h = JSON.parse(head.subarray(0, nl).toString()) as Header;
      const rest = head.subarray(nl + 1);
      if (h.mode === 'up') {
        count(sock, rest, (bytes, ms) => sock.end(`${JSON.stringify({ bytes, ms, peer: sock.remoteAddress })}\n`));
      } else if (h.mode === 'down') {
        sock.on('data', () => undefined);
        blast(sock, h.seconds ?? 3);
      } else {
        if (rest.length) sock.write(rest);
        sock.on('data', (d: Buffer) => sock.write(d));
        sock.once('end', () => sock.end());
      }
    };
    sock.on('data', onHeader);
    sock.on('error', () => sock.destroy());
  });
  server.listen(port, () => process.stdout.write(`listening ${port}\n`));
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => process.exit(0));
}

function connect(target: string): Promise<net.Socket> {
  const i = target.lastIndexOf(':');
  const host = target.slice(0, i);
  const port = Number(target.slice(i + 1));
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port, allowHalfOpen: true, noDelay: true }, () => resolve(sock));
    sock.once('error', reject);
  });
}

/** Bytes and ms as the receiver counted them; for up also the client address the server saw (NAT shows here). */
async function bulk(
  target: string,
  mode: 'up' | 'down',
  seconds: number,
): Promise<{ bytes: number; ms: number; peer?: string }> {
  const sock = await connect(target);
  sock.write(`${JSON.stringify({ mode, seconds } satisfies Header)}\n`);
  if (mode === 'down') {
    return new Promise((resolve, reject) => {
      sock.once('error', reject);
      count(sock, Buffer.alloc(0), (bytes, ms) => {
        sock.end();
        resolve({ bytes, ms });
      });
    });
  }
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    let answer = '';
    sock.on('data', (b: Buffer) => {
      answer += b.toString();
    });
    sock.once('end', () => {
      try {
        resolve(JSON.parse(answer) as { bytes: number; ms: number; peer: string });
      } catch (e) {
        reject(e as Error);
      }
    });
    blast(sock, seconds);
  });
}

async function requestResponse(target: string, count: number, warmup: number, size: number): Promise<number[]> {
  const sock = await connect(target);
  sock.write(`${JSON.stringify({ mode: 'rr' } satisfies Header)}\n`);
  const req = Buffer.alloc(size, 0x61);
  let pending = 0;
  let wake: (() => void) | undefined;
  sock.on('data', (b: Buffer) => {
    pending -= b.length;
    if (pending <= 0 && wake) {
      const w = wake;
      wake = undefined;
      w();
    }
  });
  let failed: Error | undefined;
  sock.once('error', (e) => {
    failed = e;
    wake?.();
  });
  const samples: number[] = [];
  for (let i = 0; i < warmup + count; i++) {
    const t0 = now();
    pending += size;
    await new Promise<void>((resolve) => {
      wake = resolve;
      sock.write(req);
    });
    if (failed) throw failed;
    if (i >= warmup) samples.push(now() - t0);
  }
  sock.end();
  return samples;
}

interface Command {
  mode: 'up' | 'down' | 'rr';
  seconds?: number;
  count?: number;
  warmup?: number;
  size?: number;
}

async function runOne(target: string, c: Command): Promise<Record<string, unknown>> {
  if (c.mode === 'up' || c.mode === 'down') {
    const r = await bulk(target, c.mode, c.seconds ?? 3);
    return { ...r, mbitPerS: (r.bytes * 8) / (r.ms * 1000) };
  }
  if (c.mode === 'rr')
    return { samplesMs: await requestResponse(target, c.count ?? 2000, c.warmup ?? 200, c.size ?? 64) };
  throw new Error(`unknown mode ${String(c.mode)}`);
}

async function fromStdin(target: string): Promise<void> {
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    const result = await runOne(target, JSON.parse(line) as Command).catch((e: unknown) => ({ error: String(e) }));
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      connect: { type: 'string' },
      mode: { type: 'string' },
      seconds: { type: 'string' },
      count: { type: 'string' },
      warmup: { type: 'string' },
      size: { type: 'string' },
      stdin: { type: 'boolean' },
    },
  });
  if (positionals[0] === 'server') return serve(Number(values.port ?? 5201));
  if (positionals[0] !== 'client' || !values.connect)
    throw new Error('usage: net-peer server --port P | client --connect HOST:PORT --mode up|down|rr');
  if (values.stdin) return fromStdin(values.connect);
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const result = await runOne(values.connect, {
    mode: (values.mode ?? 'up') as Command['mode'],
    seconds: num(values.seconds),
    count: num(values.count),
    warmup: num(values.warmup),
    size: num(values.size),
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`net-peer: ${String(e)}\n`);
    process.exitCode = 1;
  });
}
