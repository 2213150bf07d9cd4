// Routes: device routes, gateway routes, onlink, metric, tables.
import { fail, MacnetError } from '../errors';
import { type Family, ipFamily, parseCidr } from '../types/address';
import { kernelError } from './errors';
import { describeLink, type LinkRef, type Links } from './links';
import * as C from './nl/constants';
import { decodeRoute, encodeRoute, encodeRouteDumpFilter, type Route, type RouteScope } from './nl/route-codec';
import type { NetlinkSocket } from './nl/socket';

export interface RouteInput {
  /** "default", "default6" is not a thing: give `family` with "default"; or a CIDR. */
  dst: string;
  family?: Family;
  gateway?: string;
  dev?: LinkRef;
  metric?: number;
  table?: number;
  onlink?: boolean;
  scope?: RouteScope;
  prefsrc?: string;
}

export class Routes {
  constructor(
    private readonly sock: NetlinkSocket,
    private readonly links: Links,
  ) {}

  /** Routes of the main table (or `table`), optionally of one family. */
  async list(filter: { family?: Family; table?: number } = {}): Promise<Route[]> {
    const r = await this.sock.request(C.RTM_GETROUTE, C.NLM_F_DUMP, encodeRouteDumpFilter(filter.family ?? 0));
    if (r.ack?.errno) throw kernelError('list routes', r.ack.errno, r.ack.extack);
    const table = filter.table ?? C.RT_TABLE_MAIN;
    return r.messages
      .filter((m) => m.type === C.RTM_NEWROUTE)
      .map((m) => decodeRoute(m.body))
      .filter((x) => x.table === table && (filter.family === undefined || x.family === filter.family));
  }

  private async encode(input: RouteInput, op: string) {
    let family: Family | undefined = input.family;
    let dst = { address: '0.0.0.0', prefix: 0 };
    if (input.dst !== 'default') {
      try {
        const c = parseCidr(input.dst);
        dst = { address: c.address, prefix: c.prefix };
        family = c.family;
      } catch {
        throw fail('INVALID_ARGUMENT', {
          what: 'route destination',
          value: input.dst,
          valid: 'use "default" or a CIDR such as 198.18.15.0/24',
          details: { option: 'dst', value: input.dst },
        });
      }
    }
    if (input.gateway !== undefined) {
      const gf = ipFamily(input.gateway);
      if (!gf || (family !== undefined && gf !== family)) {
        throw fail('INVALID_ARGUMENT', {
          what: 'route gateway',
          value: input.gateway,
          valid: `use an IPv${family ?? 4} address`,
          details: { option: 'gateway', value: input.gateway },
        });
      }
      family = gf;
    }
    family ??= 4;
    if (input.dst === 'default') dst = { address: family === 4 ? '0.0.0.0' : '::', prefix: 0 };
    if (input.gateway === undefined && input.dev === undefined) {
      throw new MacnetError('INVALID_ARGUMENT', `route to ${input.dst}: give a gateway, a device, or both`, {
        option: 'route',
      });
    }
    const oif =
      input.dev === undefined
        ? undefined
        : typeof input.dev === 'number'
          ? input.dev
          : (await this.links.get(input.dev, op)).index;
    return encodeRoute({
      family,
      dst,
      ...(input.gateway !== undefined && { gateway: input.gateway }),
      ...(oif !== undefined && { oif }),
      ...(input.metric !== undefined && { metric: input.metric }),
      ...(input.table !== undefined && { table: input.table }),
      ...(input.onlink !== undefined && { onlink: input.onlink }),
      ...(input.scope !== undefined && { scope: input.scope }),
      ...(input.prefsrc !== undefined && { prefsrc: input.prefsrc }),
    });
  }

  private describe(input: RouteInput): string {
    return (
      `route ${input.dst}${input.gateway ? ` via ${input.gateway}` : ''}` +
      `${input.dev !== undefined ? ` dev ${describeLink(input.dev)}` : ''}` +
      `${input.metric !== undefined ? ` metric ${input.metric}` : ''}`
    );
  }

  async add(input: RouteInput): Promise<void> {
    const op = `add ${this.describe(input)}`;
    const { fixed, attrs } = await this.encode(input, op);
    const r = await this.sock.request(C.RTM_NEWROUTE, C.NLM_F_CREATE | C.NLM_F_EXCL, fixed, attrs);
    if (r.ack?.errno) throw kernelError(op, r.ack.errno, r.ack.extack);
  }

  async delete(input: RouteInput): Promise<void> {
    const op = `delete ${this.describe(input)}`;
    const { fixed, attrs } = await this.encode(input, op);
    // The kernel matches scope only when it is not RT_SCOPE_NOWHERE; leave it open for deletes.
    fixed.writeUInt8(255, 6);
    const r = await this.sock.request(C.RTM_DELROUTE, 0, fixed, attrs);
    if (r.ack?.errno) throw kernelError(op, r.ack.errno, r.ack.extack);
  }

  /** Idempotent delete: a route that is not there (ESRCH) is success. Returns whether it existed. */
  async deleteIfExists(input: RouteInput): Promise<boolean> {
    try {
      await this.delete(input);
      return true;
    } catch (e) {
      if ((e as { errno?: string }).errno === 'ESRCH') return false;
      throw e;
    }
  }
}
