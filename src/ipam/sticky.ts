// Read-only view of the sticky-identity records (keys.ts, STICKY) for `macnet scan`: the last address each
// container name had on a subnet. A stopped container keeps its record, so scan can name its silent address.
import type { Store } from '../store/types';
import { STICKY } from './keys';

/** The last address of every container name on `subnet` ("198.18.15.0/24"), in any address space. */
export async function lastAddresses(store: Store, subnet: string): Promise<{ name: string; address: string }[]> {
  const seg = subnet.replace('/', '_');
  const out: { name: string; address: string }[] = [];
  for (const e of await store.list(STICKY)) {
    // ipam/sticky/<space>/<subnet with _>/<name, URI-encoded>
    const parts = e.key.slice(STICKY.length).split('/');
    if (parts.length < 3 || parts[parts.length - 2] !== seg) continue;
    out.push({ name: decodeURIComponent(parts[parts.length - 1]!), address: e.value });
  }
  return out;
}
