// A frame budget shared by every sweep of the daemon (`macnet scan`): at most `perSecond` frames leave, in
// bursts, however many scans run (docs/lan.md). Ten concurrent scans once sent 40,940 ARP frames in 2 s.
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sweep frames per second, daemon-wide. */
export const SWEEP_FRAMES_PER_SECOND = 1000;

export class Pacer {
  /** When the next frame may go (performance.now() time). */
  private next = 0;

  constructor(private readonly perSecond: number) {}

  /** Resolves when `n` more frames may go out; callers that wait are served in call order. */
  async take(n: number): Promise<void> {
    const now = performance.now();
    const at = Math.max(now, this.next);
    this.next = at + (n * 1000) / this.perSecond;
    if (at > now) await sleep(at - now);
  }
}

/** The daemon's one budget for sweeps. */
export const sweepPacer = new Pacer(SWEEP_FRAMES_PER_SECOND);
