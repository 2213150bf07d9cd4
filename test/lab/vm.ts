// Runs a command under a stock Debian kernel in a qemu VM (TCG software emulation), for the link kinds this
// machine's kernel lacks (dummy, 802.1q vlan, ipvlan). The guest is a busybox initramfs that loads the needed
// modules, mounts the host's root read-only over 9p and chroots into it (or, with realRoot, makes it the root),
// so it runs this machine's node, iproute2 and the project as they are. The command's output and exit code come
// back through a second, writable 9p share (a temp dir), not the serial console: no framing to parse, no kernel
// messages mixed in. KVM: a KVM boot hangs on this machine's kind before the first console line (qemu 7.2, also
// with -cpu host,-arch-capabilities; -cpu host alone aborts on MSR 0x10a), so `accel` stays tcg by default.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';

export interface VmResult {
  /** stdout, then stderr, of the command. */
  output: string;
  /** Kept apart so that a machine-readable stdout (TAP) is not interleaved with stderr. */
  stdout: string;
  stderr: string;
  exitCode: number;
  /** The guest's serial console (kernel and init messages): for diagnosing a failed boot. */
  console: string;
  /** Wall time: command, boot = total minus command (initramfs, qemu, boot, power-off), total. */
  timing: { bootMs: number; commandMs: number; totalMs: number };
  /** killWhen said so and qemu was killed: exitCode is -1, stdout and stderr hold what the guest wrote so far. */
  killed: boolean;
}

export interface VmOptions {
  command: string[];
  env?: Record<string, string>;
  /** The whole VM run, boot included. Default 10 minutes. */
  timeoutMs?: number;
  /** Raw disk images, attached as virtio-blk disks (/dev/vda, /dev/vdb, ... in the guest). */
  disks?: string[];
  /** Kernel modules to load besides the link kinds and 9p, e.g. DISK_MODULES (dependencies follow). */
  modules?: string[];
  /**
   * Called with the serial console's output so far whenever more arrives; when it returns true, qemu is killed
   * at once with SIGKILL (a power cut for the guest) and runInVm resolves with `killed: true`.
   */
  killWhen?: (console: string) => boolean;
  /** Guest memory; default 1024 MiB (a guest running dockerd needs more: test/vm/docker-in-vm.test.ts). */
  memoryMiB?: number;
  /** qemu's accelerator; default tcg (a KVM boot once hung on this machine's kind, shared/lab.md). */
  accel?: 'tcg' | 'kvm';
  /** vCPUs; default 1 (see the qemu arguments). */
  cpus?: number;
  /** Make the host share the guest's root (switch_root) instead of chrooting into it: see switchRootTail. */
  realRoot?: boolean;
}

/** What a guest needs to mount an ext4 file system on a virtio disk (crc32c: ext4's checksums, a soft dependency). */
export const DISK_MODULES = ['virtio_blk', 'crc32c_generic', 'ext4'];

const QEMU = 'qemu-system-x86_64';
const TMP_PREFIX = 'macnet-vm-';
// Link kinds the kernel tests create, and what the boot needs (virtio PCI and 9p). Their dependencies
// (llc, stp, garp, mrp, tap, virtio, netfs, fscache, ...) come from modules.dep, in load order.
const MODULES = [
  'dummy',
  '8021q',
  'macvlan',
  'macvtap',
  'ipvlan',
  'veth',
  'bridge',
  'virtio_pci',
  '9pnet_virtio',
  '9p',
];

/** The project root: the nearest directory above this file with a package.json (works from test/ and dist/test/). */
export const projectRoot: string = (() => {
  let d = __dirname;
  while (!fs.existsSync(path.join(d, 'package.json')) && path.dirname(d) !== d) d = path.dirname(d);
  return d;
})();

function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const p = path.join(dir || '.', cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** True for an ELF without a PT_INTERP program header: it needs no loader or libraries in the initramfs. */
function isStaticElf(file: string): boolean {
  const b = fs.readFileSync(file);
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) return false;
  const phoff = Number(b.readBigUInt64LE(0x20));
  const entSize = b.readUInt16LE(0x36);
  for (let i = 0; i < b.readUInt16LE(0x38); i++) if (b.readUInt32LE(phoff + i * entSize) === 3) return false;
  return true;
}

interface Kernel {
  image: string;
  version: string;
  moduleDir: string;
}

