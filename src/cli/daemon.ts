// `macnet daemon`: the Docker network + IPAM plugin. Wires the store, the IPAM service, the driver and the
// plugin server together; SIGTERM/SIGINT let in-flight calls finish and exit 0.
import * as path from 'node:path';
import { fail, isMacnetError } from '../errors';
import { handlers } from '../docker/handlers';
import { RECLAIM_CONFIRM_MS, scheduleReclaim } from '../docker/reclaim';
import { PluginServer } from '../docker/server';
import { NetworkDriver } from '../drivers/driver';
import { DAEMON_POOLS, poolOption } from '../ipam/pools';
import { Ipam } from '../ipam/ipam';
import { Kernel, useProcSysNet } from '../kernel';
import { DhcpLeases, Lan } from '../lan';
import { assertPrivileges } from '../kernel/capabilities';
import { claimInstance, FORM_ENV, INSTANCE_ENV, type Instance } from '../kernel/instance';
import { addFaultHook, installFatalHandlers, jsonWarnings } from './fatal';
import { createLogger, type Level, LEVELS, type Logger } from '../log';
import { directoryOption, makeDirectory, parseCommandArgs } from './args';
import { type PassedSocket, passedSocket } from './systemd';
import { joinCluster } from './cluster';
import { NAMES_ARGS, NAMES_HELP, parseNamesOptions, startNames, type NamesOptions } from './names';
import { openStore, parseStoreOptions, STORE_ARGS, STORE_HELP, type OpenedStore, type StoreChoice } from './store-open';

export const DAEMON_HELP = `Usage: macnet daemon [options]

Serves Docker's NetworkDriver and IpamDriver plugin protocol on <plugin-dir>/macnet.sock.
Use it as: docker network create -d macnet --ipam-driver macnet --subnet ... -o parent=eth0 NAME

Options:
  --plugin-dir DIR             where dockerd looks for plugin sockets (default /run/docker/plugins)
  --state-dir DIR              the state database, or with etcd this host's id (default /var/lib/macnet)
  --log-level LEVEL            debug | info | warn | error, any case (default info); JSON lines on stderr
  --probe-window MS            bound of a cold ARP/DAD probe before an address is used (default 300)
  --no-probe                   do not probe the LAN nor announce addresses
  --reclaim-after SECONDS      after a start, give back addresses that a docker command interrupted by
                               a macnet crash left allocated and no container uses (default 60; 0: never)
  --dhcp-keep SECONDS          DHCP mode: how long a stopped container's lease is kept for its next start
                               (same address and client-id) before it is released (default 600; 0: at once)
  --netns-dir DIR              open containers' network namespaces (Docker's SandboxKey) by their file name
                               in DIR: dockerd's <exec-root>/netns as this process sees it (the managed plugin
                               mounts it at /run/docker/netns)
  --proc-sys-net DIR           write this namespace's sysctls under DIR instead of /proc/sys/net (the managed
                               plugin: Docker mounts /proc/sys read-only there, and binds /proc/sys/net to DIR)
  --default-address-pool base=CIDR,size=N
                               pools for networks created without --subnet (repeatable;
                               default ${DAEMON_POOLS.map(poolOption).join(' and ')})
${NAMES_HELP}${STORE_HELP}`;

export interface DaemonOptions {
  pluginDir: string;
  stateDir: string;
  logLevel: Level;
  defaultPools: { base: string; size: number }[];
  probe: boolean;
  probeWindowMs: number;
  /** When to look for addresses a crash left allocated (src/docker/reclaim.ts); 0: never. */
  reclaimAfterMs: number;
  /** DHCP mode: how long a stopped container's lease is parked for its next start (src/lan/leases.ts). */
  dhcpKeepMs: number;
  /** Names across hosts (src/cli/names.ts, docs/names.md). */
  names: NamesOptions;
  /** Where SandboxKey files are found by name (a managed plugin sees dockerd's netns dir elsewhere). */
  netnsDir?: string;
  /** Where the sysctls of the daemon's namespace are writable (a managed plugin's /proc/sys is read-only). */
  procSysNet?: string;
  /** SQLite in the state dir, or etcd shared with other hosts (store-open.ts). */
  store: StoreChoice;
}

