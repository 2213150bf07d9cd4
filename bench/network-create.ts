// Figure "network-create": `docker network create` and `docker network rm` with macnet (network and IPAM
// driver) against Docker's built-in macvlan driver (with Docker's default IPAM), on the same lab host and the
// same dockerd, alternating. Each operation is timed twice over: through the docker CLI (what a person
// waits for) and as one Engine API request on dockerd's socket (the same work without the CLI process, so
// that the drivers' share is not hidden under the CLI's start-up).
import { Kernel } from '../src/kernel';
import type { Daemon } from '../test/lab/daemon';
import { Lab, type LabHost } from '../test/lab/lab';
import { balancedOrder, docker, elapsedMs, engine, startMacnet } from './docker-lab';
import { type Figure, type PlotPanel, type RichFigureResult, type Series, median, ratio } from './stats';

const SUBNET = '198.18.15.0/24';
const GATEWAY = '198.18.15.1';
const VLAN_PARENT = 'eth0.50';
const WARMUP = 2;

type Method = 'macnet' | 'macvlan';
const METHODS: readonly Method[] = ['macnet', 'macvlan'];

/** The docker CLI arguments of a create, per method; `parent` is eth0 or an 802.1q sub-interface. */
function cliArgs(method: Method, name: string, parent: string): string[] {
  const driver = method === 'macnet' ? ['-d', 'macnet', '--ipam-driver', 'macnet'] : ['-d', 'macvlan'];
  return ['network', 'create', ...driver, '--subnet', SUBNET, '--gateway', GATEWAY, '-o', `parent=${parent}`, name];
}

/** The Engine API body the CLI sends for the same create. */
function apiBody(method: Method, name: string, parent: string): unknown {
  return {
    Name: name,
    Driver: method,
    CheckDuplicate: true,
    Options: { parent },
    IPAM: { Driver: method === 'macnet' ? 'macnet' : 'default', Config: [{ Subnet: SUBNET, Gateway: GATEWAY }] },
  };
}

/** Why 802.1q parents cannot be measured here, or undefined when this kernel creates vlan links. */
async function vlanMissing(host: LabHost): Promise<string | undefined> {
  return Kernel.with(host.ns.path, async (k) => {
    try {
      await k.links.create({ kind: 'vlan', name: VLAN_PARENT, parent: 'eth0', id: 50 });
    } catch (e) {
      return (e as Error).message;
    }
    await k.links.delete(VLAN_PARENT);
    return undefined;
  });
}

interface Samples {
  [op: string]: { [m in Method]: number[] };
}

async function measure(
  host: LabHost,
  rounds: number,
  parent: string,
  tag: string,
  samples: Samples,
  log: (m: string) => void,
): Promise<void> {
  const ops = [
    `create${tag} (docker CLI)`,
    `rm${tag} (docker CLI)`,
    `create${tag} (Engine API)`,
    `delete${tag} (Engine API)`,
  ] as const;
  for (const op of ops) samples[op] ??= { macnet: [], macvlan: [] };
  let n = 0;
  const once = async (method: Method, timed: boolean) => {
    const name = `bench-${method}-${++n}`;
    const t = [
      await elapsedMs(() => docker(host, ...cliArgs(method, name, parent))),
      await elapsedMs(() => docker(host, 'network', 'rm', name)),
    ];
    let id = '';
    t.push(
      await elapsedMs(async () => {
        const r = await engine(host, 'POST', '/networks/create', apiBody(method, `${name}-api`, parent));
        if (r.status !== 201)
          throw new Error(`${method}: POST /networks/create: ${r.status} ${JSON.stringify(r.body)}`);
        id = (r.body as { Id: string }).Id;
      }),
    );
    t.push(
      await elapsedMs(async () => {
        const r = await engine(host, 'DELETE', `/networks/${id}`);
        if (r.status !== 204)
          throw new Error(`${method}: DELETE /networks/${id}: ${r.status} ${JSON.stringify(r.body)}`);
      }),
    );
    if (timed) ops.forEach((op, i) => samples[op]![method].push(t[i]!));
  };
  for (let i = 0; i < WARMUP; i++) for (const m of METHODS) await once(m, false);
  for (let i = 0; i < rounds; i++) {
    // A B, then B A: each method goes first equally often.
    for (const m of balancedOrder(METHODS, i)) await once(m, true);
    if ((i + 1) % 5 === 0 || i + 1 === rounds) log(`network-create${tag}: ${i + 1}/${rounds} rounds`);
  }
  const left = await docker(host, 'network', 'ls', '--filter', 'name=bench-', '-q');
  if (left) throw new Error(`network-create: networks left after the rounds: ${left}`);
}