/** The newest /boot/vmlinuz-<ver> that has /lib/modules/<ver>/modules.dep. */
function findKernel(): Kernel | undefined {
  let images: string[] = [];
  try {
    images = fs.readdirSync('/boot').filter((f) => f.startsWith('vmlinuz-'));
  } catch {
    /* none */
  }
  const versions = images
    .map((f) => f.slice('vmlinuz-'.length))
    .filter((v) => fs.existsSync(`/lib/modules/${v}/modules.dep`))
    .sort((a, b) => b.localeCompare(a, 'en', { numeric: true }));
  return versions[0]
    ? { image: `/boot/vmlinuz-${versions[0]}`, version: versions[0], moduleDir: `/lib/modules/${versions[0]}` }
    : undefined;
}

/** Module files (relative to the module dir) to insmod, dependencies first; built-in ones are left out. */
function moduleLoadOrder(moduleDir: string, extra: readonly string[] = []): string[] {
  const deps = new Map<string, string[]>();
  for (const line of fs.readFileSync(path.join(moduleDir, 'modules.dep'), 'utf8').split('\n')) {
    const [file, rest] = line.split(':');
    if (file && rest !== undefined) deps.set(file, rest.trim().split(/\s+/).filter(Boolean));
  }
  const builtin = fs.readFileSync(path.join(moduleDir, 'modules.builtin'), 'utf8');
  const modName = (f: string) =>
    path
      .basename(f)
      .replace(/\.ko(\.\w+)?$/, '')
      .replace(/-/g, '_');
  const byName = new Map([...deps.keys()].map((f) => [modName(f), f]));
  const order: string[] = [];
  const visit = (file: string) => {
    if (order.includes(file)) return;
    for (const d of deps.get(file) ?? []) visit(d);
    order.push(file);
  };
  for (const m of [...MODULES, ...extra]) {
    const file = byName.get(m);
    if (file) visit(file);
    else if (!builtin.split('\n').some((l) => l && modName(l) === m))
      throw new Error(`kernel module ${m} is neither in ${moduleDir}/modules.dep nor built in`);
  }
  return order;
}

