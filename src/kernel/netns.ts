// Network namespaces named the ways callers have them: a path (/run/netns/x, /proc/PID/ns/net, Docker's
// SandboxKey) or a process id.
import * as fs from 'node:fs';
import { KernelError } from './errors';

export type NetnsRef = string | { readonly path: string } | { readonly pid: number };

export function netnsPath(ref: NetnsRef): string {
  if (typeof ref === 'string') return ref;
  if ('path' in ref) return ref.path;
  if (!Number.isInteger(ref.pid) || ref.pid <= 0) {
    throw new KernelError('NETNS_NOT_FOUND', `network namespace of pid ${ref.pid}: a pid is a positive integer`, 'EINVAL');
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
    return fs.openSync(p, fs.constants.O_RDONLY);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
    throw new KernelError('NETNS_NOT_FOUND', `open ${describeNetns(ref)}: ${code}: cannot open ${p}`, code, undefined, e);
  }
}
