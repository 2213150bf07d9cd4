// `macnet` command line. Parses arguments, calls the layer below, prints; no logic of its own.
import { isMacnetError, MacnetError } from '../errors';
import { Kernel, type Link } from '../kernel';
import { parseCommandArgs } from './args';
import { DAEMON_HELP, holdIfManagedPlugin, parseDaemonArgs, runDaemon } from './daemon';
import { doctor, DOCTOR_HELP, parseDoctorArgs } from './doctor';
import { parseScanArgs, scan, SCAN_HELP } from './scan';
import { parseStoreArgs, storeMigrate, STORE_MIGRATE_HELP } from './store-migrate';
import { parseUninstallArgs, uninstall, UNINSTALL_HELP } from './uninstall';
import { INSTALL_UNITS_HELP, installUnits, parseInstallUnitsArgs } from './units';

// Read at run time so that --version always matches package.json.
const VERSION: string = require('../../../package.json').version;

const HELP = `macnet ${VERSION}: containers directly on the physical LAN (macvlan, ipvlan, 802.1q)

Usage: macnet <command> [options]

Commands:
  links [--netns PATH] [--json]   list the links of a network namespace with their kind data
                                  (macvlan mode, vlan id, ipvlan mode and flag, parent, MAC, MTU)
  daemon [--help]                 the Docker network + IPAM plugin (macnet daemon --help)
  scan NETWORK [--json]           who answers on a network's LAN: address, MAC, owner,
                                  conflicts (macnet scan --help)
  doctor [--parent IF | --network NET] [--json]
                                  check the host, a parent or a network for what breaks macvlan
                                  and ipvlan: hypervisor, Wi-Fi, MTU, network managers
                                  (macnet doctor --help)
  install-units [--prefix DIR]    write the systemd units (socket activation) into DIR
                                  (default /etc/systemd/system; macnet install-units --help)
  store migrate --to etcd ...     with the daemon stopped: move this host's records from SQLite into
                                  etcd (macnet store --help)
  uninstall [--purge]             with no macnet network left and the daemon stopped: remove the links
                                  macnet made, and with --purge its state (macnet uninstall --help)
  help [COMMAND]                  this help, or a command's

Options:
  -h, --help      show this help (after a command: the command's)
  -v, --version   print the version

Exit status: 0 done; 1 refused or failed (stderr: macnet: CODE: message, codes in docs/errors.md);
2 the command line is wrong (unknown command or option, a missing or invalid value); the daemon also
exits 70 after an internal fault (for its supervisor to restart it); doctor exits 1 when a finding blocks.
`;

const LINKS_HELP = `Usage: macnet links [--netns PATH] [--json]

Lists the links of a network namespace with their kind data (macvlan mode, vlan id, ipvlan mode and flag,
parent, MAC, MTU, state), read from the kernel over rtnetlink.

Options:
  --netns PATH   the namespace: /run/netns/NAME, /proc/PID/ns/net, a Docker SandboxKey (default: this one)
  --json         the links as a JSON array
`;

function describe(l: Link, byIndex: Map<number, string>): string {
  const parent =
    l.parentIndex === undefined
      ? ''
      : ' parent ' +
        (byIndex.get(l.parentIndex) ??
          `index ${l.parentIndex}${l.parentNetnsId !== undefined ? ' (other netns)' : ''}`);
  const data =
    l.data === undefined
      ? ''
      : ` ${Object.entries(l.data)
          .filter(([k]) => k !== 'kind')
          .map(([k, v]) => `${k} ${v}`)
          .join(' ')}`;
  return (
    `${l.index}: ${l.name} ${l.kind ?? (l.hwType === 772 ? 'loopback' : 'device')}${data}${parent} mac ` +
    `${l.mac ?? '-'} mtu ${l.mtu} ${l.up ? 'up' : 'down'}${l.promisc ? ' promisc' : ''} ${l.operstate}`
  );
}

