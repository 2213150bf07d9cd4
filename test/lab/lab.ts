// The lab: a simulated LAN inside network namespaces, optionally with a real dockerd per simulated host (safety:
// only 198.18.0.0/15 and 2001:db8::/32, only links of its own). Nothing is created in the root network namespace.
//
// Everything a lab creates is tagged with the creating pid, so that a later run can remove what a crashed
// run left: namespaces "mnt-<pid>-lab<k>-..." (netns.ts), /tmp/macnet-lab-<pid>-<k> (data, exec roots,
// sockets, plugin dirs; every dockerd, containerd and shim has this path on its command line),
// /run/macnet-lab-<pid>-<k> (the persistent mount namespaces) and cgroups "macnet-lab-<pid>-<k>-h<i>"
// (the containers' cgroup parent, which finds container processes even after their shim is gone).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Engine, engine as selectedEngine } from './engines';
import { TestNetns } from './netns';
import { ipJson, run, type RunResult, sh } from './sh';
import {
  PRIVATE_RUN_DIRS,
  TAG,
  TMP,
  dockerMissing,
  ensureRunDir,
  isStaticElf,
  labResidue,
  removeCreatedDirsIfUnused,
  removeLabResidueSync,
  sweepStaleLabs,
  which,
} from './leftovers';

import { LAN, LabHost } from './host';

export { dockerMissing, labResidue, sweepStaleLabs, which };
export { LAN, LabHost };

export interface LabOptions {
  hosts: number;
  docker?: boolean;
  ipv6?: boolean;
  /** The Docker engine every host runs (test/lab/engines.ts); default: MACNET_ENGINE's (test/run.js sets it). */
  engine?: Engine;
}

/** Applets linked in busybox:local; `true` too, because `docker run IMAGE true` execs it without a shell. */
export const BUSYBOX_APPLETS = ['sh', 'ping', 'ip', 'cat', 'sleep', 'nslookup', 'wget', 'arping', 'udhcpc', 'true'];

/**
 * A random MAC for a simulated machine (a host's eth0, a LAN device), first octet 02: the kernel's own random
 * MACs may begin with 0a or 0e, macnet's signatures for containers and probe links, and `macnet scan` or the
 * LAN check would then take the machine for another host's macnet (1 lab in 32 did).
 */
export function labMac(): string {
  return [
    '02',
    ...Array.from({ length: 5 }, () =>
      Math.floor(Math.random() * 256)
        .toString(16)
        .padStart(2, '0'),
    ),
  ].join(':');
}

const active = new Set<Lab>();
let labCounter = 0;
let sweeping: Promise<unknown> | undefined;

export class Lab {
  readonly id: string;
  readonly dir: string;
  readonly runDir: string;
  readonly hosts: LabHost[] = [];
  lan!: TestNetns;
  /** Milliseconds Lab.create and destroy() took. */
  createMs = 0;
  destroyMs = 0;
  private readonly extraNetns: TestNetns[] = [];
  private destroying: Promise<void> | undefined;

  private constructor(
    readonly docker: boolean,
    readonly ipv6: boolean,
    private readonly engineChoice?: Engine,
  ) {
    this.id = `${process.pid}-${++labCounter}`;
    this.dir = path.join(TMP, TAG + this.id);
    this.runDir = path.join('/run', TAG + this.id);
  }

  static async create(opts: LabOptions): Promise<Lab> {
    const t0 = performance.now();
    if (!Number.isInteger(opts.hosts) || opts.hosts < 1 || opts.hosts > 89)
      throw new RangeError('hosts: 1 to 89 (addresses .11 to .99)');
    if (opts.docker && dockerMissing()) throw new Error(`docker lab: ${dockerMissing()}`);
    await (sweeping ??= sweepStaleLabs()); // once per process; concurrent creates wait for the same sweep
    const lab = new Lab(!!opts.docker, !!opts.ipv6, opts.engine);
    // A directory of ours that exists already was left by an earlier process that had our pid.
    removeLabResidueSync(lab.id);
    active.add(lab);
    try {
      await lab.buildLan(opts.hosts);
      if (lab.docker) await lab.buildDocker();
    } catch (e) {
      await lab.destroy().catch(() => undefined);
      throw e;
    }
    lab.createMs = performance.now() - t0;
    return lab;
  }

