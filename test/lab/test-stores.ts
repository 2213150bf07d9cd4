// Both real stores for the tests that are about IPAM behaviour, not about one store (issue 19): SQLite (the
// single host's) and etcd (the cluster's), each opened as the daemon opens it, by src/cli/store-open.ts: the state
// dir's SQLite file, and with --store etcd the same file for the host's own records plus an EtcdStore on a prefix,
// and the host id the daemon hands its Ipam.
//
// One etcd member serves the whole test file: each store a test opens gets a key prefix of its own, so every test
// starts on an empty etcd. The member runs inside a network namespace of the file's own (./etcd-netns.ts): the
// file re-runs itself there, SQLite tests included, and nothing of the root namespace is touched.
import { after, before, describe } from 'node:test';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openStore, parseStoreOptions, type OpenedStore, type StoreChoice } from '../../src/cli/store-open';
import type { IpamOptions } from '../../src/ipam/ipam';
import type { Store } from '../../src/store/types';
import { EtcdCluster, NETNS_ENV } from './etcd';
import { inOwnNetns } from './etcd-netns';

export const STORES = ['sqlite', 'etcd'] as const;
export type StoreKind = (typeof STORES)[number];

/** The member's address on the namespace's lo: every file has a namespace of its own, so one address serves all. */
const ADDR = '198.18.19.1';

/** The directory of the state dirs and the member's data, from the outer run to the inner one. */
const DIR_ENV = 'MACNET_TEST_STORES_DIR';

/** A state as one daemon opened it: the shared store (its IPAM's), its own (driver, leases) and its host id. */
export interface TestState {
  readonly kind: StoreKind;
  /** The IPAM's store: etcd's prefix, or the SQLite file. */
  readonly store: Store;
  /** This host's own records (DHCP leases, the driver's): always the state dir's SQLite file. */
  readonly local: Store;
  /**
   * The host id the daemon hands its Ipam with etcd (none with SQLite). With it, a host's dynamic search starts at
   * a point of the range of its own (docs/ipam.md, src/ipam/spread.ts), so a test that asserts the single writer's
   * lowest-free order gives its Ipam none: the order is the host id's doing, not the store's.
   */
  readonly host: Pick<IpamOptions, 'host'>;
  /** The daemon restarted: this state closed, and opened again from the same state dir (and prefix). */
  reopen(): Promise<TestState>;
  /**
   * Another host on the same shared state: with etcd a daemon with a state dir and host id of its own on the same
   * prefix; with SQLite (one host only) another Ipam on this very store, as two Ipams on one file.
   */
  peer(): Promise<TestState>;
  close(): Promise<void>;
}

export interface TestStores {
  /** A fresh, empty state of this kind; closed after the file's tests if the test does not close it. */
  open(kind: StoreKind): Promise<TestState>;
}

/**
 * Runs `body` once per store kind, each in a describe() named for it, inside this file's network namespace with
 * one etcd member; outside the namespace registers the test that re-runs `file` there (and nothing else).
 */
export function eachStore(label: string, file: string, body: (kind: StoreKind, stores: TestStores) => void): void {
  if (process.env[NETNS_ENV] === undefined) {
    // Made by the outer run and removed by it, so that an inner run killed at its time limit leaves nothing.
    const outer = fs.mkdtempSync(path.join(os.tmpdir(), 'macnet-stores-'));
    process.env[DIR_ENV] = outer;
    after(() => fs.rmSync(outer, { recursive: true, force: true }));
  }
  if (!inOwnNetns(label, file, [ADDR])) return;
  const dir = process.env[DIR_ENV]!;
  let cluster: EtcdCluster | undefined;
  const opened = new Set<OpenedStore>();
  let seq = 0;
  before(async () => {
    cluster = await EtcdCluster.start({ members: 1, parentDir: dir });
  });
  after(async () => {
    for (const o of opened) await o.close().catch(() => undefined);
    await cluster?.close();
  });

  /** The options as the daemon parses them from its command line (--etcd-prefix checked the daemon's way). */
  const choice = (kind: StoreKind, prefix: string): StoreChoice =>
    kind === 'sqlite'
      ? parseStoreOptions({})
      : parseStoreOptions({ store: 'etcd', 'etcd-endpoints': cluster!.endpoints.join(','), 'etcd-prefix': prefix });

  const state = async (kind: StoreKind, prefix: string, stateDir: string): Promise<TestState> => {
    const o = await openStore(choice(kind, prefix), stateDir);
    opened.add(o);
    const s: TestState = {
      kind,
      store: o.shared,
      local: o.local,
      host: o.host === undefined ? {} : { host: o.host },
      reopen: async () => {
        await s.close();
        return state(kind, prefix, stateDir);
      },
      peer: async () => (kind === 'sqlite' ? { ...s, close: async () => undefined } : state(kind, prefix, newDir())),
      close: async () => {
        opened.delete(o);
        await o.close();
      },
    };
    return s;
  };
  const newDir = () => fs.mkdtempSync(path.join(dir, 'state-'));
  const stores: TestStores = { open: (kind) => state(kind, `t${seq++}/`, newDir()) };

  for (const kind of STORES) describe(`on ${kind}`, () => body(kind, stores));
}

/**
 * Registers `body`'s tests in the outer run only (not again inside the namespace): tests that inject faults
 * through a MemoryStore of their own are about that fake, and run once.
 */
export function memoryStoreOnly(body: () => void): void {
  if (process.env[NETNS_ENV] === undefined) body();
}
