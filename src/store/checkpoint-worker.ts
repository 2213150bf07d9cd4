// The body of the checkpoint thread (checkpointer.ts): its own connection to the state database, running a
// passive checkpoint each time it is asked. A checkpoint copies the WAL's pages into the database file and syncs
// both (synchronous=NORMAL); on the daemon's thread those fsyncs would stall every other call.
//
// 'restart' (asked while the store holds its writes back) also writes one row after a complete checkpoint: the
// first write after one starts the WAL over from its beginning, and SQLite then fsyncs the new WAL header
// inside that write. Done here, that fsync is this thread's too, not the next allocation's on the event loop.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

export interface CheckpointReply {
  /** Frames in the WAL and frames copied to the database: equal when the next writer may restart the WAL. */
  log?: number;
  checkpointed?: number;
  error?: string;
}

const port = parentPort;
if (port) {
  const { file } = workerData as { file: string };
  let db: Database.Database | undefined;
  port.on('message', (m: 'checkpoint' | 'restart' | 'close') => {
    if (m === 'close') {
      db?.close();
      port.close();
      return;
    }
    let reply: CheckpointReply;
    try {
      if (!db) {
        db = new Database(file, { fileMustExist: true, timeout: 0 });
        db.pragma('synchronous = NORMAL');
      }
      // PASSIVE: never waits for, nor blocks, the daemon's readers and writers; what it cannot copy yet (pages a
      // reader still needs) it copies the next time.
      const [r] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
      reply = { log: r?.log ?? 0, checkpointed: r?.checkpointed ?? 0 };
      if (m === 'restart' && r && r.log > 0 && r.log === r.checkpointed) {
        try {
          db.prepare(
            "INSERT INTO meta (name, value) VALUES ('checkpoints', 1) " +
              'ON CONFLICT (name) DO UPDATE SET value = value + 1',
          ).run();
        } catch (e) {
          // SQLITE_BUSY: another process writes (the CLI); its write, or the store's next one, restarts the WAL.
          if (!/^SQLITE_BUSY/.test(String((e as { code?: string }).code))) throw e;
        }
      }
    } catch (e) {
      reply = { error: e instanceof Error ? `${(e as { code?: string }).code ?? ''} ${e.message}`.trim() : String(e) };
    }
    port.postMessage(reply);
  });
}
