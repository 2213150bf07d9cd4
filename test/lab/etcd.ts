// Real etcd members (Debian's etcd-server, /usr/bin/etcd) for the cluster store's tests: one member or three,
// optionally with TLS (a CA, server and client certificates made here with openssl) and user/password auth.
//
// Where they run: the test process that uses this module runs INSIDE a network namespace of its own (the test
// file re-runs itself there, test/store/etcd.test.ts), which has its 198.18.0.x addresses on its own lo. The
// members are its children, so they bind in that namespace too, and the store under test reaches them directly.
// Nothing here adds an address or a link: requireLabNetns() refuses to start a member outside such a namespace.
// Or the members run in namespaces the caller names (`placement`: lab hosts on their LAN addresses, the Docker
// cluster test), each exec'd there by nsenter, and etcdctl in a namespace that reaches them.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run, sh } from './sh';

export const ETCD = '/usr/bin/etcd';
export const ETCDCTL = '/usr/bin/etcdctl';
/** Set by the outer test process: the namespace the inner one runs in, and the addresses on its lo. */
export const NETNS_ENV = 'MACNET_ETCD_NETNS';
export const ADDRS_ENV = 'MACNET_ETCD_ADDRS';

/** Throws unless this process's network namespace is the lab namespace named in the environment. */
export function requireLabNetns(): string[] {
  const name = process.env[NETNS_ENV];
  if (!name) throw new Error(`${NETNS_ENV} is not set: etcd members start only inside the lab's own namespace`);
  if (fs.statSync('/proc/self/ns/net').ino !== fs.statSync(`/run/netns/${name}`).ino)
    throw new Error(`this process is not inside network namespace ${name}`);
  return (process.env[ADDRS_ENV] ?? '').split(',').filter(Boolean);
}

export interface TlsFiles {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export interface ClusterOptions {
  readonly members: 1 | 3;
  /**
   * Run the members in these namespaces, one each, on these addresses (lab hosts' LAN addresses, test/docker/
   * cluster.test.ts), instead of in this process's namespace; etcdctl then runs in `ctlNetns`. As many as
   * `members`.
   */
  readonly placement?: { readonly members: readonly MemberPlace[]; readonly ctlNetns: string };
  /** Where the data dirs and certificates go (default: a temp dir); a lab's dir puts them in its clean-up. */
  readonly parentDir?: string;
  readonly tls?: boolean;
  /** Enables auth with a root user and a user "macnet" whose role may read and write the prefix "macnet/" only. */
  readonly auth?: boolean;
}

let clusters = 0;
/** Clusters not closed yet: killed and removed at exit if a test ends without its after() hook. */
const live = new Set<EtcdCluster>();
process.on('exit', () => {
  for (const c of live) c.closeSync();
});

export const ROOT_PASSWORD = 'root-secret';
export const MACNET_USER = { user: 'macnet', password: 'macnet-secret' };

/** A member's place: a network namespace (its path) and an address there. */
export interface MemberPlace {
  readonly netns: string;
  readonly ip: string;
}

interface Member {
  readonly name: string;
  readonly ip: string;
  /** The namespace it runs in (nsenter execs etcd, so the child is etcd itself); none: this process's. */
  readonly netns?: string;
  readonly args: string[];
  proc?: ChildProcess;
}

export class EtcdCluster {
  /** Where etcdctl runs when the members are placed in other namespaces (ClusterOptions.placement). */
  private ctlNetns: string | undefined;

  private constructor(
    readonly dir: string,
    private readonly members: Member[],
    /** Client certificate, key and the CA that signed the members' certificates (with tls). */
    readonly tls: TlsFiles | undefined,
    /** A CA that signed nothing of this cluster's: a client trusting it must refuse the members. */
    readonly wrongCa: string | undefined,
  ) {}

  get endpoints(): string[] {
    return this.members.map((m) => this.url(m.ip));
  }

  private url(ip: string): string {
    return `${this.tls ? 'https' : 'http'}://${ip}:2379`;
  }