  /** The engine new hosts run (docker labs only). */
  get engine(): Engine {
    if (this.engineChoice) return this.engineChoice;
    const e = selectedEngine();
    if (typeof e === 'string') throw new Error(`docker lab: ${e}`);
    return e;
  }

  /** A further namespace (a "container") removed with the lab. */
  async newNetns(label: string): Promise<TestNetns> {
    const ns = await TestNetns.create(`lab${this.id.split('-')[1]}-${label}`);
    this.extraNetns.push(ns);
    return ns;
  }

  /**
   * A LAN device: a namespace whose eth0 (MAC from labMac) is a veth into the LAN switch through port `port`,
   * removed with the lab. The caller gives it its addresses and brings eth0 up.
   */
  async lanDevice(label: string, port: string): Promise<TestNetns> {
    const ns = await this.newNetns(label);
    await this.routerExec(
      'ip',
      'link',
      'add',
      port,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'address',
      labMac(),
      'netns',
      ns.name,
    );
    await this.routerExec('ip', 'link', 'set', port, 'master', 'sw0', 'up');
    return ns;
  }

  /** Runs a command on the LAN's router (the namespace holding sw0). */
  routerExec(cmd: string, ...args: string[]): Promise<RunResult> {
    return this.lan.exec(cmd, ...args);
  }

  private async buildLan(n: number): Promise<void> {
    const k = this.id.split('-')[1];
    this.lan = await TestNetns.create(`lab${k}-lan`);
    const made = await Promise.allSettled(Array.from({ length: n }, (_, i) => TestNetns.create(`lab${k}-h${i + 1}`)));
    made.forEach((m, i) => {
      if (m.status === 'fulfilled') this.hosts.push(new LabHost(this, i + 1, m.value));
    });
    const failed = made.find((m): m is PromiseRejectedResult => m.status === 'rejected');
    if (failed) throw failed.reason;
    // Both veth ends are created in the LAN namespace; the host end moves (renamed eth0) into the host's.
    // One `ip -batch` per namespace: spawning ip costs 3 to 4 ms a call.
    const lan = [
      'link add sw0 type bridge mcast_snooping 0', // no querier on this LAN: snooping could drop ND traffic
      `addr add ${LAN.router4}/24 dev sw0`,
      ...(this.ipv6 ? [`addr add ${LAN.router6}/64 dev sw0 nodad`] : []),
      'link set sw0 up',
      ...this.hosts.flatMap((h) => [
        `link add p${h.index} type veth peer name ${h.name} address ${labMac()}`,
        `link set p${h.index} master sw0 up`,
        `link set ${h.name} netns ${h.ns.name} name eth0`,
      ]),
    ];
    await this.batch(this.lan.name, lan);
    await Promise.all(
      this.hosts.map(async (h) => {
        await this.batch(h.ns.name, [
          `addr add ${h.ipv4}/24 dev eth0`,
          ...(h.ipv6 ? [`addr add ${h.ipv6}/64 dev eth0 nodad`] : []),
          'link set eth0 up',
          `route add default via ${LAN.router4}`,
          ...(this.ipv6 ? [`route add default via ${LAN.router6}`] : []),
        ]);
        h.mac = (await ipJson<{ address: string }[]>(h.ns.name, 'link', 'show', 'eth0'))[0]!.address;
      }),
    );
  }

  private async batch(ns: string, cmds: string[]): Promise<void> {
    const r = await run('ip', ['-n', ns, '-batch', '-'], { input: cmds.join('\n') + '\n' });
    if (r.code !== 0) throw new Error(`ip -n ${ns} -batch failed: ${r.stderr.trim()}`);
  }

