// A real DHCP server for the tests: dnsmasq (Debian's dnsmasq-base) in the lab's LAN namespace, serving on the
// LAN bridge. No DNS (--port=0), no system config, lease file and pid file in a directory of our own, killed
// and reaped by stop() (and by an exit hook if a test file dies without its after hook).
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { which } from '../lab/lab';
import type { TestNetns } from '../lab/netns';

export interface DnsmasqOptions {
  /** e.g. "198.18.15.100,198.18.15.199,255.255.255.0,2m" */
  range: string;
  iface?: string;
  ping?: boolean;
  /** Extra flags, e.g. --dhcp-option=option:T1,5. */
  extra?: string[];
}

export interface LeaseLine {
  expires: number;
  mac: string;
  ip: string;
  hostname: string;
  clientId: string;
}

const running = new Map<ChildProcess, string>();
let counter = 0;

export const dnsmasqMissing = (): string | undefined =>
  which('dnsmasq') ? undefined : 'dnsmasq is not installed (apt-get install dnsmasq-base)';

export class Dnsmasq {
  readonly leaseFile: string;
  log = '';
  private exited: Promise<void>;

  private constructor(
    readonly dir: string,
    private readonly child: ChildProcess,
  ) {
    this.leaseFile = path.join(dir, 'leases');
    this.exited = new Promise((r) => child.once('exit', () => r()));
    child.stderr!.on('data', (d: Buffer) => {
      this.log += d.toString();
    });
    child.stdout!.on('data', (d: Buffer) => {
      this.log += d.toString();
    });
  }

  static async start(ns: TestNetns, o: DnsmasqOptions): Promise<Dnsmasq> {
    const dir = fs.mkdtempSync(`/tmp/macnet-dhcp-${process.pid}-${++counter}-`);
    const args = [
      `--net=${ns.path}`,
      which('dnsmasq')!,
      '--conf-file=/dev/null',
      '--keep-in-foreground',
      '--no-daemon',
      '--port=0',
      '--no-resolv',
      '--no-hosts',
      '--user=root',
      '--group=root', // root's /tmp dir; dnsmasq would switch to nobody and fail to write it
      `--interface=${o.iface ?? 'sw0'}`,
      '--bind-interfaces',
      '--dhcp-authoritative',
      `--dhcp-range=${o.range}`,
      `--dhcp-leasefile=${path.join(dir, 'leases')}`,
      `--pid-file=${path.join(dir, 'pid')}`,
      '--dhcp-option=option:dns-server,198.18.15.53',
      '--domain=lab.test',
      '--log-dhcp',
      '--log-facility=-',
      ...(o.ping === false ? ['--no-ping'] : []),
      ...(o.extra ?? []),
    ];
    const child = spawn('nsenter', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    running.set(child, dir);
    const d = new Dnsmasq(dir, child);
    // Ready when it logs that DHCP is on (it binds port 67 before that line).
    const until = Date.now() + 5000;
    while (!/DHCP, IP range/.test(d.log)) {
      if (child.exitCode !== null || Date.now() > until) {
        await d.stop();
        throw new Error(`dnsmasq did not start: ${d.log}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return d;
  }

  leases(): LeaseLine[] {
    let text: string;
    try {
      text = fs.readFileSync(this.leaseFile, 'utf8');
    } catch {
      return [];
    }
    return text
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [expires, mac, ip, hostname, clientId] = l.split(' ');
        return { expires: Number(expires), mac: mac!, ip: ip!, hostname: hostname!, clientId: clientId! };
      });
  }

  /** Kills dnsmasq (by its pid: nsenter execs it), waits for it to be reaped, removes its files. Idempotent. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    await this.exited;
    running.delete(this.child);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

process.on('exit', () => {
  for (const [c, dir] of running) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* gone */
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
