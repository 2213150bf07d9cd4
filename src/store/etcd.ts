// The cluster store: the Store interface on etcd v3 (issue 19), through Microsoft's etcd3 client (pure JS over
// @grpc/grpc-js). Hosts that share one etcd (and one prefix) share one state.
//
// Mapping: every key lives under `prefix` (default "macnet/"), so one etcd can serve other users; an entry's
// revision is etcd's mod_revision (global, never reused, one per transaction, as the contract wants). create
// is a transaction comparing create_revision to 0, update one comparing mod_revision, txn one etcd transaction
// (etcd-txn.ts folds the ops into compares and one write per key). list is a range over the prefix; etcd orders
// keys by their bytes, and UTF-8 byte order is code point order, which is the contract's order (memory.ts,
// compareKeys), so no sorting is needed here.
//
// Failures: every operation has one deadline, requestTimeoutMs from its start (default 2000 ms), a read, and a write
// that can be verified (etcd-verify.ts), a third of it per attempt. Key-value calls go to the leader when it answers
// this host (etcd-leader.ts), else to all the members. A member that cannot be reached is skipped for a second (a
// breaker per member) and the call goes to another one; a cluster without quorum answers nothing (linearizable
// reads and writes wait for a leader), so the deadline ends the call: STORE_UNAVAILABLE naming the endpoints, no
// local fallback. The next operation tries again: no reopening is needed when the members are back.
import type { Etcd3 } from 'etcd3';
import { isBrokenCircuitError } from 'cockatiel';
import { connect } from './etcd-client';
import { LeaderRoute } from './etcd-leader';
import { type EtcdFacts, fail, MacnetError } from '../errors';
import { planTxn } from './etcd-txn';
import { createdValues, judge, unconfirmedError } from './etcd-verify';
import { SCHEMA_KEY } from './schema';
import { classify, describe } from './etcd-errors';
import type { Entry, Store, StoreWatch, TxnOp, WatchHandlers } from './types';
import { watchPrefix } from './etcd-watch';
import { ATTEMPT_PARTS, DEFAULT_PREFIX, DEFAULT_REQUEST_TIMEOUT_MS, type EtcdOptions } from './etcd-options';

export { DEFAULT_PREFIX, DEFAULT_REQUEST_TIMEOUT_MS, type EtcdOptions } from './etcd-options';

/**
 * An etcd lease, kept alive by the client (a keepalive every third of the TTL) until revoked: the base of a
 * host's liveness record (issue 19). Keys written with putLeased() vanish when it expires or is revoked.
 */
export interface StoreLease {
  /** etcd's lease ID, in decimal (as etcdctl shows it in hex). */
  readonly id: string;
  /** `fn` runs once if etcd let the lease expire: keepalives did not reach a quorum within the TTL. */
  onLost(fn: (reason: string) => void): void;
  /** Ends the lease now; its keys are deleted. */
  revoke(): Promise<void>;
}

const RETRY_STEP_MS = 50;
/** Keys per range page: keeps each response well under gRPC's 4 MiB default message limit. */
const PAGE = 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The first key after every key that starts with `prefix`, in byte order; empty means "to the end". */
function rangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

export class EtcdStore implements Store {
  private closed = false;
  private readonly watches = new Set<StoreWatch>();
  private readonly prefix: Buffer;
  readonly timeoutMs: number;
  readonly endpoints: readonly string[];

  private constructor(
    private readonly client: Etcd3,
    private readonly route: LeaderRoute,
    opts: EtcdOptions,
  ) {
    this.prefix = Buffer.from(opts.prefix ?? DEFAULT_PREFIX, 'utf8');
    this.timeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.endpoints = opts.endpoints;
  }

  /** Connects and reads once, so that a wrong endpoint, certificate or password fails here and not later. */
  static async open(opts: EtcdOptions): Promise<EtcdStore> {
    if (opts.endpoints.length === 0)
      throw new MacnetError('INVALID_ARGUMENT', 'etcd store: no endpoints given (--etcd-endpoints URL[,URL...])', {});
    const client = connect(opts, opts.endpoints);
    const timeout = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const route = new LeaderRoute(client, opts.endpoints, (e) => connect(opts, [e]), timeout);
    const store = new EtcdStore(client, route, opts);
    try {
      await store.get(SCHEMA_KEY);
      route.start();
    } catch (e) {
      route.close();
      client.close();
      throw e;
    }
    return store;
  }

  private key(k: string): Buffer {
    return Buffer.concat([this.prefix, Buffer.from(k, 'utf8')]);
  }

  async get(key: string): Promise<Entry | undefined> {
    const res = await this.run('get', key, true, (o, c) => c.kv.range({ key: this.key(key) }, o));
    const kv = res.kvs[0];
    return kv && { key, value: kv.value.toString('utf8'), revision: Number(kv.mod_revision) };
  }

