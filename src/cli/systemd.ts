// Socket activation (sd_listen_fds(3)): systemd, or systemd-socket-activate, listens on the plugin socket and
// starts the daemon at the first connection, passing the listening socket as fd 3 with LISTEN_FDS=1 and
// LISTEN_PID=<the daemon's pid>. Connections that arrive before the daemon is ready wait in the socket's
// backlog, so dockerd never sees a missing plugin at boot. The socket belongs to systemd: the daemon never
// unlinks it (src/docker/server.ts, listenFd).
import * as fs from 'node:fs';
import { MacnetError } from '../errors';

/** SD_LISTEN_FDS_START: the first passed descriptor. */
export const LISTEN_FDS_START = 3;

export interface PassedSocket {
  fd: number;
  /** How many were passed; only the first is served (the unit passes one). */
  count: number;
  /** The socket's path, from /proc/net/unix, when it can be found. */
  path: string | undefined;
}

/**
 * The socket systemd passed, or undefined when none was passed to this process. LISTEN_PID names the process
 * the descriptors are for: a child that inherited the variables must not take them. The variables are removed
 * from the environment either way, as sd_listen_fds(unset_environment=1) does.
 */
export function passedSocket(env: NodeJS.ProcessEnv = process.env, pid = process.pid): PassedSocket | undefined {
  const fds = env.LISTEN_FDS;
  const forPid = env.LISTEN_PID;
  for (const k of ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES']) delete env[k];
  if (fds === undefined || forPid === undefined || Number(forPid) !== pid) return undefined;
  if (!/^[1-9]\d{0,3}$/.test(fds)) {
    throw new MacnetError(
      'INVALID_ARGUMENT',
      `LISTEN_FDS=${JSON.stringify(fds.slice(0, 20))} is not valid: ` +
        'socket activation passes a count of 1 or more (systemd.socket(5))',
      { option: 'LISTEN_FDS', value: fds },
    );
  }
  const fd = LISTEN_FDS_START;
  let st: fs.Stats;
  try {
    st = fs.fstatSync(fd);
  } catch (e) {
    throw new MacnetError(
      'INVALID_ARGUMENT',
      `LISTEN_FDS=${fds} for this process, but fd ${fd} is not open ` +
        `(${(e as NodeJS.ErrnoException).code}): start the daemon from its socket unit, or without LISTEN_FDS`,
      { option: 'LISTEN_FDS', value: fds },
    );
  }
  if (!st.isSocket()) {
    throw new MacnetError(
      'INVALID_ARGUMENT',
      `LISTEN_FDS=${fds} for this process, but fd ${fd} is not a socket: ` +
        'the socket unit must have ListenStream=/run/docker/plugins/macnet.sock',
      { option: 'LISTEN_FDS', value: fds },
    );
  }
  return { fd, count: Number(fds), path: unixSocketPath(fd) };
}

/** The file-system path a unix socket descriptor is bound to (/proc/net/unix of this network namespace). */
function unixSocketPath(fd: number): string | undefined {
  try {
    const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/self/fd/${fd}`));
    if (!m) return undefined;
    // Num RefCount Protocol Flags Type St Inode Path
    for (const line of fs.readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[6] === m[1] && f[7]?.startsWith('/')) return f[7];
    }
  } catch {
    /* no /proc: the path is only for the log */
  }
  return undefined;
}
