// Many `docker run`s on one lab host with a bounded number in flight, as a user's script or compose starting a
// stack would send them: the cluster and scale tests' burst of containers.
import type { LabHost } from './host';

/** Starts a busybox `sleep 600` per name on `net`, `concurrency` at a time; returns the failures. */
export async function startBurst(h: LabHost, net: string, names: string[], concurrency: number): Promise<string[]> {
  const failures: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < names.length) {
        const n = names[next++]!;
        const r = await h.docker('run', '-d', '--name', n, '--net', net, 'busybox:local', 'sleep', '600');
        if (r.code !== 0) failures.push(`${h.name} ${n}: ${r.stderr.trim()}`);
      }
    }),
  );
  return failures;
}
