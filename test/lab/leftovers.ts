// What a lab leaves behind if its run dies, and how a later run finds and removes it: processes (dockerd,
// containerd, shims, containers) found by the lab's paths on their command lines and by its cgroups, mounts in
// its private run dirs, the dirs themselves. Also the host's tools a lab needs (which, a static busybox).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { engine as selectedEngine } from './engines';
import { sweepStaleNetns } from './netns';

export const TAG = 'macnet-lab-';
export const TMP = '/tmp'; // not os.tmpdir(): unix socket paths under it must stay short (108 bytes)
const CGROUP_ROOT = '/sys/fs/cgroup';
/** Mount points inside each host's mount namespace, over directories that must exist in the root's /run. */
export const PRIVATE_RUN_DIRS = ['/run/docker', '/run/containerd'];
/** Lists the /run directories labs had to create, so the last lab (also of a later run) can remove them. */
const CREATED_DIRS_FILE = `/run/${TAG}created-dirs`;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Whether `p` settled within `ms`; the timer is cleared so that it does not keep the process alive. */
export async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<boolean>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true), t]);
  } finally {
    clearTimeout(timer);
  }
}
const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function alive(pid: number): boolean {
  try {
    // A zombie is gone for our purposes: it holds no namespaces or mounts any more.
    return !/^\d+ \(.*\) Z/s.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** First executable named `name` in PATH (and the sbin directories, which a non-login PATH may lack). */
export function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'];
  return dirs
    .filter(Boolean)
    .map((d) => path.join(d, name))
    .find((p) => {
      try {
        fs.accessSync(p, fs.constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
}

/** Why docker labs cannot run here with the selected engine (MACNET_ENGINE), or undefined when they can. */
export function dockerMissing(): string | undefined {
  if (!which('busybox')) return 'busybox is not installed (apt-get install busybox-static)';
  const e = selectedEngine();
  return typeof e === 'string' ? e : undefined;
}

/** True if the ELF file has no program interpreter, i.e. runs in an image without a libc. */
export function isStaticElf(file: string): boolean {
  const b = fs.readFileSync(file);
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) return false; // ELF64 only (amd64/arm64 machines)
  const phoff = Number(b.readBigUInt64LE(0x20)),
    phentsize = b.readUInt16LE(0x36),
    phnum = b.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) if (b.readUInt32LE(phoff + i * phentsize) === 3 /* PT_INTERP */) return false;
  return true;
}

export function mountPoints(mountinfo = '/proc/self/mountinfo'): string[] {
  // Field 5 is the mount point, with spaces etc. escaped as \040; our paths have none.
  return fs
    .readFileSync(mountinfo, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '');
}

/** Unmounts deepest first, so a mount on top of another goes before the one beneath. */
function umountAllSync(targets: string[]): void {
  for (const t of [...new Set(targets)].sort((a, b) => b.length - a.length)) {
    try {
      execFileSync('umount', [t], { stdio: 'ignore' });
    } catch {
      try {
        execFileSync('umount', ['-l', t], { stdio: 'ignore' });
      } catch {
        /* not mounted */
      }
    }
  }
}

function cgroupDirs(name: string): string[] {
  let subs: string[] = [];
  try {
    subs = fs.readdirSync(CGROUP_ROOT);
  } catch {
    /* no cgroupfs */
  }
  return [path.join(CGROUP_ROOT, name), ...subs.map((s) => path.join(CGROUP_ROOT, s, name))].filter((d) =>
    fs.existsSync(d),
  );
}

/** A cgroup directory and its descendants, deepest first (the order rmdir needs). */
function cgroupTree(dir: string): string[] {
  let kids: string[] = [];
  try {
    kids = fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => path.join(dir, e.name));
  } catch {
    /* gone */
  }
  return [...kids.flatMap(cgroupTree), dir];
}

/** Pids whose command line names `needle` (dockerd, its containerd, shims: they all carry the lab dir). */
export function pidsMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(needle)) out.push(Number(p));
    } catch {
      /* exited */
    }
  }
  return out;
}

/**
 * Pids whose root directory lies under `dir`: a Docker managed plugin's process names nothing of the lab on its
 * command line, but its root is its rootfs under the host's data root.
 */
export function pidsRootedIn(dir: string): number[] {
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (fs.readlinkSync(`/proc/${p}/root`).startsWith(dir)) out.push(Number(p));
    } catch {
      /* exited, or a kernel thread */
    }
  }
  return out;
}

export function killAndWaitSync(pids: number[], timeoutMs = 5000): void {
  for (const pid of pids)
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  const until = Date.now() + timeoutMs;
  while (pids.some(alive) && Date.now() < until) sleepSync(20);
}

/**
 * Synchronously removes what lab `id` ("<pid>-<k>") left outside namespaces: processes, container processes,
 * mounts, directories, cgroups. Used at exit, for stale labs of dead pids, and as destroy()'s last step.
 */
