// The layout of the keys in the state (which keys exist and what their values hold), versioned: the key
// meta/schema holds the version of the layout the state is in. A state without it was written by macnet
// v0.1.0 (version 0). Opening a state migrates it, one step per version, each step one transaction with the new
// version in it; a state newer than this code knows is refused before anything in it is read or written.
//
// Every later change of keys (a key renamed, a value's shape changed, a key no longer read) comes with a step
// here and a bump of SCHEMA_VERSION, exercised by the v0.1.0 fixture (test/fixtures/README.md). A step works on
// keys as text, never through the owners' key functions (src/ipam/keys.ts, src/drivers/state.ts): it migrates
// the layout as it was at its version, which must not change when the owners' code does.
//
// The SQLite file has a version of its own, meta.schema in the database (src/store/sqlite.ts): the tables, not
// the keys. Both are checked at open.
import { MacnetError } from '../errors';
import type { Store, TxnOp } from './types';

export const SCHEMA_KEY = 'meta/schema';
/** The key layout this code reads and writes. */
export const SCHEMA_VERSION = 2;

interface Step {
  /** The version the step produces (from the one before). */
  readonly to: number;
  readonly what: string;
  ops(store: Store): Promise<TxnOp[]>;
}

const STEPS: readonly Step[] = [
  {
    to: 1,
    what: 'v0.1.0 layout: next-fit cursors (ipam/cursors/...) are no longer read; deleted',
    ops: async (store) =>
      (await store.list('ipam/cursors/')).map((e) => ({ op: 'delete', key: e.key, revision: e.revision })),
  },
  {
    to: 2,
    what: 'DHCP leases belong to the LAN layer: ipam/leases/... moved to lan/leases/...',
    ops: async (store) =>
      (await store.list('ipam/leases/')).flatMap((e): TxnOp[] => [
        { op: 'create', key: `lan/leases/${e.key.slice('ipam/leases/'.length)}`, value: e.value },
        { op: 'delete', key: e.key, revision: e.revision },
      ]),
  },
];

export interface Migrated {
  readonly from: number;
  readonly to: number;
  /** What each step did, in order (empty when the state was current or new). */
  readonly steps: readonly string[];
}

/** The state's layout version: 0 when the key is absent (v0.1.0, or a new state). */
export async function schemaVersion(store: Store, where: string): Promise<number> {
  const e = await store.get(SCHEMA_KEY);
  if (!e) return 0;
  const v = Number(e.value);
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new MacnetError(
      'STORE_ERROR',
      `${where}: ${SCHEMA_KEY} is ${JSON.stringify(e.value.slice(0, 40))}, not a version number: the state ` +
        'was changed by something other than macnet; restore it from a backup',
      { key: SCHEMA_KEY },
    );
  }
  return v;
}

/** Refuses (STATE_TOO_NEW) a state whose layout is newer than this code's; returns its version otherwise. */
export async function assertKnownSchema(store: Store, where: string): Promise<number> {
  const v = await schemaVersion(store, where);
  if (v > SCHEMA_VERSION) throw tooNew(where, `key layout version ${v}`, `${SCHEMA_VERSION}`);
  return v;
}

export function tooNew(where: string, what: string, known: string): MacnetError {
  return new MacnetError(
    'STATE_TOO_NEW',
    `${where}: the state was written by a newer macnet (${what}; this macnet knows up to ${known}): ` +
      'nothing was changed; run the newer macnet, or restore the state this version wrote (a backup)',
    { path: where },
  );
}

/**
 * Brings the state to SCHEMA_VERSION: refuses a newer one (STATE_TOO_NEW) before touching anything, runs the
 * steps from its version on, each with the version bump in its own transaction (a crash between steps resumes
 * at the next open). A new, empty state gets the version at once.
 */
export async function migrate(store: Store, where: string): Promise<Migrated> {
  const from = await assertKnownSchema(store, where);
  const steps: string[] = [];
  let version = from;
  if (version === 0 && (await store.list('')).length === 0) {
    await setVersion(store, where, SCHEMA_VERSION, []);
    return { from: SCHEMA_VERSION, to: SCHEMA_VERSION, steps };
  }
  for (const step of STEPS) {
    if (step.to <= version) continue;
    await setVersion(store, where, step.to, await step.ops(store));
    steps.push(step.what);
    version = step.to;
  }
  return { from, to: version, steps };
}

async function setVersion(store: Store, where: string, to: number, ops: TxnOp[]): Promise<void> {
  const cur = await store.get(SCHEMA_KEY);
  const bump: TxnOp = cur
    ? { op: 'update', key: SCHEMA_KEY, value: String(to), revision: cur.revision }
    : { op: 'create', key: SCHEMA_KEY, value: String(to) };
  if (!(await store.txn([...ops, bump]))) {
    // Hosts that share one cluster store start together: another one's migration to the same version (or a
    // new state's first version) is as good as ours.
    if ((await schemaVersion(store, where)) >= to) return;
    throw new MacnetError(
      'STORE_ERROR',
      `${where}: migrating the state to version ${to}: the state changed underneath (another process?); ` +
        'nothing was changed: stop the other process and start again',
      { key: SCHEMA_KEY },
    );
  }
}
