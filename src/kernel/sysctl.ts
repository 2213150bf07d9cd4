// Per-interface sysctls under /proc/sys/net. Netlink cannot set the ones macnet needs (RTM_SETLINK takes only
// the IPv6 token and address generation mode; IPv6 devconf such as accept_ra has no setter), so they are files.
// /proc/sys/net shows the namespace of the task that opens it: a Kernel bound to the process's own namespace
// (the daemon) writes the file directly; one bound to another namespace (tests, tools) has the addon open it
// from inside that namespace (setns on the calling thread for the open, as for sockets), then writes the fd.
import * as fs from 'node:fs';
import { fail } from '../errors';
import { addon, type AddonError } from './addon';
import { KernelError } from './errors';
import { checkIfname } from './validate';

export type SysctlFamily = 'ipv4' | 'ipv6';

const PROC_SYS_NET = '/proc/sys/net';
/** Where this process writes the sysctls of its own namespace (see useProcSysNet). */
let ownProcSysNet = PROC_SYS_NET;

/**
 * Writes the process's own namespace's sysctls under `dir` instead of /proc/sys/net (the daemon's --proc-sys-net):
 * Docker mounts /proc/sys read-only in a managed plugin, which gets the host's /proc/sys/net bound elsewhere. The
 * files there still show the namespace of the task that opens them, so only the process's own writes may use it.
 */
export function useProcSysNet(dir: string): void {
  ownProcSysNet = dir;
}

function keyPath(family: SysctlFamily, ifname: string, name: string, root = PROC_SYS_NET): string {
  checkIfname('link name', ifname);
  if (!/^[a-z0-9_]+$/.test(name))
    throw fail('INVALID_ARGUMENT', { what: 'sysctl name', value: name, details: { value: name } });
  return `${root}/${family}/conf/${ifname}/${name}`;
}

/** Sets net.<family>.conf.<ifname>.<name> = value in the namespace `nsPath` (null: the process's own). */
export async function setLinkSysctl(
  nsPath: string | null,
  family: SysctlFamily,
  ifname: string,
  name: string,
  value: number,
): Promise<void> {
  const file = keyPath(family, ifname, name, nsPath === null ? ownProcSysNet : PROC_SYS_NET);
  const op = `set sysctl net.${family}.conf.${ifname}.${name}=${value}`;
  const cannotWrite = (e: unknown): never => {
    const code = (e as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
    const where = nsPath === null ? '' : ` in ${nsPath}`;
    throw new KernelError(
      'KERNEL_ERROR',
      `${op}${where}: ${code}: cannot write ${file}`,
      code === 'ENOENT' ? 'ENODEV' : code,
      undefined,
      e,
    );
  };
  if (nsPath === null) {
    await fs.promises.writeFile(file, `${value}\n`).catch(cannotWrite);
    return;
  }
  let fd: number;
  try {
    fd = addon.openInNetns(nsPath, file, fs.constants.O_WRONLY);
  } catch (e) {
    const err = e as AddonError;
    // The namespace itself is missing or not one: say so rather than blame the sysctl.
    if (/namespace/.test(err.message)) {
      throw new KernelError('NETNS_NOT_FOUND', `${op}: ${err.message}`, err.code, undefined, e);
    }
    return cannotWrite(e);
  }
  try {
    fs.writeSync(fd, `${value}\n`);
  } catch (e) {
    cannotWrite(e);
  } finally {
    fs.closeSync(fd);
  }
}
