import { CATALOGUE, type ErrorCode, type Facts, type TemplateCode } from './catalogue';
import type { Formatted } from './templates';

export { CATALOGUE, type ErrorCode, type Facts, type TemplateCode };
export { CLIP_CHARS, clip, clipText } from './clip';
export type {
  ConflictFacts,
  EndpointFacts,
  EtcdFacts,
  Formatted,
  MigrateConflict,
  MigrateConflictFacts,
  NetworkFacts,
  OptionFacts,
  RecordFacts,
  ValueFacts,
} from './templates';

/**
 * Every error macnet raises on purpose. `code` is stable (see docs/errors.md); `message` is complete on its
 * own (operation, value, what would be valid); `details` carries machine-readable context for logs.
 */
export class MacnetError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'MacnetError';
    this.code = code;
    this.details = Object.freeze({ ...details });
  }
}

export function isMacnetError(e: unknown, code?: ErrorCode): e is MacnetError {
  return e instanceof MacnetError && (code === undefined || e.code === code);
}

/**
 * The error of a code with a message template (src/errors/catalogue.ts), its message and details made from
 * `facts`: `throw fail('ADDRESS_CONFLICT', { address, mac, reason, subnet })`. Returns the error, so that the
 * call site's `throw` (or reject) stays visible.
 */
export function fail<C extends TemplateCode>(code: C, facts: Facts<C>, cause?: unknown): MacnetError {
  const template = CATALOGUE[code].message as (f: Facts<C>) => Formatted;
  const { message, details } = template(facts);
  return new MacnetError(code, message, details, cause);
}