  async list(prefix: string): Promise<Entry[]> {
    return this.run('list', prefix, true, async (o, c) => {
      const from = this.key(prefix);
      const end = rangeEnd(from);
      const out: Entry[] = [];
      let key = from;
      let revision: string | undefined;
      // Pages of one snapshot: the revision of the first page pins the others.
      for (;;) {
        const res = await c.kv.range({ key, range_end: end, limit: PAGE, revision }, o);
        revision ??= res.header.revision;
        for (const kv of res.kvs)
          out.push({
            key: kv.key.subarray(this.prefix.length).toString('utf8'),
            value: kv.value.toString('utf8'),
            revision: Number(kv.mod_revision),
          });
        if (!res.more || res.kvs.length === 0) return out;
        key = Buffer.concat([res.kvs[res.kvs.length - 1]!.key, Buffer.from([0])]);
      }
    });
  }

  async create(key: string, value: string): Promise<boolean> {
    return this.write('create', key, [{ op: 'create', key, value }]);
  }

  async update(key: string, value: string, revision: number): Promise<boolean> {
    return this.write('update', key, [{ op: 'update', key, value, revision }]);
  }

  async put(key: string, value: string): Promise<void> {
    await this.write('put', key, [{ op: 'put', key, value }]);
  }

  async delete(key: string, revision?: number): Promise<boolean> {
    if (this.closed) throw this.closedError('delete', key);
    const plan = planTxn([revision === undefined ? { op: 'delete', key } : { op: 'delete', key, revision }]);
    if (!plan.possible) return false;
    const res = await this.send('delete', key, plan);
    return res.succeeded && Number(res.responses[0]?.response_delete_range?.deleted ?? 0) > 0;
  }

  async txn(ops: readonly TxnOp[]): Promise<boolean> {
    return this.write('txn', ops.length === 1 ? ops[0]!.key : `${ops.length} operations`, ops);
  }

  /** Grants a lease of `ttlSeconds`, failing like any operation (STORE_UNAVAILABLE) within the bound. */
  async lease(ttlSeconds: number): Promise<StoreLease> {
    if (this.closed) throw this.closedError('lease');
    const what = `${ttlSeconds} s`;
    // Granted once, not retried: a grant sent twice would leave a second lease behind (until its TTL ends).
    const lease = this.client.lease(ttlSeconds, { deadline: Date.now() + this.timeoutMs });
    const id = await this.run('lease', what, false, () => lease.grant()).catch((e: unknown) => {
      lease.release();
      throw e;
    });
    return {
      id,
      onLost: (fn) => lease.once('lost', (e: Error) => fn(e.message)),
      revoke: () => this.run('revoke lease', id, true, (o) => lease.revoke(o)),
    };
  }

  /** An unconditional write owned by `lease`: etcd deletes the key when the lease ends. */
  async putLeased(key: string, value: string, lease: StoreLease): Promise<void> {
    if (this.closed) throw this.closedError('put', key);
    const put = { key: this.key(key), value: Buffer.from(value, 'utf8'), lease: lease.id };
    await this.run('put', key, false, (o, c) => c.kv.put(put, o));
  }

  /** Writes are durable when they resolve: etcd answers after a quorum of members has the entry on disk. */
  async sync(): Promise<void> {
    if (this.closed) throw this.closedError('sync');
  }

