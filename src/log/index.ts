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
      if (v instanceof Error) {
        rec[k] = { message: cut(v.message), ...('code' in v ? { code: (v as { code: unknown }).code } : {}) };
      } else if (typeof v === 'string') rec[k] = cut(v);
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