  private async buildDocker(): Promise<void> {
    // The image: busybox-static and applet links, imported into every host (no registry is reachable).
    const busybox = fs.realpathSync(which('busybox')!);
    if (!isStaticElf(busybox)) throw new Error(`${busybox} is dynamically linked: install busybox-static`);
    const img = path.join(this.dir, 'image');
    fs.mkdirSync(path.join(img, 'bin'), { recursive: true });
    fs.copyFileSync(busybox, path.join(img, 'bin', 'busybox'));
    for (const a of BUSYBOX_APPLETS) fs.symlinkSync('busybox', path.join(img, 'bin', a));
    const tar = path.join(this.dir, 'busybox.tar');
    await sh('tar', '-C', img, '-cf', tar, '.');
    // Our own config, not /etc/docker/daemon.json. The trust key: dockerd 20.10 writes /etc/docker/key.json
    // unless told otherwise (a config-file-only setting), and each host gets its own engine ID this way.
    for (const h of this.hosts) {
      fs.mkdirSync(h.dir, { recursive: true });
      fs.writeFileSync(h.daemonJson, JSON.stringify({ 'deprecated-key-path': path.join(h.dir, 'key.json') }) + '\n');
    }

    for (const d of PRIVATE_RUN_DIRS) ensureRunDir(d);
    fs.mkdirSync(this.runDir, { recursive: true });
    // The namespace files need a private mount to live on: on a shared one, each new mount namespace would
    // get a copy of the earlier ones' files (a loop the kernel refuses).
    await sh('mount', '--bind', this.runDir, this.runDir);
    await sh('mount', '--make-private', this.runDir);
    await Promise.all(
      this.hosts.map(async (h) => {
        await h.setUpMountNs();
        await h.startDockerd();
        const r = await h.docker('import', tar, 'busybox:local');
        if (r.code !== 0) throw new Error(`${h.name}: docker import: ${r.stderr.trim()}`);
      }),
    );
  }

  /** Idempotent; continues past errors and throws one error listing them all at the end. */
  destroy(): Promise<void> {
    this.destroying ??= this.doDestroy();
    return this.destroying;
  }

  private async doDestroy(): Promise<void> {
    const t0 = performance.now();
    const errors: unknown[] = [];
    if (this.docker) {
      await Promise.all(
        this.hosts.map((h) =>
          h.stopDocker(errors).catch((e) => {
            errors.push(e);
          }),
        ),
      );
    }
    try {
      removeLabResidueSync(this.id);
    } catch (e) {
      errors.push(e);
    }
    for (const ns of [...this.extraNetns, ...this.hosts.map((h) => h.ns), ...(this.lan ? [this.lan] : [])]) {
      await ns.delete().catch((e) => {
        errors.push(e);
      });
    }
    active.delete(this);
    try {
      removeCreatedDirsIfUnused();
    } catch (e) {
      errors.push(e);
    }
    const left = labResidue();
    const mine = (s: string) => s.includes(`${TAG}${this.id}`);
    if (left.dirs.some(mine) || left.mounts.some(mine) || left.cgroups.some(mine))
      errors.push(new Error(`lab ${this.id} left ${JSON.stringify(left)}`));
    this.destroyMs = performance.now() - t0;
    if (errors.length) throw new AggregateError(errors, `lab ${this.id} teardown: ${errors.map(String).join('; ')}`);
  }

  /** Destroys every lab of this process (a test file's after hook). */
  static async destroyAll(): Promise<void> {
    await Promise.allSettled([...active].map((l) => l.destroy()));
  }
}

// Last resort when the process ends without destroy(): kill, unmount and remove synchronously. Prepended so it
// runs before netns.ts deletes the namespaces. netns.ts turns SIGINT/SIGTERM into process.exit; the same here,
// in case that module changes.
process.prependListener('exit', () => {
  for (const lab of active) {
    for (const h of lab.hosts)
      if (h.dockerd?.pid)
        try {
          process.kill(h.dockerd.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
    try {
      removeLabResidueSync(lab.id);
    } catch {
      /* best effort */
    }
  }
  active.clear();
  try {
    removeCreatedDirsIfUnused();
  } catch {
    /* best effort */
  }
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
