// The processes of the names figure (bench/names.ts): the name table it serves, macnet's DNS server and dnsmasq
// answering it from one namespace, the asking client (bench/names-peer.ts) in another, and dockerd's event stream
// of a lab host with each event's time. Every child is killed by stopAll, also after a failure.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import type { NameRecord } from '../src/dns/names';
import type { LabHost } from '../test/lab/lab';

const PEER = path.join(__dirname, 'names-peer.js');
export const DNSMASQ = '/usr/sbin/dnsmasq';

/** Every child of the figure, so that a failure leaves none running. */
const children = new Set<ChildProcess>();

export async function stopAll(): Promise<void> {
  await Promise.all(
    [...children].map(
      (c) =>
        new Promise<void>((resolve) => {
          children.delete(c);
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGKILL');
        }),
    ),
  );
}

function start(cmd: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess {
  const c = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(env && { env }) });
  children.add(c);
  c.once('exit', () => children.delete(c));
  return c;
}

/** Resolves once the child printed `line` on stdout; rejects with its stderr if it exits first. */
function ready(c: ChildProcess, line: string, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    c.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    const onData = (b: Buffer) => {
      out += b.toString();
      if (out.includes(line)) {
        c.stdout!.off('data', onData);
        resolve();
      }
    };
    c.stdout!.on('data', onData);
    c.once('exit', (code) => reject(new Error(`${what} exited with ${code}: ${err.trim()}`)));
  });
}

export interface Table {
  /** [store key, record], as names-peer serve reads it. */
  records: [string, NameRecord][];
  /** The same names as a hosts file for dnsmasq: the host-qualified name first (the one PTR answers). */
  hosts: string;
  /** Every name either server answers, and the addresses (for PTR queries). */
  names: string[];
  addresses: string[];
}

/** `count` containers spread over `hosts` hosts, every fourth with a network alias; addresses in 198.19.0.0/16. */
export function nameTable(count: number, hosts: number): Table {
  const records: [string, NameRecord][] = [];
  const lines: string[] = [];
  const names: string[] = [];
  const addresses: string[] = [];
  for (let i = 0; i < count; i++) {
    const host = `h${(i % hosts) + 1}`;
    const name = `ctr-${String(i).padStart(4, '0')}`;
    const aliases = i % 4 === 0 ? [`svc-${String(i).padStart(4, '0')}`] : [];
    const v4 = `198.19.${Math.floor(i / 250) + 1}.${(i % 250) + 2}`;
    records.push([`names/${host}/net-1/${i}`, { name, aliases, host, v4: [v4], v6: [] }]);
    const all = [name, ...aliases];
    lines.push(`${v4} ${all.map((n) => `${n}.${host}`).join(' ')} ${all.join(' ')}`);
    names.push(...all, ...all.map((n) => `${n}.${host}`));
    addresses.push(v4);
  }
  return { records, hosts: `${lines.join('\n')}\n`, names, addresses };
}

/** macnet's DNS server (src/dns/server.ts) in namespace `netns`, on `address`:53, answering `tableFile`. */
export async function startMacnetDns(netns: string, tableFile: string, address: string): Promise<void> {
  const c = start('nsenter', [
    `--net=${netns}`,
    process.execPath,
    PEER,
    'serve',
    '--table',
    tableFile,
    '--address',
    address,
  ]);
  await ready(c, 'listening', "macnet's DNS (names-peer serve)");
}

/**
 * dnsmasq in `netns` on `address`:53, answering only `hostsFile` (no resolv.conf, no /etc/hosts), with the TTL of
 * macnet's answers. It logs to stderr; --keep-in-foreground keeps it our child. Ready once it answers.
 */
export function startDnsmasq(netns: string, hostsFile: string, address: string, ttl: number): void {
  start('nsenter', [
    `--net=${netns}`,
    DNSMASQ,
    '--keep-in-foreground',
    '--conf-file=/dev/null',
    '--no-resolv',
    '--no-hosts',
    `--addn-hosts=${hostsFile}`,
    `--listen-address=${address}`,
    '--bind-interfaces',
    '--port=53',
    `--local-ttl=${ttl}`,
    '--user=root',
    '--pid-file=',
    '--log-facility=-',
  ]);
}

export type Query = [string, 'A' | 'PTR'];

/** The asking client (names-peer ask) in namespace `netns`: one request at a time, in order. */
export class Asker {
  private readonly child: ChildProcess;
  private readonly waiting: ((line: string) => void)[] = [];
  private err = '';

  private constructor(netns: string) {
    this.child = start('nsenter', [`--net=${netns}`, process.execPath, PEER, 'ask']);
    this.child.stderr!.on('data', (b: Buffer) => (this.err += b.toString()));
  }

  static async start(netns: string): Promise<Asker> {
    const a = new Asker(netns);
    await ready(a.child, 'ready', 'the DNS client (names-peer ask)');
    readline.createInterface({ input: a.child.stdout! }).on('line', (l) => {
      if (l !== 'ready') a.waiting.shift()?.(l);
    });
    return a;
  }

  private request(req: unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.child.exitCode !== null) return reject(new Error(`the DNS client exited: ${this.err.trim()}`));
      this.waiting.push((l) => resolve(JSON.parse(l)));
      this.child.stdin!.write(`${JSON.stringify(req)}\n`);
    });
  }

  /** Each query timed on its own, one after the other. */
  time(server: string, queries: Query[]): Promise<{ samplesMs: number[]; failed: number }> {
    return this.request({ op: 'time', server, queries }) as Promise<{ samplesMs: number[]; failed: number }>;
  }

  /**
   * Starts polling `name` (a query every everyMs); the promise gives the monotonic time (ms) at which the wanted
   * state showed, or null after limitMs (names-peer.ts says exactly what counts).
   */
  poll(server: string, name: string, want: 'present' | 'absent', address: string | undefined, limitMs: number) {
    return this.request({ op: 'poll', server, name, want, address, everyMs: POLL_EVERY_MS, limitMs }) as Promise<{
      atMs: number | null;
      queries: number;
    }>;
  }
}

export const POLL_EVERY_MS = 10;

/** One network event of dockerd, with dockerd's own time of it. */
export interface EngineEventTime {
  action: string;
  container: string;
  /** Wall-clock milliseconds (dockerd's timeNano). */
  atWallMs: number;
}

/** `docker events` of network connect/disconnect on `host`, collected until stopAll. */
export function followNetworkEvents(host: LabHost): EngineEventTime[] {
  const seen: EngineEventTime[] = [];
  const env = { ...process.env, DOCKER_HOST: `unix://${host.dockerSocket}`, DOCKER_CONFIG: path.join(host.dir, 'cli') };
  const c = start(host.engine.cli, ['events', '--format', '{{json .}}', '--filter', 'type=network'], env);
  readline.createInterface({ input: c.stdout! }).on('line', (l) => {
    try {
      const e = JSON.parse(l) as {
        Action?: string;
        timeNano?: number;
        Actor?: { Attributes?: Record<string, string> };
      };
      const container = e.Actor?.Attributes?.['container'];
      if (e.Action && container && e.timeNano) seen.push({ action: e.Action, container, atWallMs: e.timeNano / 1e6 });
    } catch {
      /* not an event */
    }
  });
  return seen;
}

export function writeFile(dir: string, name: string, text: string): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
}
