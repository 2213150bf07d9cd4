// Network namespaces named the ways callers have them: a path (/run/netns/x, /proc/PID/ns/net, Docker's
// SandboxKey) or a process id.
import * as fs from 'node:fs';
import { KernelError } from './errors';

export type NetnsRef = string | { readonly path: string } | { readonly pid: number };

export function netnsPath(ref: NetnsRef): string {
  if (typeof ref === 'string') return ref;
  if ('path' in ref) return ref.path;
  if (!Number.isInteger(ref.pid) || ref.pid <= 0) {
    throw new KernelError(
      'NETNS_NOT_FOUND',
      `network namespace of pid ${ref.pid}: a pid is a positive integer`,
      'EINVAL',
    );
  }
  return `/proc/${ref.pid}/ns/net`;
}

export function describeNetns(ref: NetnsRef | undefined): string {
  if (ref === undefined) return 'the current network namespace';
  if (typeof ref === 'object' && 'pid' in ref) return `the network namespace of pid ${ref.pid}`;
  return `network namespace ${netnsPath(ref)}`;
}

/**
 * Opens a namespace file for IFLA_NET_NS_FD (Node opens files close-on-exec). The caller closes the fd once the
 * request is done. Fails with NETNS_NOT_FOUND, naming the path, when it does not exist.
 */
export function openNetnsFd(ref: NetnsRef): number {
  const p = netnsPath(ref);
  try {
    // O_NONBLOCK: a FIFO at the path would block open() on the main thread; nsfs files ignore the flag.
    return fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
    throw new KernelError(
      'NETNS_NOT_FOUND',
      `open ${describeNetns(ref)}: ${code}: cannot open ${p}`,
      code,
      undefined,
      e,
    );
  }
}

/** statfs f_type of the namespace filesystem (linux/magic.h NSFS_MAGIC). */
const NSFS_MAGIC = 0x6e736673;

/**
 * Checks, off the event loop (statfs runs in libuv's thread pool and opens nothing), that a path someone else
 * gave us (dockerd's SandboxKey) is a namespace file before anything opens it: a FIFO or a device there would
 * otherwise block open() on the main thread and freeze the daemon. NETNS_NOT_FOUND names the path.
 */
export async function checkNetnsFile(path: string): Promise<void> {
  let type: number;
  try {
    type = (await fs.promises.statfs(path)).type;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
    throw new KernelError(
      'NETNS_NOT_FOUND',
      `open network namespace ${path}: ${code}: cannot read it`,
      code,
      undefined,
      e,
    );
  }
  const st = await fs.promises.stat(path).catch(() => undefined);
  if (type !== NSFS_MAGIC || !st?.isFile()) {
    throw new KernelError(
      'NETNS_NOT_FOUND',
      `open network namespace ${path}: not a network namespace file (filesystem type 0x${type.toString(16)}, ` +
        `${st?.isFIFO() ? 'a FIFO' : 'not a namespace file'}): give a path such as /run/netns/NAME or /proc/PID/ns/net`,
      'EINVAL',
    );
  }
}
