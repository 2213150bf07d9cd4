// The driver's records in the store. Keys:
//   driver/networks/<networkId>             NetworkRecord
//   driver/endpoints/<networkId>/<endpointId> EndpointRecord
//   driver/parents/<ifname>                 ParentRecord (only parents macnet created: vlan, dummy, bridge)
//   driver/hostaccess/<parent>              HostAccessRecord (the host-side link of a parent, host-access.ts)
import { MacnetError } from '../errors';
import type { Store, TxnOp } from '../store/types';
import type { IpvlanMode } from '../kernel';
import type { DriverKind, NetworkConfig } from './network-config';
import { decodeRecord, encodeRecord } from '../store/records';

export interface NetworkRecord {
  readonly config: NetworkConfig;
  /** 'creating' until the kernel work is done; a restart tears down networks still 'creating'. */
  readonly state: 'creating' | 'ready';
}

export interface EndpointRecord {
  readonly networkId: string;
  readonly endpointId: string;
  /** The link's name in the host namespace (before Docker moves and renames it). */
  readonly linkName: string;
  /** Undefined for ipvlan (children share the parent's MAC) and passthru without --mac-address. */
  readonly mac?: string;
  readonly ipv4?: string;
  readonly ipv6?: string;
  readonly sandboxKey?: string;
  /** Join's interface prefix, from `--driver-opt com.docker.network.endpoint.ifname` (see ifnamePrefix). */
  readonly dstPrefix?: string;
}

export interface ParentRecord {
  readonly name: string;
  readonly kind: 'vlan' | 'dummy' | 'bridge';
  readonly vlan?: { readonly base: string; readonly id: number };
  /** Networks using it; the link goes with the last one. */
  readonly networks: readonly string[];
}

export interface HostAccessRecord {
  readonly parent: string;
  /** The host-side link on the parent ("mnh" + 10 hex). */
  readonly link: string;
  readonly kind: DriverKind;
  /** ipvlan: the network's mode (the kernel keeps one ipvlan mode per parent; a child in another would change it). */
  readonly ipvlanMode?: IpvlanMode;
  /**
   * The networks with host access on this parent and the host's addresses (plain IPs) on each; the link goes with
   * the last.
   */
  readonly networks: Readonly<Record<string, readonly string[]>>;
}

export const networkKey = (id: string) => `driver/networks/${id}`;
export const endpointKey = (nid: string, eid: string) => `driver/endpoints/${nid}/${eid}`;
export const parentKey = (name: string) => `driver/parents/${name}`;
export const hostAccessKey = (parent: string) => `driver/hostaccess/${parent}`;

const parse = <T>(key: string, value: string): T => decodeRecord<T>(key, value, 'driver state');

export class DriverState {
  constructor(readonly store: Store) {}

  async network(id: string): Promise<NetworkRecord | undefined> {
    const e = await this.store.get(networkKey(id));
    return e && parse<NetworkRecord>(e.key, e.value);
  }

  async networks(): Promise<NetworkRecord[]> {
    return (await this.store.list('driver/networks/')).map((e) => parse<NetworkRecord>(e.key, e.value));
  }

  async endpoint(nid: string, eid: string): Promise<EndpointRecord | undefined> {
    const e = await this.store.get(endpointKey(nid, eid));
    return e && parse<EndpointRecord>(e.key, e.value);
  }

  async endpoints(nid?: string): Promise<EndpointRecord[]> {
    return (await this.store.list(nid ? `driver/endpoints/${nid}/` : 'driver/endpoints/')).map((e) =>
      parse<EndpointRecord>(e.key, e.value),
    );
  }

  async parent(name: string): Promise<{ record: ParentRecord; revision: number } | undefined> {
    const e = await this.store.get(parentKey(name));
    return e && { record: parse<ParentRecord>(e.key, e.value), revision: e.revision };
  }

  async parents(): Promise<ParentRecord[]> {
    return (await this.store.list('driver/parents/')).map((e) => parse<ParentRecord>(e.key, e.value));
  }

  async hostAccess(parent: string): Promise<HostAccessRecord | undefined> {
    const e = await this.store.get(hostAccessKey(parent));
    return e && parse<HostAccessRecord>(e.key, e.value);
  }

  async hostAccesses(): Promise<HostAccessRecord[]> {
    return (await this.store.list('driver/hostaccess/')).map((e) => parse<HostAccessRecord>(e.key, e.value));
  }

  // Single writes, for steps that need no transaction (undo and teardown, each idempotent when retried).
  async putEndpoint(rec: EndpointRecord): Promise<void> {
    await this.store.put(endpointKey(rec.networkId, rec.endpointId), encodeRecord(rec));
  }

  async deleteEndpoint(nid: string, eid: string): Promise<void> {
    await this.store.delete(endpointKey(nid, eid));
  }

  async deleteNetwork(id: string): Promise<void> {
    await this.store.delete(networkKey(id));
  }

  async putParent(rec: ParentRecord): Promise<void> {
    await this.store.put(parentKey(rec.name), encodeRecord(rec));
  }

  async deleteParent(name: string): Promise<void> {
    await this.store.delete(parentKey(name));
  }

  async deleteHostAccess(parent: string): Promise<void> {
    await this.store.delete(hostAccessKey(parent));
  }

  /**
   * Applies ops atomically; a lost race is a STORE_ERROR (callers hold the driver lock, so it means another
   * writer).
   */
  async commit(what: string, ops: TxnOp[]): Promise<void> {
    if (!(await this.store.txn(ops))) {
      throw new MacnetError(
        'STORE_ERROR',
        `${what}: the state changed underneath (another writer?); nothing was changed, retry`,
        {},
      );
    }
  }
}

export const putJson = (key: string, value: unknown): TxnOp => ({ op: 'put', key, value: encodeRecord(value) });
