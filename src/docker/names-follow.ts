// Where the names come from (issue 20): dockerd sends network drivers no container names or aliases, so each daemon
// follows the Docker Engine API's events in the background and writes a name record (src/names/records.ts) for
// every container on one of its macnet networks. Never from inside a plugin call: at boot dockerd may call the
// plugin before its API answers, and waiting for the API there could deadlock it. So this runs on its own, and
// keeps trying to reach the engine (every RETRY_MS) until it does.
//
// On every (re)connection of the event stream: a full sync (every running container inspected; this host's records
// become exactly those), so events missed while the stream was down cost nothing. Then each network connect or
// disconnect, and each container rename, changes one container's records.
import type { Logger } from '../log';
import type { NameEntry, NameWriter } from '../names/records';
import type { ContainerInspect, EngineApi, EngineEvent } from './engine';

/** How long after a lost or refused event stream it is opened again. */
export const RETRY_MS = 1000;

/** Which networks are macnet's on this host (the driver's records). */
export interface MacnetNetworks {
  networkIds(): Promise<ReadonlySet<string>>;
}

export class NamesFollower {
  private stop: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Serialises the writes: a sync and the events after it apply in order. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly engine: EngineApi,
    private readonly networks: MacnetNetworks,
    private readonly writer: NameWriter,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.closed || this.stop) return;
    let open = false;
    this.stop = this.engine.events(
      { type: ['network', 'container'], event: ['connect', 'disconnect', 'rename'] },
      {
        onOpen: () => {
          open = true;
          this.enqueue(() => this.fullSync());
        },
        onEvent: (e) => this.enqueue(() => this.onEvent(e)),
        onEnd: (error) => {
          this.stop = undefined;
          if (this.closed) return;
          if (open)
            this.log.warn('names: the Docker event stream ended; following it again', { error: error?.message });
          this.timer = setTimeout(() => this.start(), RETRY_MS);
        },
      },
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.stop?.();
    this.stop = undefined;
    await this.queue;
  }

  private enqueue(fn: () => Promise<void>): void {
    this.queue = this.queue
      .then(fn)
      .catch((e: unknown) => this.log.warn('names: a name record was not written', { error: (e as Error).message }));
  }

  private async fullSync(): Promise<void> {
    const ids = await this.networks.networkIds();
    const list = (await this.engine.get<{ Id: string }[]>('/containers/json')) ?? [];
    const entries: NameEntry[] = [];
    for (const c of list) {
      const inspect = await this.engine.get<ContainerInspect>(`/containers/${c.Id}/json`);
      if (inspect) entries.push(...this.entriesOf(inspect, ids));
    }
    await this.writer.sync(entries);
    this.log.info("names: this host's containers written", { records: entries.length });
  }

  private async onEvent(e: EngineEvent): Promise<void> {
    const attrs = e.Actor?.Attributes ?? {};
    if (e.Type === 'network') {
      const network = e.Actor?.ID;
      const container = attrs['container'];
      if (!network || !container) return;
      if (e.Action === 'disconnect') return this.writer.remove(network, container);
      if (e.Action !== 'connect' || !(await this.networks.networkIds()).has(network)) return;
      const inspect = await this.engine.get<ContainerInspect>(`/containers/${container}/json`);
      for (const entry of inspect ? this.entriesOf(inspect, new Set([network])) : []) await this.writer.set(entry);
    } else if (e.Type === 'container' && e.Action === 'rename' && e.Actor?.ID) {
      const inspect = await this.engine.get<ContainerInspect>(`/containers/${e.Actor.ID}/json`);
      for (const entry of inspect ? this.entriesOf(inspect, await this.networks.networkIds()) : [])
        await this.writer.set(entry);
    }
  }

  /** The container's records on the networks in `ids`. Aliases: Docker's, and its DNSNames (Docker 25 on). */
  private entriesOf(c: ContainerInspect, ids: ReadonlySet<string>): NameEntry[] {
    const name = c.Name.replace(/^\//, '');
    const out: NameEntry[] = [];
    for (const n of Object.values(c.NetworkSettings?.Networks ?? {})) {
      if (!n.NetworkID || !ids.has(n.NetworkID)) continue;
      const aliases = [...new Set([...(n.Aliases ?? []), ...(n.DNSNames ?? [])])].filter((a) => a !== name).sort();
      out.push({
        name,
        aliases,
        host: this.writer.label,
        network: n.NetworkID,
        container: c.Id,
        v4: n.IPAddress ? [n.IPAddress] : [],
        v6: n.GlobalIPv6Address ? [n.GlobalIPv6Address] : [],
      });
    }
    return out;
  }
}
