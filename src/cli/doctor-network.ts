// `macnet doctor --network NET`: the network's parent, gateway and kind, from the Docker Engine API. Docker's
// inspect has the -o options and the IPAM config the plugin was given at CreateNetwork; they are parsed here by
// the driver's own parser, so that doctor reads a network exactly as the daemon does (implicit and base.vid
// parents, mtu, kind).
import * as fs from 'node:fs';
import { EngineApi } from '../docker/engine';
import { parseNetworkRequest, type IpData } from '../drivers/config';
import { endpointLinkName } from '../drivers/endpoint';
import { kindOf } from '../drivers/kinds';
import { fail, MacnetError } from '../errors';
import type { DoctorNetwork } from '../doctor';
import { dockerSocket } from './scan';

/** The parts of GET /networks/{id} doctor reads. */
interface NetworkInspect {
  readonly Id: string;
  readonly Name: string;
  readonly Driver: string;
  readonly Options?: Record<string, string> | null;
  readonly IPAM?: { readonly Config?: readonly { Subnet?: string; Gateway?: string }[] | null };
  /** The attached containers, by container id (running ones: Docker lists only endpoints that joined). */
  readonly Containers?: Record<string, { readonly EndpointID?: string }> | null;
}

/** The parts of GET /containers/{id}/json that find a container's network namespace. */
interface ContainerInspect {
  readonly State?: { readonly Pid?: number };
  readonly NetworkSettings?: { readonly SandboxKey?: string };
}

const inodeOf = (p: string): number | undefined => {
  try {
    return fs.statSync(p).ino;
  } catch {
    return undefined; // not visible from here (another mount namespace), or gone meanwhile
  }
};

/**
 * What ties links to the network (DoctorNetwork.own): its containers' namespaces (the sandbox Docker names, else
 * the container's first process's) and its endpoints' link names, for the links still in the host's namespace.
 */
async function ownLinks(api: EngineApi, n: NetworkInspect): Promise<NonNullable<DoctorNetwork['own']>> {
  const netns: number[] = [];
  const links: string[] = [];
  for (const [id, c] of Object.entries(n.Containers ?? {})) {
    if (c.EndpointID) links.push(endpointLinkName(c.EndpointID));
    const ci = await api.get<ContainerInspect>(`/containers/${encodeURIComponent(id)}/json`).catch(() => undefined);
    const key = ci?.NetworkSettings?.SandboxKey;
    const pid = ci?.State?.Pid;
    const ino = (key ? inodeOf(key) : undefined) ?? (pid ? inodeOf(`/proc/${pid}/ns/net`) : undefined);
    if (ino !== undefined) netns.push(ino);
  }
  return { netns, links };
}

export interface ResolvedNetwork {
  readonly network: DoctorNetwork;
  readonly parent: string;
  readonly gateway?: string;
}

/**
 * A macnet network's driver name: `macnet`, or a managed plugin's (`[registry/]user/macnet-plugin:tag`): its last
 * path part names macnet.
 */
export const isMacnetDriver = (driver: string): boolean => /macnet/.test(driver.split('/').pop()!.split(':')[0]!);

export async function resolveNetwork(name: string, dockerHost: string | undefined): Promise<ResolvedNetwork> {
  const sock = dockerSocket(dockerHost);
  const api = new EngineApi(sock);
  let n: NetworkInspect | undefined;
  try {
    n = await api.get<NetworkInspect>(`/networks/${encodeURIComponent(name)}`);
  } catch (e) {
    throw new MacnetError(
      'DOCKER_UNREACHABLE',
      `doctor: cannot look up network ${JSON.stringify(name)} through the Docker Engine API at unix://${sock} ` +
        `(${(e as Error).message}); give --docker-host, or --parent instead of --network`,
      { socket: sock },
      e,
    );
  }
  if (n === undefined) throw fail('NETWORK_NOT_FOUND', { call: 'doctor', network: name, docker: sock });
  if (!isMacnetDriver(n.Driver))
    throw fail('OPTION_INVALID', {
      option: 'network',
      value: name,
      valid:
        `it is a network of driver ${JSON.stringify(n.Driver)}, not macnet; give a macnet network ` +
        '(docker network ls --filter driver=macnet), or --parent to check an interface',
    });
  const data = (family: 4 | 6): IpData[] =>
    (n.IPAM?.Config ?? [])
      .filter((c) => c.Subnet !== undefined && c.Subnet.includes(':') === (family === 6))
      .map((c) => ({ Pool: c.Subnet, ...(c.Gateway ? { Gateway: c.Gateway } : {}) }));
  const config = parseNetworkRequest({
    NetworkID: n.Id,
    Options: { 'com.docker.network.generic': n.Options ?? {} },
    IPv4Data: data(4),
    IPv6Data: data(6),
  });
  const gateway = [4, 6].map((f) => config.subnets.find((s) => s.family === f && s.gateway)?.gateway).find(Boolean);
  return {
    network: {
      name: n.Name,
      id: n.Id,
      kind: config.kind,
      ownMacs: kindOf(config).macSource(config) === 'own',
      ipv6: config.subnets.some((s) => s.family === 6),
      ...(config.mtu !== undefined ? { mtu: config.mtu } : {}),
      own: await ownLinks(api, n),
    },
    parent: config.parent.name,
    ...(gateway !== undefined ? { gateway } : {}),
  };
}
