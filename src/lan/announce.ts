// After Join, dockerd moves the endpoint's link into the container, addresses it and brings it up; the plugin
// is not told when. This waits for that in the container's namespace and then announces the addresses
// (gratuitous ARP, unsolicited NA) so that the router and peers drop a stale neighbour entry at once — after
// a container is re-created with a new MAC, users otherwise wait minutes for their caches to expire.
import { checkNetnsFile, ETH_P_ARP, ETH_P_IPV6, Kernel } from '../kernel';
import type { Logger } from '../log';
import { announce } from '../probe/prober';

/** Announces `ips` (plain addresses) once they are up in the namespace `sandboxKey`; gives up after `timeoutMs`. */
export async function announceWhenUp(
  sandboxKey: string,
  ips: readonly string[],
  log: Logger,
  signal?: AbortSignal,
  timeoutMs = 10_000,
): Promise<void> {
  const wanted = [...ips];
  if (wanted.length === 0) return;
  const deadline = Date.now() + timeoutMs;
  // dockerd may create the sandbox's namespace file only after Join returns: wait for it.
  let k: Kernel | undefined;
  while (!k) {
    if (signal?.aborted) return;
    try {
      // dockerd's path, checked before anything opens it: a FIFO there would block the event loop.
      await checkNetnsFile(sandboxKey);
      k = Kernel.open(sandboxKey);
    } catch (e) {
      if ((e as { errno?: string }).errno === 'EINVAL' || Date.now() >= deadline) {
        log.debug('no announcement: sandbox not reachable', { sandboxKey, error: e });
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const events = k.subscribe();
  try {
    const pending = new Set(wanted);
    while (pending.size && Date.now() < deadline && !signal?.aborted) {
      const changed = new Promise<void>((r) => {
        // Events can be missed between the read and the subscription: poll too. The listener goes either way
        // (left behind, one per poll, they piled up to a MaxListenersExceededWarning).
        const done = () => {
          clearTimeout(t);
          events.off('event', done);
          r();
        };
        const t = setTimeout(done, 200);
        events.on('event', done);
      });
      const links = new Map((await k.links.list()).map((l) => [l.index, l]));
      for (const a of await k.addresses.list()) {
        const l = links.get(a.index);
        // Tentative IPv6 addresses must not be announced (RFC 4862 5.4); the link must be up to send.
        if (!pending.has(a.address) || !l?.up || !l.mac || a.tentative) continue;
        const sock = await k.openPacketSocket(l.index, { protocol: a.family === 4 ? ETH_P_ARP : ETH_P_IPV6 });
        try {
          await announce(sock, l.mac, a.address);
        } finally {
          sock.close();
        }
        pending.delete(a.address);
        log.debug('announced', { address: a.address, mac: l.mac, sandboxKey });
      }
      if (pending.size) await changed;
    }
    if (pending.size)
      log.warn('addresses not announced: the interface did not come up in time', {
        addresses: [...pending],
        sandboxKey,
      });
  } catch (e) {
    // The container may be gone already (a short-lived `docker run --rm`): nothing to announce then.
    log.debug('announcement stopped', { sandboxKey, error: e });
  } finally {
    events.close();
    await k.close();
  }
}
