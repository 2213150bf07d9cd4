import { CATALOGUE, type ErrorCode } from './catalogue';

export { CATALOGUE, type ErrorCode };

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