  /** Follows writes under `prefix` from every host (etcd-watch.ts); resolves within the store's deadline. */
  async watch(prefix: string, handlers: WatchHandlers): Promise<StoreWatch> {
    if (this.closed) throw this.closedError('watch', prefix);
    const w = await watchPrefix(this.client, this.key(prefix), this.prefix.length, handlers, this.timeoutMs);
    this.watches.add(w);
    return {
      close: async () => {
        this.watches.delete(w);
        await w.close();
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // A watcher's stream would keep the client (and the process) alive.
    await Promise.all([...this.watches].map((w) => w.close()));
    this.watches.clear();
    this.route.close();
    this.client.close();
  }

  private async write(op: string, what: string, ops: readonly TxnOp[]): Promise<boolean> {
    if (this.closed) throw this.closedError(op, what);
    const plan = planTxn(ops);
    if (!plan.possible) return false;
    if (plan.writes.size === 0 && plan.compares.length === 0) return true;
    // The whole write, verification and a second send included, within twice the request deadline (etcd-verify.ts).
    const until = Date.now() + 2 * this.timeoutMs;
    const created = createdValues(plan);
    // A write whose creates tell what became of it waits a part of the deadline per send, as a read: one sent to a
    // member that drops packets (cut off from this host) is then verified and sent again in time.
    const parted = created.size > 0;
    let error: unknown;
    try {
      return (await this.send(op, what, plan, undefined, parted)).succeeded;
    } catch (e) {
      error = e;
    }
    // What etcd holds for the created keys now; undefined when it cannot be read in time.
    const verdict = async () => {
      const held = await this.readKeys([...created.keys()], until).catch(() => undefined);
      return held && judge(created, held);
    };
    while (unconfirmedError(error) && parted && Date.now() < until) {
      const v0 = await verdict();
      if (v0 === 'applied') return true;
      if (v0 === 'refused') return false;
      if (v0 !== 'not-applied') break;
      try {
        if ((await this.send(op, what, plan, until, true)).succeeded) return true;
        // Refused: the first send may have been applied after the read all the same (a proposal still on its
        // way to the leader), and then its creates hold our values. Neither ours nor another's: cannot tell.
        const v = await verdict();
        if (v === 'applied') return true;
        if (v === 'refused' || v === 'not-applied') return false;
        break;
      } catch (e) {
        error = e;
      }
    }
    throw error;
  }

  /** The values of `keys` now (a linearizable read each, at once), all by `until`. */
  private async readKeys(keys: readonly string[], until: number): Promise<Map<string, string | undefined>> {
    const got = await Promise.all(
      keys.map((k) =>
        this.run('get', k, true, (o, c) => c.kv.range({ key: this.key(k) }, o), until).then(
          (r) => [k, r.kvs[0]?.value.toString('utf8')] as const,
        ),
      ),
    );
    return new Map(got);
  }

  private send(op: string, what: string, plan: ReturnType<typeof planTxn>, until?: number, parted = false) {
    const compare = plan.compares.map((c) =>
      c.target === 'create'
        ? { key: this.key(c.key), target: 'Create' as const, result: 'Equal' as const, create_revision: 0 }
        : { key: this.key(c.key), target: 'Mod' as const, result: 'Equal' as const, mod_revision: c.revision },
    );
    const success = [...plan.writes].map(([k, v]) =>
      v === null
        ? { request_delete_range: { key: this.key(k) } }
        : { request_put: { key: this.key(k), value: Buffer.from(v, 'utf8') } },
    );
    return this.run(op, what, false, (o, c) => c.kv.txn({ compare, success }, o), until, parted);
  }

  /**
   * Runs `call` until it succeeds or the operation's deadline passes. A read is tried again after any failure a
   * member may recover from; a write only when it was certainly not sent (etcd-errors.ts).
   */
  private async run<T>(
    op: string,
    what: string,
    idempotent: boolean,
    /** `c`: the client to use, the leader's or the pool (etcd-leader.ts). */
    call: (o: { deadline: number }, c: Etcd3) => Promise<T>,
    /** Another end than the request deadline from now (a write's verification, etcd-verify.ts). */
    until?: number,
    /** Each attempt gets a part of the deadline (ATTEMPT_PARTS): a read, or a write that can be verified. */
    parted = idempotent,
  ): Promise<T> {
    const deadline = until ?? Date.now() + this.timeoutMs;
    let cause: unknown; // a member's own error, not "circuit open", which only says that a member failed before
    for (;;) {
      if (this.closed) throw this.closedError(op, what);
      const c = this.route.kv();
      try {
        return await call(
          { deadline: parted ? Math.min(deadline, Date.now() + this.timeoutMs / ATTEMPT_PARTS) : deadline },
          c,
        );
      } catch (e) {
        if (this.closed) throw this.closedError(op, what);
        if (cause === undefined || !isBrokenCircuitError(e)) cause = e;
        const kind = classify(e);
        if (kind !== 'auth' && kind !== 'other') this.route.failed(c);
        if (kind === 'auth')
          throw fail('STORE_AUTH_FAILED', this.facts(op, what, 'etcd refused the credentials', e), e);
        if (kind === 'other') throw fail('STORE_ERROR', this.facts(op, what, 'etcd refused the request', e), e);
        const reason = `no answer within ${this.timeoutMs} ms (etcd unreachable or without quorum)`;
        if (kind === 'ambiguous' && !idempotent)
          throw fail(
            'STORE_UNAVAILABLE',
            {
              ...this.facts(op, what, 'etcd did not confirm the write, which may or may not have been applied', e),
              unconfirmed: true,
            },
            e,
          );
        if (Date.now() + RETRY_STEP_MS >= deadline)
          throw fail('STORE_UNAVAILABLE', this.facts(op, what, reason, cause), cause);
      }
      await sleep(RETRY_STEP_MS);
    }
  }

  /** The facts of an error about `op` on `what` (the catalogue's etcd template names the endpoints). */
  private facts(op: string, what: string, reason: string, e: unknown): EtcdFacts {
    return { op, key: what, endpoints: this.endpoints, timeoutMs: this.timeoutMs, reason, lastError: describe(e) };
  }

  private closedError(op: string, what?: string): MacnetError {
    const subject = what === undefined ? '' : ` ${JSON.stringify(what)}`;
    return new MacnetError('STORE_ERROR', `store ${op}${subject} on etcd: the store is closed`, { op });
  }
}
