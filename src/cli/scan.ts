// `macnet scan NETWORK`: asks the daemon (it owns the probe link) to sweep the network's LAN and prints who
// answers. A network name is resolved here, through the Docker Engine API, because the daemon's handlers
// never call Docker (a plugin that does can deadlock dockerd while it restores containers at boot).
import * as http from 'node:http';
import * as path from 'node:path';
import { CATALOGUE, type ErrorCode, fail, MacnetError } from '../errors';
import type { Row } from '../drivers/inventory';
import type { ScanResult } from '../drivers/scan';
import { parseCommandArgs } from './args';
import type { FailedReply } from '../docker/server';

export const SCAN_HELP = `Usage: macnet scan NETWORK [--json] [--plugin-dir DIR] [--docker-host unix:///path]

Lists who answers on the network's subnets: address, MAC, owner, and conflicts. The daemon sweeps from
its probe link: IPv4, one ARP probe per address of the subnet (at most a /20); IPv6, the addresses macnet
knows (containers, gateway, host). NETWORK is a Docker network name, or a network id or id prefix.

Options:
  --json                   an array of {address, mac, owner, note, conflict, replies}
  --plugin-dir DIR         where the daemon's macnet.sock is (default /run/docker/plugins)
  --docker-host URL        the Docker Engine API for names (default DOCKER_HOST, else unix:///var/run/docker.sock)
`;

interface Reply {
  status: number;
  body: string;
}

function request(socketPath: string, method: string, urlPath: string, body?: unknown): Promise<Reply> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath,
        path: urlPath,
        method,
        headers: {
          Host: 'localhost',
          ...(text !== undefined && { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

/** The unix socket path of a --docker-host URL (DOCKER_HOST, else Docker's default); tcp is refused. */
export function dockerSocket(flag: string | undefined): string {
  const url = flag ?? process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
  if (!url.startsWith('unix://')) {
    throw fail('OPTION_INVALID', {
      option: 'docker-host',
      value: url,
      valid: 'give a unix socket as unix:///path (tcp is not supported)',
    });
  }
  return url.slice('unix://'.length);
}

/** A full id (64 hex) or a long prefix is used as is; anything else is a name (or short prefix) for Docker. */
async function resolve(network: string, dockerHost: string | undefined): Promise<{ id: string; name?: string }> {
  if (/^[0-9a-f]{12,64}$/.test(network)) return { id: network };
  const sock = dockerSocket(dockerHost);
  let r: Reply;
  try {
    r = await request(sock, 'GET', `/networks/${encodeURIComponent(network)}`);
  } catch (e) {
    throw new MacnetError(
      'DOCKER_UNREACHABLE',
      `scan: cannot reach the Docker Engine API at unix://${sock} to look up network ` +
        `${JSON.stringify(network)} (${(e as Error).message}); give --docker-host, or the network id`,
      { socket: sock },
      e,
    );
  }
  if (r.status === 404) {
    throw fail('NETWORK_NOT_FOUND', { call: 'scan', network, docker: sock });
  }
  if (r.status !== 200)
    throw new MacnetError(
      'DOCKER_UNREACHABLE',
      `scan: the Docker Engine API at unix://${sock} answered ${r.status}` +
        ` for network ${JSON.stringify(network)}: ${r.body.trim()}`,
      { socket: sock },
    );
  return { id: (JSON.parse(r.body) as { Id: string }).Id, name: network };
}

export function formatTable(rows: readonly Row[]): string {
  const head = ['ADDRESS', 'MAC', 'OWNER', 'NOTE'];
  const cells = rows.map((r) => [r.address, r.mac || '-', r.owner, r.note]);
  const width = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) =>
    c
      .map((x, i) => (i === c.length - 1 ? x : x.padEnd(width[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), ...cells.map(line)].join('\n') + '\n';
}

export interface ScanOptions {
  readonly network: string;
  readonly json: boolean;
  readonly pluginDir: string;
  readonly dockerHost: string | undefined;
}

export function parseScanArgs(argv: string[]): ScanOptions {
  const { values, positionals } = parseCommandArgs(
    'scan',
    argv,
    { json: { type: 'boolean' }, 'plugin-dir': { type: 'string' }, 'docker-host': { type: 'string' } },
    true,
  );
  if (positionals.length !== 1)
    throw new MacnetError(
      'INVALID_ARGUMENT',
      `scan takes one NETWORK (a name, id or id prefix), got ${positionals.length}`,
      {},
    );
  if (values['docker-host'] !== undefined) dockerSocket(values['docker-host']);
  return {
    network: positionals[0]!,
    json: values.json ?? false,
    pluginDir: values['plugin-dir'] ?? '/run/docker/plugins',
    dockerHost: values['docker-host'],
  };
}

export async function scan(o: ScanOptions): Promise<number> {
  const network = await resolve(o.network, o.dockerHost);
  const socket = path.join(o.pluginDir, 'macnet.sock');
  let r: Reply;
  try {
    r = await request(socket, 'POST', '/macnet/scan', { network: network.id });
  } catch (e) {
    throw new MacnetError(
      'DAEMON_UNREACHABLE',
      `scan: cannot connect to the macnet daemon at ${socket} (` +
        `${(e as Error).message}); is \`macnet daemon\` running with this --plugin-dir?`,
      { socket },
      e,
    );
  }
  const body = JSON.parse(r.body) as ScanResult & Partial<FailedReply>;
  if (body.Err) {
    // A failing reply carries its code in a field of its own (server.ts); keep it, say which name it was.
    const named = network.name
      ? ` (Docker network ${JSON.stringify(network.name)}; is it a macnet network of this daemon?)`
      : '';
    const code = body.Code && body.Code in CATALOGUE ? (body.Code as ErrorCode) : 'INTERNAL';
    const message = body.Err.startsWith(`${code}: `) ? body.Err.slice(code.length + 2) : body.Err;
    throw new MacnetError(code, `${message}${named}`, {});
  }
  if (o.json) process.stdout.write(`${JSON.stringify(body.rows, null, 2)}\n`);
  else {
    process.stdout.write(formatTable(body.rows));
    const conflicts = body.rows.filter((x) => x.conflict).length;
    process.stderr.write(
      `network ${body.network.slice(0, 12)} on ${body.parent}: ${body.subnets.join(', ')}; ` +
        `asked ${body.asked.ipv4} IPv4 and ${body.asked.ipv6} IPv6 addresses in ${body.ms} ms; ` +
        `${body.rows.length} listed, ${conflicts} conflict${conflicts === 1 ? '' : 's'}\n`,
    );
  }
  return 0;
}
