// Structured logs: one JSON object per line on stderr, so that journald, docker logs and jq can read them.
// A string field is cut at FIELD_MAX characters: input from a request never fills the log.
export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Readonly<Record<Level, number>> = { debug: 10, info: 20, warn: 30, error: 40 };
export const LEVELS = Object.keys(ORDER) as Level[];
const FIELD_MAX = 1000;
const cut = (v: string): string =>
  v.length <= FIELD_MAX ? v : `${v.slice(0, FIELD_MAX)}… (cut, ${v.length} characters)`;

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

/** Causes followed below an error; deeper ones are named, not written. */
const CAUSE_DEPTH = 5;

/**
 * An error as a log field: message, code, details (a MacnetError's context), the stack of an error macnet did
 * not raise on purpose (a MacnetError's stack says nothing its message does not), and the chain of causes,
 * each the same way: a refusal whose root is a kernel errno shows that errno.
 */
export function errorFields(e: Error, depth = 0): Record<string, unknown> {
  const o = e as Error & { code?: unknown; details?: unknown; cause?: unknown };
  const planned = o.name === 'MacnetError' || o.name === 'KernelError' || o.details !== undefined;
  const out: Record<string, unknown> = { message: cut(o.message) };
  if (o.code !== undefined) out['code'] = o.code;
  if (o.details && typeof o.details === 'object' && Object.keys(o.details).length) out['details'] = o.details;
  if (!planned && o.stack) out['stack'] = cut(o.stack);
  if (o.cause !== undefined) {
    if (depth >= CAUSE_DEPTH) out['cause'] = '(further causes not shown)';
    else if (o.cause instanceof Error) out['cause'] = errorFields(o.cause, depth + 1);
    else out['cause'] = cut(String(o.cause));
  }
  return out;
}

export function createLogger(
  level: Level = 'info',
  base: Record<string, unknown> = {},
  write: (line: string) => void = (l) => process.stderr.write(l),
): Logger {
  const min = ORDER[level];
  const emit = (lvl: Level, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return;
    const rec: Record<string, unknown> = { time: new Date().toISOString(), level: lvl, msg, ...base, ...fields };
    for (const [k, v] of Object.entries(rec)) {
      if (v instanceof Error) rec[k] = errorFields(v);
      else if (typeof v === 'string') rec[k] = cut(v);
    }
    write(`${JSON.stringify(rec)}\n`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (f) => createLogger(level, { ...base, ...f }, write),
  };
}

/** For unit tests and library use: drops everything. */
export const silentLogger: Logger = createLogger('error', {}, () => undefined);
