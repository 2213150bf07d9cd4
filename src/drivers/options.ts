// The -o values as Docker hands them over, and the OPTION_INVALID wording every option's check shares.
import { fail } from '../errors';

export const invalid = (option: string, value: unknown, valid: string) =>
  fail('OPTION_INVALID', { as: 'driver-opt', option, value, valid });

export function oneOf<T extends string>(option: string, value: string, valid: readonly T[], dflt: string): T {
  if (!(valid as readonly string[]).includes(value)) {
    throw invalid(option, value, `use one of ${valid.join(', ')} ('${dflt}' is the default)`);
  }
  return value as T;
}

/** Docker sends booleans in Options as booleans or as strings, depending on the engine version. */
export const truthy = (v: unknown): boolean => v === true || v === 'true' || v === '1';