function parseLinksArgs(argv: string[]): { netns: string | undefined; json: boolean } {
  const { values } = parseCommandArgs('links', argv, { netns: { type: 'string' }, json: { type: 'boolean' } });
  return { netns: values.netns, json: values.json ?? false };
}

async function links(o: { netns: string | undefined; json: boolean }): Promise<number> {
  return Kernel.with(o.netns, async (k) => {
    const all = await k.links.list();
    if (o.json) process.stdout.write(`${JSON.stringify(all, null, 2)}\n`);
    else {
      const byIndex = new Map(all.map((l) => [l.index, l.name]));
      for (const l of all) process.stdout.write(`${describe(l, byIndex)}\n`);
    }
    return 0;
  });
}

/** A command: its help, and a parser that checks the arguments (throwing on a bad command line) before it runs. */
interface Command {
  readonly help: string;
  parse(argv: string[]): () => Promise<number> | number;
}

const COMMANDS: Readonly<Record<string, Command>> = {
  links: {
    help: LINKS_HELP,
    parse: (a) =>
      (
        (o) => () =>
          links(o)
      )(parseLinksArgs(a)),
  },
  daemon: {
    help: DAEMON_HELP,
    parse: (a) =>
      (
        (o) => () =>
          runDaemon(o)
      )(parseDaemonArgs(a)),
  },
  scan: {
    help: SCAN_HELP,
    parse: (a) =>
      (
        (o) => () =>
          scan(o)
      )(parseScanArgs(a)),
  },
  doctor: {
    help: DOCTOR_HELP,
    parse: (a) =>
      (
        (o) => () =>
          doctor(o)
      )(parseDoctorArgs(a)),
  },
  'install-units': {
    help: INSTALL_UNITS_HELP,
    parse: (a) =>
      (
        (o) => () =>
          installUnits(o)
      )(parseInstallUnitsArgs(a)),
  },
  store: {
    help: STORE_MIGRATE_HELP,
    parse: (a) =>
      (
        (o) => () =>
          storeMigrate(o)
      )(parseStoreArgs(a)),
  },
  uninstall: {
    help: UNINSTALL_HELP,
    parse: (a) =>
      (
        (o) => () =>
          uninstall(o)
      )(parseUninstallArgs(a)),
  },
};

const usageError = (e: MacnetError, hint: string): number => {
  process.stderr.write(`macnet: ${e.code}: ${e.message} (${hint})\n`);
  return 2;
};

export async function main(argv: string[]): Promise<number> {
  const code = await command(argv);
  if (argv[0] === 'daemon' && (code === 1 || code === 2)) await holdIfManagedPlugin();
  return code;
}

async function command(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case undefined:
      process.stderr.write(HELP);
      return 2;
    case '-h':
    case '--help':
      process.stdout.write(HELP);
      return 0;
    case 'help': {
      const about = rest[0] === undefined ? undefined : COMMANDS[rest[0]];
      if (rest[0] !== undefined && !about) return usageError(unknownCommand(rest[0]), 'macnet --help');
      process.stdout.write(about?.help ?? HELP);
      return 0;
    }
    case '-v':
    case '--version':
      process.stdout.write(`${VERSION}\n`);
      return 0;
  }
  const command = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
  if (!command) return usageError(unknownCommand(cmd), 'macnet --help');
  // Anywhere among the arguments, as most tools take it; an option's value that is "-h" is not given a thought.
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(command.help);
    return 0;
  }
  let runIt: () => Promise<number> | number;
  try {
    runIt = command.parse(rest);
  } catch (e) {
    if (isMacnetError(e)) return usageError(e, `macnet ${cmd} --help`);
    throw e;
  }
  try {
    return await runIt();
  } catch (e) {
    if (isMacnetError(e)) {
      process.stderr.write(`macnet: ${e.code}: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

function unknownCommand(cmd: string): MacnetError {
  return new MacnetError(
    'INVALID_ARGUMENT',
    `unknown command ${JSON.stringify(cmd)}; valid commands: ${Object.keys(COMMANDS).join(', ')}, help`,
    { command: cmd },
  );
}