function cliShare(samples: Samples): string {
  const cli = samples['create (docker CLI)'],
    api = samples['create (Engine API)'];
  return cli && api ? `${(median(cli.macvlan) - median(api.macvlan)).toFixed(1)} ms` : 'not measured';
}

export async function networkCreateFigure(rounds: number, log: (m: string) => void): Promise<RichFigureResult> {
  const lab = await Lab.create({ hosts: 1, docker: true });
  let daemon: Daemon | undefined;
  const samples: Samples = {};
  let vlanReason: string | undefined;
  let dockerVersion: string;
  try {
    const host = lab.hosts[0]!;
    dockerVersion = await docker(host, 'version', '--format', '{{.Server.Version}}');
    daemon = await startMacnet(host);
    log(`network-create: lab ready in ${(lab.createMs / 1000).toFixed(1)} s, macnet daemon pid ${daemon.pid}`);
    await measure(host, rounds, 'eth0', '', samples, log);
    vlanReason = await vlanMissing(host);
    if (vlanReason === undefined) await measure(host, rounds, VLAN_PARENT, ' 802.1q', samples, log);
  } finally {
    await daemon?.remove();
    await lab.destroy();
  }

  const series: Series[] = Object.entries(samples).flatMap(([op, by]) =>
    METHODS.map((method) => ({ op, method, samplesMs: by[method] })),
  );
  const panel: PlotPanel = {
    title: 'Network create + delete: macnet / built-in macvlan, median time',
    unit: '×',
    better: 'lower',
    bars: Object.entries(samples).map(([op, by]) => ({
      label: op,
      value: ratio(median(by.macnet), median(by.macvlan)),
    })),
    lines: [{ value: 1, label: 'parity', kind: 'reference' }],
  };
  const skipped =
    vlanReason === undefined
      ? []
      : [
          `create + delete with an 802.1q parent (-o parent=${VLAN_PARENT}): skipped, this kernel cannot create vlan links ` +
            `(probe in the lab host: ${vlanReason}). The VM with the stock Debian kernel has vlan, but no dockerd runs there.`,
        ];
  return {
    what:
      `One lab host (its own network namespace, mount namespace and dockerd ${dockerVersion}), with \`bin/macnet daemon\` ` +
      `serving its plugin socket. Per round and method: \`docker network create\` of a network on ${SUBNET} ` +
      '(gateway, parent eth0), `docker network rm` of it, then the same create and delete as single Engine API ' +
      'requests on the dockerd socket (POST /networks/create, DELETE /networks/{id}). The methods alternate within ' +
      `each round, A B then B A. ${WARMUP} untimed rounds come first. Each operation is timed on its own as the ` +
      'bench process sees it: the CLI times include starting the docker CLI process.',
    methods: {
      macnet:
        `\`docker network create -d macnet --ipam-driver macnet --subnet ${SUBNET} --gateway ${GATEWAY} -o parent=eth0 NAME\`: ` +
        'dockerd calls macnet over its socket (RequestPool, RequestAddress for the gateway, CreateNetwork; on rm ' +
        'DeleteNetwork, ReleaseAddress, ReleasePool)',
      macvlan:
        `\`docker network create -d macvlan --subnet ${SUBNET} --gateway ${GATEWAY} -o parent=eth0 NAME\`: ` +
        "Docker's built-in driver and default IPAM, inside dockerd",
    },
    baseline: 'macvlan',
    roundUnit: 'create + delete of one network per method, by CLI and by API',
    rounds,
    series,
    notes: [
      'Neither driver creates a link at network create when the parent exists (links come at container start), ' +
        'so the difference is the plugin round trips over the socket and what each driver and IPAM stores: ' +
        "macnet writes its SQLite state (pool, gateway, network) and dockerd's own store is written for both.",
      `The docker CLI's own share (a Go binary started per command; median CLI create minus median API create of the ` +
        `built-in driver: ${cliShare(samples)}) is in both CLI methods alike: it pulls the CLI ratio towards 1, the ` +
        "API rows show the drivers' share.",
    ],
    skipped,
    plot: [panel],
  };
}

export const networkCreate: Figure = {
  id: 'network-create',
  title: 'docker network create + rm: macnet vs. built-in macvlan on one lab host',
  defaultRounds: 20,
  quickRounds: 3,
  run: ({ rounds, log }) => networkCreateFigure(rounds, log),
};
