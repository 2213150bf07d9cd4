// Per-interface sysctls under /proc/sys/net. Netlink cannot set the ones macnet needs (RTM_SETLINK takes only
// the IPv6 token and address generation mode; IPv6 devconf such as accept_ra has no setter), so they are files.
// /proc/sys/net shows the namespace of the task that opens it: a Kernel bound to the process's own namespace
// (the daemon) writes the file directly; one bound to another namespace (tests, tools) has no thread there
// and writes it through `nsenter --net` — the one child process of the kernel layer.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { MacnetError } from '../errors';
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
    throw new MacnetError('INVALID_ARGUMENT', `sysctl name ${JSON.stringify(name)} is not valid`, { value: name });
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
  if (nsPath === null) {
    try {
      await fs.promises.writeFile(file, `${value}\n`);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
      throw new KernelError(
        'KERNEL_ERROR',
        `${op}: ${code}: cannot write ${file}`,
        code === 'ENOENT' ? 'ENODEV' : code,
        undefined,
        e,
      );
    }
  }
  await new Promise<void>((resolve, reject) => {
    const child = execFile('nsenter', [`--net=${nsPath}`, 'tee', file], { timeout: 10_000 }, (err, _out, stderr) => {
      if (err)
        reject(
          new KernelError(
            'KERNEL_ERROR',
            `${op} in ${nsPath}: ${String(stderr).trim() || err.message}`,
            'EIO',
            undefined,
            err,
          ),
        );
      else resolve();
    });
    child.stdin?.end(`${value}\n`);
  });
}
