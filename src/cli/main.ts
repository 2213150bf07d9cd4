// `macnet` command line. Parses arguments, calls the layer below, prints; no logic of its own.
import { parseArgs } from 'node:util';
import { isMacnetError } from '../errors';
import { Kernel, type Link } from '../kernel';
import { DAEMON_HELP, parseDaemonArgs, runDaemon } from './daemon';
import { scan } from './scan';
import { INSTALL_UNITS_HELP, installUnits } from './units';

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
  install-units [--prefix DIR]    write the systemd units (socket activation) into DIR
                                  (default /etc/systemd/system; macnet install-units --help)

Options:
  -h, --help      show this help
  -v, --version   print the version
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

async function links(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { netns: { type: 'string' }, json: { type: 'boolean' } },
    strict: true,
  });
  return Kernel.with(values.netns, async (k) => {
    const all = await k.links.list();
    if (values.json) process.stdout.write(`${JSON.stringify(all, null, 2)}\n`);
    else {
      const byIndex = new Map(all.map((l) => [l.index, l.name]));
      for (const l of all) process.stdout.write(`${describe(l, byIndex)}\n`);
    }
    return 0;
  });
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(HELP);
        return cmd === undefined ? 2 : 0;
      case '-v':
      case '--version':
        process.stdout.write(`${VERSION}\n`);
        return 0;
      case 'links':
        return await links(rest);
      case 'daemon':
        if (rest.includes('--help') || rest.includes('-h')) {
          process.stdout.write(DAEMON_HELP);
          return 0;
        }
        return await runDaemon(parseDaemonArgs(rest));
      case 'scan':
        return await scan(rest);
      case 'install-units':
        if (rest.includes('--help') || rest.includes('-h')) {
          process.stdout.write(INSTALL_UNITS_HELP);
          return 0;
        }
        return installUnits(rest);
      default:
        process.stderr.write(
          `macnet: unknown command ${JSON.stringify(cmd)}; valid commands: links, daemon, scan, ` +
            'install-units (macnet --help)\n',
        );
        return 2;
    }
  } catch (e) {
    if (isMacnetError(e)) {
      process.stderr.write(`macnet: ${e.code}: ${e.message}\n`);
      return 1;
    }
    if ((e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`macnet ${cmd}: ${(e as Error).message}\n`);
      return 2;
    }
    throw e;
  }
}
