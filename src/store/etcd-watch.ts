// Store.watch on etcd: one etcd watcher on the prefix (without prev_kv: no watcher needs a deleted key's last
// value, so etcd is not asked to read it for every delete). etcd3's watch manager reconnects by itself and resumes
// at the revision after the last one it saw, so a cut-off member or a leader election loses nothing. Two things
// lose history, and both end in onReset (the watcher reads the prefix again) and a new watcher from the current
// revision:
// - etcd cancelled the watcher (its start revision was compacted meanwhile, or the user lost read rights);
// - the first connection took longer than the store's deadline: watch() resolved without it, so the writes
//   between then and the connection are unseen.
import type { Etcd3, IWatchResponse, Watcher } from 'etcd3';
import type { Change, StoreWatch, WatchHandlers } from './types';

/** How long after a cancelled watcher a new one is asked for (etcd refusing it again must not spin). */
const RESTART_MS = 1000;

export async function watchPrefix(
  client: Etcd3,
  prefix: Buffer,
  storePrefixLength: number,
  handlers: WatchHandlers,
  timeoutMs: number,
): Promise<StoreWatch> {
  let closed = false;
  let current: Watcher | undefined;
  let restart: NodeJS.Timeout | undefined;

  const toChanges = (res: IWatchResponse): Change[] =>
    res.events.map((ev) => ({
      type: ev.type === 'Delete' ? 'delete' : 'put',
      key: ev.kv.key.subarray(storePrefixLength).toString('utf8'),
      value: ev.type === 'Delete' ? undefined : ev.kv.value.toString('utf8'),
    }));

  const start = (): Promise<void> => {
    // watcher() attaches it to the client's one watch stream at once (create() would wait for the connection
    // without a deadline).
    const w = client.watch().prefix(prefix).watcher();
    current = w;
    let resolved = false;
    let late = false;
    w.on('data', (res: IWatchResponse) => {
      if (!closed && res.events.length > 0) handlers.onChanges(toChanges(res));
    });
    // A late first connection means the writes between watch() and now were not seen.
    w.on('connected', () => {
      if (late && !closed) handlers.onReset();
      late = false;
    });
    w.on('error', () => {
      // etcd cancelled it: it is gone from the manager; a new one follows from the current revision.
      if (closed || current !== w) return;
      current = undefined;
      restart = setTimeout(() => {
        restart = undefined;
        if (closed) return;
        void start().then(() => !closed && handlers.onReset());
      }, RESTART_MS);
    });
    return new Promise<void>((resolve) => {
      const done = () => {
        if (resolved) return;
        resolved = true;
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        late = true;
        done();
      }, timeoutMs);
      w.once('connected', done);
      w.once('error', done);
    });
  };

  await start();
  return {
    close: async () => {
      closed = true;
      if (restart) clearTimeout(restart);
      const w = current;
      current = undefined;
      await w?.cancel().catch(() => undefined);
    },
  };
}