export function parseDaemonArgs(argv: string[]): DaemonOptions {
  const { values } = parseCommandArgs('daemon', argv, {
    'plugin-dir': { type: 'string' },
    'state-dir': { type: 'string' },
    'log-level': { type: 'string' },
    'default-address-pool': { type: 'string', multiple: true },
    'probe-window': { type: 'string' },
    'no-probe': { type: 'boolean' },
    'reclaim-after': { type: 'string' },
    'dhcp-keep': { type: 'string' },
    'netns-dir': { type: 'string' },
    'proc-sys-net': { type: 'string' },
    ...STORE_ARGS,
    ...NAMES_ARGS,
  });
  const given = values['log-level'] ?? 'info';
  const level = given.toLowerCase();
  if (!(LEVELS as string[]).includes(level)) {
    throw fail('OPTION_INVALID', {
      option: 'log-level',
      value: given,
      valid: `use one of ${LEVELS.join(', ')} (any case)`,
    });
  }
  const pools =
    values['default-address-pool']?.map((p) => {
      const m = /^base=([^,]+),size=(\d+)$/.exec(p);
      if (!m)
        throw fail('OPTION_INVALID', {
          option: 'default-address-pool',
          value: p,
          valid: 'write base=CIDR,size=PREFIXLEN, e.g. base=198.18.128.0/17,size=24',
        });
      return { base: m[1]!, size: Number(m[2]) };
    }) ?? DAEMON_POOLS.map((p) => ({ ...p }));
  for (const [opt, dir] of [
    ['plugin-dir', values['plugin-dir']],
    ['state-dir', values['state-dir']],
    ['netns-dir', values['netns-dir']],
    ['proc-sys-net', values['proc-sys-net']],
  ] as const) {
    if (dir !== undefined) directoryOption(opt, dir);
  }
  const win = values['probe-window'] ?? '300';
  if (!/^\d+$/.test(win) || Number(win) < 10 || Number(win) > 10_000) {
    throw fail('OPTION_INVALID', { option: 'probe-window', value: win, valid: 'give milliseconds from 10 to 10000' });
  }
  // Below 35 s, dockerd (which retries a plugin call for about 30 s) may still be re-sending the call that
  // would create the endpoint for an address that looks orphaned.
  const reclaim = values['reclaim-after'] ?? '60';
  if (!/^\d+$/.test(reclaim) || (Number(reclaim) !== 0 && (Number(reclaim) < 35 || Number(reclaim) > 86_400))) {
    throw fail('OPTION_INVALID', {
      option: 'reclaim-after',
      value: reclaim,
      valid: 'give seconds from 35 to 86400, or 0 to never give such addresses back',
    });
  }
  const keep = values['dhcp-keep'] ?? '600';
  if (!/^\d+$/.test(keep) || Number(keep) > 86_400) {
    throw fail('OPTION_INVALID', {
      option: 'dhcp-keep',
      value: keep,
      valid: 'give seconds from 0 (release at once) to 86400',
    });
  }
  const store = parseStoreOptions(values);
  return {
    store,
    names: parseNamesOptions(values),
    reclaimAfterMs: Number(reclaim) * 1000,
    dhcpKeepMs: Number(keep) * 1000,
    probe: !values['no-probe'],
    probeWindowMs: Number(win),
    pluginDir: values['plugin-dir'] ?? '/run/docker/plugins',
    stateDir: values['state-dir'] ?? '/var/lib/macnet',
    logLevel: level as Level,
    defaultPools: pools,
    ...(values['netns-dir'] !== undefined && { netnsDir: values['netns-dir'] }),
    ...(values['proc-sys-net'] !== undefined && { procSysNet: values['proc-sys-net'] }),
  };
}

/**
 * A managed plugin that refuses to start (another daemon runs, a bad `args` setting) waits for dockerd's SIGTERM
 * instead of exiting: Docker 20.10 restarts a plugin that exits while `docker plugin enable` waits for its socket,
 * and then leaves its containerd container behind, so that every later enable fails with "id already in use"
 * until dockerd restarts. Waiting, the refused plugin is stopped and removed cleanly when enable gives up (about
 * 10 s) and stays disabled; its refusal is in dockerd's log.
 */
export async function holdIfManagedPlugin(): Promise<void> {
  if (process.env[FORM_ENV] !== 'managed-plugin') return;
  process.stderr.write('macnet: not started: waiting for dockerd to stop this plugin\n');
  // Signal listeners alone do not keep Node's event loop alive: a timer does.
  const keepAlive = setInterval(() => undefined, 3_600_000);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  clearInterval(keepAlive);
}

export async function runDaemon(opts: DaemonOptions): Promise<number> {
  const log = createLogger(opts.logLevel, { component: 'macnet' });
  jsonWarnings(log);
  const socket = path.join(opts.pluginDir, 'macnet.sock');
  let instance: Instance;
  let passed: PassedSocket | undefined;
  try {
    // Without these privileges nothing below could work: refuse now rather than say "ready".
    assertPrivileges();
    passed = passedSocket();
    // Before anything is touched: a second daemon's start-up clean-up would delete the first one's links. The
    // directories are made only once the namespace is ours, so that a refused daemon leaves nothing behind.
    const name = process.env[INSTANCE_ENV];
    instance = await claimInstance(opts.stateDir, {
      ...(name && { instance: name }),
      form: process.env[FORM_ENV] === 'managed-plugin' ? 'managed-plugin' : 'service',
      beforeStateDir: () => {
        makeDirectory('state-dir', opts.stateDir, 0o700);
        if (!passed) makeDirectory('plugin-dir', opts.pluginDir, 0o755);
      },
    });
    try {
      // A passed socket answers by design (systemd holds it); the instance claim above still keeps it to one daemon.
      if (!passed) await PluginServer.assertFree(socket);
    } catch (e) {
      instance.release();
      throw e;
    }
  } catch (e) {
    if (!isMacnetError(e)) throw e;
    log.error('not started', { code: e.code, error: `${e.code}: ${e.message}`, ...e.details });
    return 1;
  }
  return serve(opts, log, instance, socket, passed);
}

