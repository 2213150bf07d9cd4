// The DNS processes of the names figure (bench/names.ts), each run inside a lab namespace with
// `nsenter --net=<ns> node dist/bench/names-peer.js ...`, so that every query crosses a real link:
//
//   names-peer serve --table FILE --address A   macnet's DNS server (src/dns/server.ts) on A:53, answering from a
//                                                Names table (src/dns/names.ts) of the records in FILE (JSON:
//                                                [key, NameRecord][]), nothing to forward to; prints "listening"
//   names-peer ask                              a client that stays up; one JSON request per stdin line, one
//                                                JSON result line per request, in the order they came:
//     {"op":"time","server":A,"queries":[[name,type],...]}   each query sent after the previous one's answer,
//         each timed on its own: {"samplesMs":[...],"failed":n} (failed: no answer within 1 s, or a wrong one)
//     {"op":"poll","server":A,"name":N,"want":"present"|"absent","address":IP,"everyMs":10,"limitMs":15000}
//         a query for N every everyMs, each with its own id and without waiting for the previous one, until the
//         wanted state shows: {"atMs":t} with t on the monotonic clock (process.hrtime, the same in every
//         process of the machine). present: when the first reply holding `address` arrived. absent: when the
//         first query was sent whose reply did not hold `address` (an answer without it, or none in 3 s),
//         once every query sent before it has its reply; {"atMs":null} after limitMs.
// Node's start-up is paid once per process, never per query.
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import { parseArgs } from 'node:util';
import * as packet from 'dns-packet';
import { DnsServer } from '../src/dns/server';
import { Names, type NameRecord } from '../src/dns/names';
import { silentLogger } from '../src/log';

export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

async function serve(table: string, address: string): Promise<void> {
  const names = new Names();
  for (const [key, rec] of JSON.parse(fs.readFileSync(table, 'utf8')) as [string, NameRecord][]) names.set(key, rec);
  const server = new DnsServer({ table: names, upstreams: () => [], log: silentLogger });
  await server.listenOn(address);
  process.stdout.write('listening\n');
  process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
}

/** One UDP socket and the queries in flight on it, by id. */
class Asker {
  private readonly sock = dgram.createSocket('udp4');
  private readonly pending = new Map<number, (reply: packet.DecodedPacket | undefined) => void>();
  private nextId = 1;

  constructor() {
    this.sock.on('message', (msg) => {
      let p: packet.DecodedPacket;
      try {
        p = packet.decode(msg);
      } catch {
        return;
      }
      const done = this.pending.get(p.id ?? -1);
      if (done) done(p);
    });
  }

  /** The reply, or undefined after timeoutMs. */
  ask(server: string, name: string, type: 'A' | 'PTR', timeoutMs: number): Promise<packet.DecodedPacket | undefined> {
    const id = (this.nextId = (this.nextId % 65535) + 1);
    const q = packet.encode({ type: 'query', id, flags: packet.RECURSION_DESIRED, questions: [{ type, name }] });
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      const finish = (r: packet.DecodedPacket | undefined) => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(r);
      };
      this.pending.set(id, finish);
      this.sock.send(q, 53, server);
    });
  }
}

/** Whether the reply holds `address` (any address when undefined). */
const holds = (r: packet.DecodedPacket | undefined, address: string | undefined): boolean =>
  (r?.answers ?? []).some((a) => a.type === 'A' && (address === undefined || a.data === address));

interface TimeReq {
  op: 'time';
  server: string;
  queries: [string, 'A' | 'PTR'][];
}
interface PollReq {
  op: 'poll';
  server: string;
  name: string;
  want: 'present' | 'absent';
  address?: string;
  everyMs: number;
  limitMs: number;
}

async function time(a: Asker, r: TimeReq): Promise<unknown> {
  const samplesMs: number[] = [];
  let failed = 0;
  for (const [name, type] of r.queries) {
    const t0 = nowMs();
    const reply = await a.ask(r.server, name, type, 1000);
    const t = nowMs() - t0;
    if (reply && ((reply.flags ?? 0) & 0xf) === 0 && (reply.answers?.length ?? 0) > 0) samplesMs.push(t);
    else failed++;
  }
  return { samplesMs, failed };
}

function poll(a: Asker, r: PollReq): Promise<unknown> {
  return new Promise((resolve) => {
    const sent: { at: number; has?: boolean }[] = [];
    let done = false;
    const finish = (atMs: number | null) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      resolve({ atMs, queries: sent.length });
    };
    const check = () => {
      if (r.want === 'present') return;
      for (const q of sent) {
        if (q.has === undefined) return; // an earlier query still out: it may yet hold the address
        if (!q.has) return finish(q.at);
      }
    };
    const start = nowMs();
    const tick = () => {
      if (nowMs() - start > r.limitMs) return finish(null);
      const q: { at: number; has?: boolean } = { at: nowMs() };
      sent.push(q);
      void a.ask(r.server, r.name, 'A', 3000).then((reply) => {
        q.has = holds(reply, r.address);
        if (r.want === 'present' && q.has) finish(nowMs());
        else check();
      });
    };
    const timer = setInterval(tick, r.everyMs);
    tick();
  });
}

async function askLoop(): Promise<void> {
  const a = new Asker();
  const rl = readline.createInterface({ input: process.stdin });
  let chain = Promise.resolve();
  rl.on('line', (line) => {
    if (!line.trim()) return;
    chain = chain.then(async () => {
      const req = JSON.parse(line) as TimeReq | PollReq;
      const out = req.op === 'time' ? await time(a, req) : await poll(a, req);
      process.stdout.write(`${JSON.stringify(out)}\n`);
    });
  });
  rl.on('close', () => void chain.then(() => process.exit(0)));
  process.stdout.write('ready\n');
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { table: { type: 'string' }, address: { type: 'string' } },
  });
  if (positionals[0] === 'serve' && values.table && values.address) return serve(values.table, values.address);
  if (positionals[0] === 'ask') return askLoop();
  process.stderr.write('usage: names-peer serve --table FILE --address A | names-peer ask\n');
  process.exit(2);
}

if (require.main === module)
  main().catch((e: unknown) => {
    process.stderr.write(`names-peer: ${String(e)}\n`);
    process.exit(1);
  });
