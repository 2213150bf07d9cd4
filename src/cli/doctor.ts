// `macnet doctor`: runs the checks of src/doctor against this host (and a parent, or a network's parent), prints
// the findings and exits 1 when one blocks use. The trees it reads are the host's own; MACNET_DOCTOR_ROOT (not in
// --help: for tests) puts sys, proc, etc, run and usr under another directory.
import * as os from 'node:os';
import * as path from 'node:path';
import { fail, MacnetError } from '../errors';
import { Kernel } from '../kernel';
import { IFNAME_MAX } from '../kernel/validate';
import {
  buildReport,
  defaultGateway,
  detectEnvironment,
  type DoctorContext,
  exitStatus,
  renderJson,
  renderText,
  runChecks,
} from '../doctor';
import { parseCommandArgs } from './args';
import { resolveNetwork } from './doctor-network';
import { dockerSocket } from './scan';

export const DOCTOR_HELP = `Usage: macnet doctor [--parent IF | --network NET] [--json] [--docker-host unix:///path]

Checks this host for what breaks macvlan and ipvlan networks before a container meets it: the link kinds
this kernel can make (each tried in a throwaway namespace), the hypervisor or cloud (from DMI) and the setting
its virtual switch needs, the parent (exists, up, carrier, taken by passthru or ipvlan; its kind: wireless,
bridge, bond, vlan; its MTU), the sysctls that break host access, a NetworkManager or systemd-networkd that
would manage macnet's links, and whether the LAN takes frames from a new MAC (with a parent: a throwaway
macvlan child and the parent ask the gateway by ARP and NDP, a few frames). Each finding is ok, warn or
blocking, with a fix. docs/doctor.md lists the checks and the --json schema.

Options:
  --parent IF              check this interface as a parent (name.vid: the vlan macnet would create on name)
  --network NET            check a macnet network's parent, gateway and kind, from the Docker Engine API
  --json                   the report as JSON (docs/doctor.md, "--json")
  --docker-host URL        the Docker Engine API for --network (default DOCKER_HOST, else unix:///var/run/docker.sock)

Exit status: 0 nothing blocks (every finding ok or warn); 1 a finding blocks, or the network cannot be looked
up; 2 the command line is wrong.
`;

export interface DoctorOptions {
  readonly parent: string | undefined;
  readonly network: string | undefined;
  readonly json: boolean;
  readonly dockerHost: string | undefined;
}

export function parseDoctorArgs(argv: string[]): DoctorOptions {
  const { values } = parseCommandArgs('doctor', argv, {
    parent: { type: 'string' },
    network: { type: 'string' },
    json: { type: 'boolean' },
    'docker-host': { type: 'string' },
  });
  const parent = values.parent;
  if (parent !== undefined && parent !== '' && values.network !== undefined)
    throw new MacnetError(
      'INVALID_ARGUMENT',
      'doctor: give --parent or --network, not both (a network names its own parent)',
      { command: 'doctor' },
    );
  // The kernel's rules for a name (kernel/validate.ts): checked here so that a typo is a command-line error.
  if (
    parent !== undefined &&
    (parent === '' || Buffer.byteLength(parent) > IFNAME_MAX || /[\s/:\0]/.test(parent) || /^\.\.?$/.test(parent))
  )
    throw fail('OPTION_INVALID', {
      option: 'parent',
      value: parent,
      valid: `give an interface name of 1 to ${IFNAME_MAX} bytes without spaces, NUL, '/' or ':'`,
    });
  if (values.network === '')
    throw fail('OPTION_INVALID', { option: 'network', value: '', valid: 'give a network name or id' });
  if (values['docker-host'] !== undefined) dockerSocket(values['docker-host']);
  return { parent, network: values.network, json: values.json ?? false, dockerHost: values['docker-host'] };
}

function roots(): Pick<DoctorContext, 'sysRoot' | 'procRoot' | 'etcRoot' | 'runRoot' | 'usrRoot'> {
  const root = process.env.MACNET_DOCTOR_ROOT || '/';
  const at = (d: string) => path.join(root, d);
  return { sysRoot: at('sys'), procRoot: at('proc'), etcRoot: at('etc'), runRoot: at('run'), usrRoot: at('usr') };
}

/**
 * The gateway of the parent's default route (IPv4 first), for the LAN checks when no network names one; none
 * when the parent has no such route or netlink cannot be read (the checks then say they had no gateway).
 */
async function parentGateway(parent: string): Promise<string | undefined> {
  try {
    return await Kernel.with(undefined, async (k) => {
      const link = await k.links.find(parent).catch(() => undefined);
      if (!link) return undefined;
      return (await defaultGateway(k, link, 4)) ?? (await defaultGateway(k, link, 6));
    });
  } catch {
    return undefined;
  }
}

export async function doctor(o: DoctorOptions): Promise<number> {
  const r = roots();
  const net = o.network === undefined ? undefined : await resolveNetwork(o.network, o.dockerHost);
  const parent = net?.parent ?? o.parent;
  const gateway = net ? net.gateway : parent !== undefined ? await parentGateway(parent) : undefined;
  const ctx: DoctorContext = {
    ...r,
    environment: detectEnvironment(r.sysRoot),
    ...(parent !== undefined ? { parent } : {}),
    ...(gateway !== undefined ? { gateway } : {}),
    ...(net ? { network: net.network } : {}),
  };
  const findings = await runChecks(ctx);
  const report = buildReport(ctx, findings, { name: os.hostname(), kernel: os.release() });
  process.stdout.write(o.json ? renderJson(report) : renderText(report));
  return exitStatus(report);
}