async function serve(
  opts: DaemonOptions,
  log: Logger,
  instance: Instance,
  socket: string,
  passed: PassedSocket | undefined,
): Promise<number> {
  const started = performance.now();
  let opened: OpenedStore;
  try {
    // Before anything reads the state: an older layout is brought up to date, a newer one refused; etcd that does
    // not answer fails here, within its request deadline, naming the endpoints.
    opened = await openStore(opts.store, opts.stateDir);
    const m = opened.migrated;
    if (m.steps.length) log.info('state migrated', { from: m.from, to: m.to, steps: m.steps });
  } catch (e) {
    instance.release();
    if (!isMacnetError(e)) throw e;
    log.error('not started', { code: e.code, error: `${e.code}: ${e.message}`, ...e.details });
    return 1;
  }
  // What every host on one etcd shares (the pools), and what is this host's own (its driver records, its leases).
  const { shared, local } = opened;
  if (opts.procSysNet !== undefined) useProcSysNet(opts.procSysNet);
  const kernel = Kernel.open();
  // Each service made once, each handed to those that use it: the LAN below both the IPAM and the driver; the
  // driver asks the IPAM what it allocated through the IPAM's AddressBook (src/lan/segment.ts), nothing more.
  const lan = new Lan(kernel, log, { probe: opts.probe, windowMs: opts.probeWindowMs });
  const leases = new DhcpLeases(local, lan, log, { keepMs: opts.dhcpKeepMs });
  const host = opened.host === undefined ? {} : { host: opened.host, local };
  const ipam = new Ipam(shared, { defaultPools: opts.defaultPools, lan, leases, ...host });
  const driver = new NetworkDriver(kernel, local, log, { lan, leases, addresses: ipam });
  const h = handlers(driver, ipam, opts.netnsDir === undefined ? {} : { netnsDir: opts.netnsDir });
  addFaultHook(h, log);
  const server = new PluginServer(h, log);
  installFatalHandlers(log, () => server.removeSocket());
  await ipam.load();
  await driver.reconcile();
  /** Each service closed, those above first; the instance claim last. */
  const closeServices = async () => {
    ipam.close();
    leases.stop();
    await driver.close();
    await lan.close();
    await kernel.close();
    await opened.close();
    instance.release();
  };
  let leaveCluster: () => Promise<void>;
  try {
    leaveCluster = await joinCluster(opened, {
      ipam,
      driver,
      lan,
      log,
      graceMs: opts.store.kind === 'etcd' ? opts.store.lostHostGraceMs : 0,
      label: opts.names.label,
    });
  } catch (e) {
    if (!isMacnetError(e)) throw e;
    log.error('not started', { code: e.code, error: `${e.code}: ${e.message}`, ...e.details });
    await closeServices();
    return 1;
  }
  const stopReclaim = scheduleReclaim({ ipam, driver, log }, opts.reclaimAfterMs, RECLAIM_CONFIRM_MS);
  // The names on the store the hosts share (etcd), or this host's own (SQLite, where `shared` is `local`).
  // On SQLite the records are this host's alone: no host id is made for them (state-dir.ts makes one on etcd only).
  const names = { store: shared, hostId: opened.host ?? 'local', presence: opened.leasing !== undefined, driver, log };
  const stopNames = await startNames(names, opts.names);
  if (passed) {
    // systemd's socket (src/cli/systemd.ts): calls that came while this process started wait in its backlog.
    if (passed.count > 1)
      log.warn('socket activation passed more than one socket: serving the first', { count: passed.count });
    await server.listenFd(passed.fd);
  } else {
    await server.listen(socket);
  }
  const where = passed ? { socket: passed.path ?? `fd ${passed.fd}`, activation: 'systemd' } : { socket };
  log.info('ready', {
    ...where,
    stateDir: opts.stateDir,
    store: opened.where,
    ms: Math.round(performance.now() - started),
    pid: process.pid,
  });

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info('stopping: finishing in-flight calls', { signal });
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await server.close(); // removes the socket, if it is still the one it created (never systemd's)
  stopReclaim();
  await stopNames();
  await leaveCluster();
  await closeServices();
  log.info('stopped');
  // Everything is closed: the process ends by itself. Should a handle still be open (a defect: a socket or timer
  // made during the stop), it must not keep a stopped daemon alive under systemd or dockerd.
  setTimeout(() => {
    log.warn('handles still open after the stop: exiting anyway');
    process.exit(0);
  }, 2000).unref();
  return 0;
}
