// Every value in the store is a JSON record; this is its one codec, so that a record one layer wrote reads the
// same in another, and a record that cannot be read fails the same way wherever it is read.
import { fail } from '../errors';

export const encodeRecord = (record: unknown): string => JSON.stringify(record);

/**
 * The record stored under `key`. A value that is not JSON is STORE_ERROR naming the key and `context`, what was
 * reading it ("IPAM load"), so that the operator knows which entry to repair or remove.
 */
export function decodeRecord<T>(key: string, value: string, context: string): T {
  try {
    return JSON.parse(value) as T;
  } catch (e) {
    throw fail('STORE_ERROR', { context, record: key, error: (e as Error).message }, e);
  }
}