export function removeLabResidueSync(id: string): void {
  const dir = path.join(TMP, TAG + id),
    runDir = path.join('/run', TAG + id);
  const cgroups = fs.existsSync(CGROUP_ROOT)
    ? fs
        .readdirSync(CGROUP_ROOT)
        .flatMap((s) => {
          try {
            return fs.readdirSync(path.join(CGROUP_ROOT, s));
          } catch {
            return [];
          }
        })
        .filter((n) => n.startsWith(`${TAG}${id}-`))
    : [];
  const cgroupNames = [...new Set(cgroups)];
  const inCgroups = cgroupNames
    .flatMap(cgroupDirs)
    .flatMap(cgroupTree)
    .flatMap((d) => {
      try {
        return fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
      } catch {
        return [];
      }
    });
  killAndWaitSync([...pidsMentioning(`${dir}/`), ...pidsRootedIn(`${dir}/`), ...inCgroups]);
  // The mount namespace files first, then the private bind mount that holds them.
  umountAllSync(mountPoints().filter((m) => m === runDir || m.startsWith(`${runDir}/`) || m.startsWith(`${dir}/`)));
  fs.rmSync(dir, { recursive: true, force: true });
  try {
    fs.rmSync(runDir, { recursive: true, force: true });
  } catch {
    /* still mounted: reported by residue */
  }
  for (const d of cgroupNames.flatMap(cgroupDirs).flatMap(cgroupTree))
    try {
      fs.rmdirSync(d);
    } catch {
      /* busy */
    }
}

/** Ids of labs (of any process) whose run or tmp directories exist, with their creating pid. */
function labIds(): { id: string; pid: number }[] {
  const ids = new Map<string, number>();
  for (const root of [TMP, '/run']) {
    for (const n of fs.readdirSync(root)) {
      const m = new RegExp(`^${TAG}((\\d+)-\\d+)$`).exec(n);
      if (m) ids.set(m[1]!, Number(m[2]));
    }
  }
  return [...ids].map(([id, pid]) => ({ id, pid }));
}

/** Removes /run/docker etc. that labs created, once no lab of a live process needs them as mount points. */
export function removeCreatedDirsIfUnused(): void {
  if (labIds().some((l) => alive(l.pid))) return;
  let dirs: string[];
  try {
    dirs = fs.readFileSync(CREATED_DIRS_FILE, 'utf8').split('\n').filter(Boolean);
  } catch {
    return;
  }
  for (const d of dirs.sort((a, b) => b.length - a.length))
    try {
      fs.rmdirSync(d);
    } catch {
      /* in use or not empty */
    }
  fs.rmSync(CREATED_DIRS_FILE, { force: true });
}

export function ensureRunDir(dir: string): void {
  if (fs.existsSync(dir)) return;
  fs.mkdirSync(dir, { recursive: true });
  fs.appendFileSync(CREATED_DIRS_FILE, `${dir}\n`);
}

/** Removes leftovers of labs whose creating process is gone. */
export async function sweepStaleLabs(): Promise<string[]> {
  const stale = labIds()
    .filter((l) => !alive(l.pid))
    .map((l) => l.id);
  for (const id of stale) removeLabResidueSync(id);
  // Cgroups can outlive the directories (a crash between the two removals).
  const orphanCgroups = fs.existsSync(CGROUP_ROOT)
    ? fs.readdirSync(CGROUP_ROOT).flatMap((s) => {
        try {
          return fs.readdirSync(path.join(CGROUP_ROOT, s));
        } catch {
          return [];
        }
      })
    : [];
  for (const n of new Set(orphanCgroups)) {
    const m = new RegExp(`^${TAG}((\\d+)-\\d+)-`).exec(n);
    if (m && !alive(Number(m[2])) && !stale.includes(m[1]!)) {
      removeLabResidueSync(m[1]!);
      stale.push(m[1]!);
    }
  }
  await sweepStaleNetns();
  removeCreatedDirsIfUnused();
  return stale;
}

/** What remains of labs of `pid` (default: this process) outside namespaces; all empty after destroy(). */
export function labResidue(pid = process.pid): {
  dirs: string[];
  mounts: string[];
  processes: number[];
  cgroups: string[];
} {
  const mine = labIds()
    .filter((l) => l.pid === pid)
    .map((l) => l.id);
  const prefix = `${TAG}${pid}-`;
  return {
    dirs: mine.flatMap((id) => [path.join(TMP, TAG + id), path.join('/run', TAG + id)]).filter((d) => fs.existsSync(d)),
    mounts: mountPoints().filter((m) => m.includes(`/${prefix}`)),
    processes: pidsMentioning(`${TMP}/${prefix}`),
    cgroups: fs.existsSync(CGROUP_ROOT)
      ? fs.readdirSync(CGROUP_ROOT).flatMap((s) => {
          try {
            return fs
              .readdirSync(path.join(CGROUP_ROOT, s))
              .filter((n) => n.startsWith(prefix))
              .map((n) => path.join(CGROUP_ROOT, s, n));
          } catch {
            return [];
          }
        })
      : [],
  };
}
