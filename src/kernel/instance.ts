// One macnet daemon per network namespace and per state dir (docs/driver.md, "One daemon per host").
//
// Network namespace: an abstract unix socket. Abstract names belong to the network namespace, not to the
// file system, so a daemon in another mount namespace (a managed plugin beside a service, say) collides all
// the same; the kernel frees the name when the process dies, however it dies. Its one job: tell a second
// daemon who runs (pid and state dir, one JSON line per connection).
//
// State dir: flock on <state-dir>/daemon.lock, with the holder's pid written in it. The kernel drops the
// lock with the process, so a stale file never blocks a start; the pid is only for the message.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { MacnetError } from '../errors';
import { addon } from './addon';

/** Per network namespace; tests give each daemon its own namespace. */
export const INSTANCE_SOCKET = '\0macnet/daemon';

/**
 * Bench-only (docs/driver.md): MACNET_TEST_INSTANCE=NAME claims the abstract name macnet/daemon/NAME instead, so
 * that a second daemon (bench/docker-run.ts's --no-probe one, under another plugin name) can share a namespace
 * with the first. Both must start before any container: each one's start-up clean-up removes endpoint links
 * its own state does not know.
 */
export const INSTANCE_ENV = 'MACNET_TEST_INSTANCE';
/** Set to managed-plugin by the managed plugin's config.json (scripts/build-plugin.js); a service sets nothing. */
export const FORM_ENV = 'MACNET_FORM';
/** How a daemon runs; the refusals name the other one's form and how to stop it. */
export type Form = 'service' | 'managed-plugin';
const ASK_TIMEOUT_MS = 1000;

export interface Instance {
  /** Closes the abstract socket and the lock file (the kernel would at exit anyway). */
  release(): void;
}

/**
 * Claims the network namespace and the state dir, or fails with DAEMON_ALREADY_RUNNING naming the holder.
 * `createStateDir: false` (macnet uninstall): a state dir that does not exist is not created, only the
 * namespace is claimed. `instance` (bench-only, INSTANCE_ENV): another abstract name in the namespace.
 */
export async function claimInstance(
  stateDir: string,
  opts: { createStateDir?: boolean; instance?: string; form?: Form; beforeStateDir?: () => void } = {},
): Promise<Instance> {
  const form = opts.form ?? 'service';
  const server = await claimNetns(
    { stateDir, form },
    opts.instance ? `${INSTANCE_SOCKET}/${opts.instance}` : INSTANCE_SOCKET,
  );
  let fd: number | undefined;
  try {
    opts.beforeStateDir?.();
    if (opts.createStateDir !== false || fs.existsSync(stateDir)) fd = claimStateDir(stateDir);
  } catch (e) {
    server.close();
    throw e;
  }
  return {
    release: () => {
      server.close();
      if (fd !== undefined) fs.closeSync(fd);
    },
  };
}

interface Holder {
  pid?: number;
  stateDir?: string;
  form?: Form;
}

async function claimNetns(me: { stateDir: string; form: Form }, name: string): Promise<net.Server> {
  const server = net.createServer((s) => s.end(`${JSON.stringify({ pid: process.pid, ...me })}\n`));
  server.on('error', () => undefined);
  const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    server.once('error', resolve);
    server.listen({ path: name }, () => resolve(undefined));
  });
  if (!err) {
    server.unref();
    return server;
  }
  if (err.code !== 'EADDRINUSE') throw err;
  const other = await ask(name);
  throw new MacnetError('DAEMON_ALREADY_RUNNING', refusal(me.form, other), {
    pid: other?.pid,
    stateDir: other?.stateDir,
    form: other?.form ?? 'service',
  });
}

/**
 * The refusal names the running daemon's form and how to stop it: a managed plugin and a service daemon on one
 * host are the case where the user may not know that the other one runs (dockerd starts the plugin).
 */
function refusal(mine: Form, other: Holder | undefined): string {
  const pid = other?.pid ?? 'unknown';
  const running =
    other?.form === 'managed-plugin'
      ? `macnet's Docker managed plugin runs in this network namespace (pid ${pid}, its state on the plugin's own ` +
        'mount; docker plugin ls shows it)'
      : `another macnet daemon runs in this network namespace (pid ${pid}, state dir ${other?.stateDir ?? 'unknown'})`;
  const stop =
    other?.form === 'managed-plugin'
      ? 'disable the plugin first (docker plugin disable NAME)'
      : mine === 'managed-plugin'
        ? 'stop the service first (systemctl disable --now macnet.socket macnet.service), or use it: -d macnet'
        : 'stop that one first';
  return (
    `${running}: one daemon per network namespace, whatever its form (service or managed plugin), mount ` +
    `namespace or plugin dir; ${stop} (two would delete each other's links)`
  );
}

/** Who holds the abstract socket (its pid is in its own pid namespace). */
function ask(name: string): Promise<Holder | undefined> {
  return new Promise((resolve) => {
    const s = net.connect({ path: name });
    let text = '';
    const done = () => {
      s.destroy();
      try {
        resolve(JSON.parse(text.split('\n')[0]!) as Holder);
      } catch {
        resolve(undefined);
      }
    };
    s.setTimeout(ASK_TIMEOUT_MS, done);
    s.on('data', (b) => {
      text += b.toString();
      if (text.length > 4096) done();
    });
    s.on('end', done);
    s.on('error', done);
  });
}

function claimStateDir(stateDir: string): number {
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const file = path.join(stateDir, 'daemon.lock');
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  try {
    if (!addon.flockExclusive(fd)) {
      const pid = fs.readFileSync(file, 'utf8').trim().slice(0, 20) || 'unknown';
      throw new MacnetError(
        'DAEMON_ALREADY_RUNNING',
        `state dir ${stateDir} is in use by another macnet daemon (pid ${pid}, from ${file}): one daemon per ` +
          'state dir; stop that one first, or give this one its own --state-dir',
        { pid, stateDir },
      );
    }
    fs.fchmodSync(fd, 0o600);
    fs.ftruncateSync(fd, 0);
    fs.writeSync(fd, `${process.pid}\n`, 0);
    return fd;
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}