  static async start(opts: ClusterOptions): Promise<EtcdCluster> {
    const places = opts.placement?.members;
    const addrs = places ? places.map((p) => p.ip) : requireLabNetns();
    if (addrs.length < opts.members) throw new Error(`${opts.members} members need as many addresses, have ${addrs}`);
    const dir = fs.mkdtempSync(path.join(opts.parentDir ?? os.tmpdir(), 'macnet-etcd-'));
    const ips = addrs.slice(0, opts.members);
    let cluster: EtcdCluster | undefined;
    try {
      const tls = opts.tls ? await makeCerts(path.join(dir, 'pki'), ips) : undefined;
      const scheme = tls ? 'https' : 'http';
      // Member IDs derive from the peer URLs and this token: a token per cluster keeps a later cluster on the
      // same addresses from taking an earlier one's messages for its own.
      const token = `macnet-test-${process.pid}-${++clusters}`;
      const initial = ips.map((ip, i) => `m${i + 1}=http://${ip}:2380`).join(',');
      const members = ips.map((ip, i) => {
        const name = `m${i + 1}`;
        const args = [
          `--name=${name}`,
          `--data-dir=${path.join(dir, name)}`,
          `--listen-client-urls=${scheme}://${ip}:2379`,
          `--advertise-client-urls=${scheme}://${ip}:2379`,
          `--listen-peer-urls=http://${ip}:2380`,
          `--initial-advertise-peer-urls=http://${ip}:2380`,
          `--initial-cluster=${initial}`,
          '--initial-cluster-state=new',
          `--initial-cluster-token=${token}`,
          '--logger=zap',
          '--log-level=warn',
          ...(tls
            ? [
                `--cert-file=${path.join(dir, 'pki', 'server.crt')}`,
                `--key-file=${path.join(dir, 'pki', 'server.key')}`,
                `--trusted-ca-file=${tls.ca}`,
                '--client-cert-auth',
              ]
            : []),
        ];
        return { name, ip, args, ...(places && { netns: places[i]!.netns }) };
      });
      cluster = new EtcdCluster(dir, members, tls, tls ? path.join(dir, 'pki', 'wrong-ca.crt') : undefined);
      if (opts.placement) cluster.ctlNetns = opts.placement.ctlNetns;
      live.add(cluster);
      for (let i = 0; i < members.length; i++) cluster.startMember(i);
      await cluster.waitHealthy(cluster.endpoints);
      if (opts.auth) await cluster.enableAuth();
      return cluster;
    } catch (e) {
      if (cluster) await cluster.close();
      else fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** Starts member `i` (again): its data dir keeps its membership. */
  startMember(i: number): void {
    const m = this.members[i]!;
    if (m.proc && m.proc.exitCode === null && m.proc.signalCode === null) return;
    const log = fs.openSync(path.join(this.dir, `${m.name}.log`), 'a');
    const [cmd, args] = m.netns ? ['nsenter', [`--net=${m.netns}`, ETCD, ...m.args]] : [ETCD, m.args];
    m.proc = spawn(cmd, args, { stdio: ['ignore', log, log] });
    fs.closeSync(log);
  }

  /** Stops member `i` (SIGTERM, or SIGKILL: a crash) and waits for it to exit. */
  async stopMember(i: number, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const p = this.members[i]!.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    await exited;
  }

  /** Waits until every endpoint given answers `etcdctl endpoint health` (a quorum read through each). */
  async waitHealthy(endpoints: readonly string[], timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.etcdctl(['endpoint', 'health'], { endpoints });
      if (r.code === 0) return;
      if (Date.now() > deadline)
        throw new Error(`etcd not healthy after ${timeoutMs} ms: ${r.stderr.trim()}\n${this.logs()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** The index of the member that is the leader now, by `etcdctl endpoint status` of the running members. */
  async leader(): Promise<number> {
    const r = await this.etcdctl(['endpoint', 'status', '-w', 'json']);
    const status = JSON.parse(r.stdout || '[]') as {
      Endpoint: string;
      Status: { leader: string; header: { member_id: string } };
    }[];
    const lead = status.find((e) => e.Status.leader === e.Status.header.member_id);
    const i = lead ? this.endpoints.indexOf(lead.Endpoint) : -1;
    if (i < 0) throw new Error(`no leader among the members: ${r.stdout} ${r.stderr}`);
    return i;
  }

  /** etcdctl with this cluster's TLS files and endpoints (or those given); `as` adds a user:password. */
  etcdctl(args: readonly string[], opts: { as?: string; endpoints?: readonly string[] } = {}) {
    const { as, endpoints = this.endpoints } = opts;
    const base = [`--endpoints=${endpoints.join(',')}`, '--dial-timeout=2s', '--command-timeout=3s'];
    if (this.tls) base.push(`--cacert=${this.tls.ca}`, `--cert=${this.tls.cert}`, `--key=${this.tls.key}`);
    if (as) base.push(`--user=${as}`);
    const env = { env: { ...process.env, ETCDCTL_API: '3' } };
    if (this.ctlNetns) return run('nsenter', [`--net=${this.ctlNetns}`, ETCDCTL, ...base, ...args], env);
    return run(ETCDCTL, [...base, ...args], env);
  }

  /** root with the root role (etcd needs it before `auth enable`), and a least-privilege user for macnet/. */
  private async enableAuth(): Promise<void> {
    const steps = [
      ['user', 'add', `root:${ROOT_PASSWORD}`],
      ['role', 'add', 'root'],
      ['user', 'grant-role', 'root', 'root'],
      ['role', 'add', 'macnet'],
      ['role', 'grant-permission', 'macnet', '--prefix=true', 'readwrite', 'macnet/'],
      ['user', 'add', `${MACNET_USER.user}:${MACNET_USER.password}`],
      ['user', 'grant-role', MACNET_USER.user, 'macnet'],
      ['auth', 'enable'],
    ];
    for (const s of steps) {
      const r = await this.etcdctl(s);
      if (r.code !== 0) throw new Error(`etcdctl ${s.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
    }
  }

  /** The members' logs, for a failure message. */
  logs(): string {
    return this.members
      .map((m) => {
        try {
          const state = m.proc
            ? `pid ${m.proc.pid}, exit ${m.proc.exitCode ?? m.proc.signalCode ?? 'none yet'}`
            : 'never started';
          return `--- ${m.name}.log (${state}), tail:\n${fs.readFileSync(path.join(this.dir, `${m.name}.log`), 'utf8').slice(-2000)}`;
        } catch {
          return `--- ${m.name}.log: none`;
        }
      })
      .join('\n');
  }

  /** Kills every member and removes the data dirs and certificates. Idempotent. */
  async close(): Promise<void> {
    for (let i = 0; i < this.members.length; i++) await this.stopMember(i, 'SIGKILL');
    fs.rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }

  /** The same at process exit, where nothing can be awaited: SIGKILL by pid, then the files. */
  closeSync(): void {
    for (const m of this.members) if (m.proc?.exitCode === null && m.proc.signalCode === null) m.proc.kill('SIGKILL');
    fs.rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }
}

/** A CA, a server certificate for `ips`, a client certificate, and a second CA that signed none of them. */
async function makeCerts(dir: string, ips: readonly string[]): Promise<TlsFiles> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const f = (n: string) => path.join(dir, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const ca of ['ca', 'wrong-ca'])
    await sh(
      'openssl',
      'req',
      '-x509',
      ...ec,
      '-keyout',
      f(`${ca}.key`),
      '-out',
      f(`${ca}.crt`),
      '-days',
      '1',
      '-subj',
      `/CN=macnet-test-${ca}`,
    );
  const leaf = async (name: string, ext: string) => {
    fs.writeFileSync(f(`${name}.ext`), ext);
    await sh(
      'openssl',
      'req',
      ...ec,
      '-keyout',
      f(`${name}.key`),
      '-out',
      f(`${name}.csr`),
      '-subj',
      `/CN=macnet-test-${name}`,
    );
    await sh(
      'openssl',
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.crt'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-out',
      f(`${name}.crt`),
      '-days',
      '1',
      '-extfile',
      f(`${name}.ext`),
    );
  };
  await leaf(
    'server',
    `subjectAltName=${ips.map((ip) => `IP:${ip}`).join(',')}\nextendedKeyUsage=serverAuth,clientAuth\n`,
  );
  await leaf('client', 'extendedKeyUsage=clientAuth\n');
  return { ca: f('ca.crt'), cert: f('client.crt'), key: f('client.key') };
}