export function vmAvailable(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux' || process.arch !== 'x64')
    return { ok: false, reason: 'the VM harness needs an x86_64 Linux host' };
  if (!which(QEMU)) return { ok: false, reason: `${QEMU} not found (Debian package qemu-system-x86)` };
  if (!fs.existsSync('/bin/busybox') || !isStaticElf('/bin/busybox'))
    return { ok: false, reason: 'no static /bin/busybox (Debian package busybox-static)' };
  const k = findKernel();
  if (!k)
    return { ok: false, reason: 'no /boot/vmlinuz-<ver> with /lib/modules/<ver> (Debian package linux-image-amd64)' };
  try {
    moduleLoadOrder(k.moduleDir);
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
  return { ok: true };
}

/** A newc cpio archive (the initramfs format), written directly: no cpio binary, no root needed for /dev/console. */
class Cpio {
  private parts: Buffer[] = [];
  private ino = 1;
  private entry(name: string, mode: number, data: Buffer = Buffer.alloc(0), rdev: [number, number] = [0, 0]) {
    const f = [this.ino++, mode, 0, 0, 1, 0, data.length, 0, 0, rdev[0], rdev[1], name.length + 1, 0];
    const head = Buffer.from('070701' + f.map((n) => n.toString(16).padStart(8, '0')).join('') + name + '\0');
    const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
    this.parts.push(head, pad(head.length), data, pad(data.length));
  }
  dir(name: string) {
    this.entry(name, 0o040755);
  }
  file(name: string, data: Buffer, mode = 0o755) {
    this.entry(name, 0o100000 | mode, data);
  }
  chardev(name: string, major: number, minor: number) {
    this.entry(name, 0o020600, undefined, [major, minor]);
  }
  build(): Buffer {
    this.entry('TRAILER!!!', 0);
    return Buffer.concat(this.parts);
  }
}

/** A module file's contents, decompressed on the host if needed (busybox insmod may not read .ko.xz/.ko.zst). */
function readModule(file: string): Buffer {
  if (file.endsWith('.ko')) return fs.readFileSync(file);
  if (file.endsWith('.ko.gz')) return gunzipSync(fs.readFileSync(file));
  const tool = file.endsWith('.ko.xz') ? 'xz' : file.endsWith('.ko.zst') ? 'zstd' : undefined;
  if (!tool) throw new Error(`unknown module compression: ${file}`);
  return execFileSync(tool, ['-dc', file], { maxBuffer: 256 * 1024 * 1024 });
}

/**
 * The kernel to boot. Under TCG, decompressing the xz bzImage takes the guest about 6 s; the host's xz does it in
 * about 1 s, and qemu boots the resulting ELF vmlinux directly through its PVH entry point (CONFIG_PVH). Falls
 * back to the bzImage when the kernel has no PVH entry or its payload is not xz.
 */
function uncompressedKernel(k: Kernel, dir: string): string {
  let config = '';
  try {
    config = fs.readFileSync(`/boot/config-${k.version}`, 'utf8');
  } catch {
    /* unknown: use the bzImage */
  }
  const image = fs.readFileSync(k.image);
  const at = image.indexOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])); // xz stream magic
  if (!/^CONFIG_PVH=y$/m.test(config) || at < 0 || !which('xz')) return k.image;
  const out = path.join(dir, 'vmlinux');
  const fd = fs.openSync(out, 'w');
  try {
    // --single-stream: the bzImage has trailing data after the xz stream.
    execFileSync('xz', ['-dc', '--single-stream'], { input: image.subarray(at), stdio: ['pipe', fd, 'pipe'] });
  } catch {
    return k.image;
  } finally {
    fs.closeSync(fd);
  }
  const head = Buffer.alloc(4);
  const rfd = fs.openSync(out, 'r');
  fs.readSync(rfd, head);
  fs.closeSync(rfd);
  return head.readUInt32BE(0) === 0x7f454c46 ? out : k.image;
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function initScript(modules: string[], command: string[], env: Record<string, string>, realRoot: boolean): string {
  for (const k of Object.keys(env))
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`bad environment variable name ${JSON.stringify(k)}`);
  const guestEnv = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: '/tmp',
    LANG: 'C.UTF-8',
    ...env,
  };
  // cache=loose on the read-only host share lets the guest keep what it read: without it node's startup and
  // requires took 5 to 9 s instead of about 1 s (it re-reads the 90 MB node binary). msize: fewer round trips.
  // The results share stays uncached so that what the guest writes reaches the host before the reboot.
  const p9 = 'trans=virtio,version=9p2000.L,msize=512000';
  const run = commandLine(command, guestEnv);
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in ${modules.map((m) => shq(path.basename(m).replace(/\.ko(\.\w+)?$/, '.ko'))).join(' ')}; do
  # numdummies=0: no stray dummy0 in the guest's root namespace.
  case $m in dummy.ko) p=numdummies=0;; *) p=;; esac
  insmod /lib/modules/$m $p || echo "macnet-vm: insmod $m failed"
done
mkdir -p /host /results
mount -t 9p -o ${p9},cache=loose,ro host /host || echo "macnet-vm: mounting the host share failed"
mount -t 9p -o ${p9} results /results || { echo "macnet-vm: mounting the results share failed"; reboot -f; }
mount -t proc proc /host/proc; mount -t sysfs sys /host/sys; mount -t devtmpfs dev /host/dev
mkdir -p /host/dev/pts /host/dev/shm; mount -t devpts devpts /host/dev/pts; mount -t tmpfs shm /host/dev/shm
# ip netns add needs a writable /run/netns; tests write to /tmp. A checkout under /tmp or /run would vanish
# under those tmpfs: it is bound back to its own path on top of them.
mkdir -p /project; mount -o bind /host${shq(projectRoot)} /project
mount -t tmpfs run /host/run; mount -t tmpfs tmp /host/tmp
[ -d /host${shq(projectRoot)} ] || { mkdir -p /host${shq(projectRoot)}; mount -o bind /project /host${shq(projectRoot)}; }
ip link set lo up
${realRoot ? switchRootTail(run) : chrootTail(run)}`;
}

/** The command as the guest runs it, from the project root, with exactly the given environment. */
function commandLine(command: string[], env: Record<string, string>): string {
  return `env -i ${Object.entries(env)
    .map(([k, v]) => `${k}=${shq(v)}`)
    .join(' ')} \\
  /bin/sh -c 'cd "$0" && exec "$@"' ${[projectRoot, ...command].map(shq).join(' ')}`;
}

function chrootTail(run: string): string {
  return `cut -d' ' -f1 /proc/uptime > /results/start
# Applets would shadow host binaries of the same name (ip, ...), so the command runs inside the chroot.
chroot /host ${run} \\
  > /results/stdout 2> /results/stderr < /dev/null
echo $? > /results/rc
cut -d' ' -f1 /proc/uptime > /results/end
sync
reboot -f
`;
}

/**
 * The host share becomes the guest's root (switch_root), with the results share moved under its /run. A chroot
 * is not enough for programs that enter mount namespaces (nsenter --mount, unshare --mount, as the lab's
 * dockerd hosts do): entering one sets the root to the namespace's root, which would be the initramfs.
 * The second stage runs under the host's /bin/sh and powers off with the host's static busybox.
 */
function switchRootTail(run: string): string {
  const r = '/run/macnet-vm/results';
  const stage2 = `cut -d' ' -f1 /proc/uptime > ${r}/start
${run} \\
  > ${r}/stdout 2> ${r}/stderr < /dev/null
echo $? > ${r}/rc
cut -d' ' -f1 /proc/uptime > ${r}/end
sync
/bin/busybox reboot -f
`;
  return `mkdir -p /host${r}
mount --move /results /host${r} || { echo "macnet-vm: moving the results share failed"; reboot -f; }
cat > /host/run/macnet-vm/stage2 <<'MACNET_STAGE2'
${stage2}MACNET_STAGE2
exec switch_root /host /bin/sh /run/macnet-vm/stage2
`;
}

// Everything a running VM holds, so that an exit or a signal can release it synchronously.
const live = new Map<number, { pid?: number; dir: string }>();
let liveId = 0;

function release(id: number) {
  const v = live.get(id);
  if (!v) return;
  live.delete(id);
  if (v.pid) {
    try {
      process.kill(v.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  fs.rmSync(v.dir, { recursive: true, force: true });
}

const releaseAll = () => {
  for (const id of [...live.keys()]) release(id);
};
const onSignal = (sig: NodeJS.Signals) => {
  releaseAll();
  process.exit(sig === 'SIGINT' ? 130 : 143);
};
let hooked = false;
function hook(on: boolean) {
  if (on === hooked) return;
  hooked = on;
  // The signal handlers exist only while a VM runs, so the process's default signal behaviour is kept otherwise.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) on ? process.on(sig, onSignal) : process.off(sig, onSignal);
  on ? process.on('exit', releaseAll) : process.off('exit', releaseAll);
}

/** Temp dirs of earlier runs whose process is gone (killed with SIGKILL, when no handler could run). */
function sweepStale() {
  for (const e of fs.readdirSync(os.tmpdir())) {
    const m = new RegExp(`^${TMP_PREFIX}(\\d+)-`).exec(e);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH')
        fs.rmSync(path.join(os.tmpdir(), e), { recursive: true, force: true });
    }
  }
}

export async function runInVm(opts: VmOptions): Promise<VmResult> {
  const avail = vmAvailable();
  if (!avail.ok) throw new Error(`VM not available: ${avail.reason}`);
  if (!opts.command.length) throw new Error('runInVm: empty command');
  sweepStale();
  const kernel = findKernel()!;
  const modules = moduleLoadOrder(kernel.moduleDir, opts.modules);
  const started = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${TMP_PREFIX}${process.pid}-`));
  const id = ++liveId;
  live.set(id, { dir });
  hook(true);
  try {
    const results = path.join(dir, 'results');
    fs.mkdirSync(results);
    const cpio = new Cpio();
    for (const d of ['bin', 'dev', 'proc', 'sys', 'lib', 'lib/modules']) cpio.dir(d);
    cpio.chardev('dev/console', 5, 1);
    cpio.file('bin/busybox', fs.readFileSync('/bin/busybox'));
    for (const m of modules)
      cpio.file(
        `lib/modules/${path.basename(m).replace(/\.ko(\.\w+)?$/, '.ko')}`,
        readModule(path.join(kernel.moduleDir, m)),
        0o644,
      );
    cpio.file('init', Buffer.from(initScript(modules, opts.command, opts.env ?? {}, !!opts.realRoot)));
    const initrd = path.join(dir, 'initrd.cpio');
    fs.writeFileSync(initrd, cpio.build()); // uncompressed: gunzip under TCG would cost more than it saves

    const args = [
      // One vCPU: on a 2-core host a second one measured no faster (it competes with qemu's 9p I/O thread).
      '-accel',
      opts.accel ?? 'tcg',
      '-cpu',
      opts.accel === 'kvm' ? 'host' : 'max',
      '-smp',
      String(opts.cpus ?? 1),
      '-m',
      String(opts.memoryMiB ?? 1024),
      '-nodefaults',
      '-no-user-config',
      '-display',
      'none',
      '-serial',
      'stdio',
      '-no-reboot',
      '-kernel',
      uncompressedKernel(kernel, dir),
      '-initrd',
      initrd,
      // mitigations=off: speculative-execution workarounds only slow an emulated CPU down. acpi=off saves
      // about 0.5 s of boot (ACPI tables, IRQ link setup) and is why init ends with reboot, not poweroff.
      '-append',
      'console=ttyS0 quiet panic=-1 mitigations=off acpi=off',
      '-virtfs',
      'local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap',
      '-virtfs',
      `local,path=${results},mount_tag=results,security_model=none`,
      // cache=writeback (qemu's default, said here because the power-cut test relies on it): a guest flush
      // becomes an fdatasync of the image; what the guest has not yet handed to the disk dies with qemu.
      ...(opts.disks ?? []).flatMap((d) => ['-drive', `file=${d},format=raw,if=virtio,cache=writeback`]),
    ];
    // setpriv --pdeathsig: the kernel kills qemu if this process dies without running any handler (SIGKILL).
    const setpriv = which('setpriv');
    const child = setpriv
      ? spawn(setpriv, ['--pdeathsig', 'KILL', '--', which(QEMU)!, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(QEMU, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.set(id, { dir, pid: child.pid! });
    let consoleLog = '';
    let killed = false;
    const keep = (b: Buffer) => {
      consoleLog += b.toString('utf8');
      if (process.env.MACNET_VM_DEBUG) process.stderr.write(b);
      if (!killed && opts.killWhen?.(consoleLog)) {
        killed = true;
        child.kill('SIGKILL');
      }
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timeoutMs = opts.timeoutMs ?? 600_000;
    const status = await new Promise<number | 'timeout'>((resolve, reject) => {
      const timer = setTimeout(() => resolve('timeout'), timeoutMs);
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.once('close', (code, sig) => {
        clearTimeout(timer);
        resolve(code ?? (sig ? 128 : 1));
      });
    });
    const tail = () => consoleLog.split('\n').slice(-40).join('\n');
    if (status === 'timeout') throw new Error(`VM run timed out after ${timeoutMs} ms; console tail:\n${tail()}`);
    const read = (f: string) => {
      try {
        return fs.readFileSync(path.join(results, f), 'utf8');
      } catch {
        return undefined;
      }
    };
    const rc = read('rc');
    if (killed) {
      const stdout = read('stdout') ?? '';
      const stderr = read('stderr') ?? '';
      const totalMs = Date.now() - started;
      return {
        output: stdout + stderr,
        stdout,
        stderr,
        exitCode: -1,
        console: consoleLog,
        killed,
        timing: { bootMs: totalMs, commandMs: 0, totalMs },
      };
    }
    if (rc === undefined)
      throw new Error(`the VM ended (qemu status ${status}) before the command finished; console tail:\n${tail()}`);
    const totalMs = Date.now() - started;
    // The host's clock: the modification times of the marker files the guest wrote through the share. The guest's
    // own clock (the uptimes they hold) fell behind by minutes while the host was loaded (a starved vCPU loses
    // timer ticks): the VM Docker suite took 495 s by it, in a run of 685 s by the host's (load average 20).
    const mtime = (f: string) => fs.statSync(path.join(results, f)).mtimeMs;
    const commandMs = Math.round(mtime('end') - mtime('start'));
    const stdout = read('stdout') ?? '';
    const stderr = read('stderr') ?? '';
    return {
      output: stdout + stderr,
      stdout,
      stderr,
      exitCode: Number(rc.trim()),
      console: consoleLog,
      killed,
      timing: { bootMs: totalMs - commandMs, commandMs, totalMs },
    };
  } finally {
    release(id);
    if (live.size === 0) hook(false);
  }
}
