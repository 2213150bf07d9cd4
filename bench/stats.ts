// Pure helpers for the benchmark suite: order statistics over timing samples, and the shape in which a figure
// hands its results to bench/run.ts. Nothing here does I/O, so the numbers in bench/results/ can be checked
// against these definitions alone.

/** Sorted copy, ascending; the input is left alone (callers keep samples in the order they were taken). */
export function sorted(samples: readonly number[]): number[] {
  return [...samples].sort((a, b) => a - b);
}

function requireSamples(samples: readonly number[], what: string): void {
  if (samples.length === 0) throw new RangeError(`${what} of no samples`);
  for (const x of samples) if (!Number.isFinite(x)) throw new RangeError(`${what}: sample ${x} is not a finite number`);
}

/** The median; for an even count the mean of the two middle values. */
export function median(samples: readonly number[]): number {
  requireSamples(samples, 'median');
  const s = sorted(samples);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * The p-th percentile by nearest rank: the smallest sample with at least p % of the samples at or below it.
 * Nearest rank (no interpolation) always names a time that was actually measured, which is what a reader of
 * "p90 = 4.1 ms" expects.
 */
export function percentile(samples: readonly number[], p: number): number {
  requireSamples(samples, `p${p}`);
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile ${p} is not in (0, 100]`);
  const s = sorted(samples);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)]!;
}

export const p90 = (samples: readonly number[]): number => percentile(samples, 90);

export interface Summary {
  n: number;
  min: number;
  median: number;
  p90: number;
  max: number;
  mean: number;
}

export function summarize(samples: readonly number[]): Summary {
  requireSamples(samples, 'summary');
  const s = sorted(samples);
  return {
    n: s.length,
    min: s[0]!,
    median: median(s),
    p90: percentile(s, 90),
    max: s[s.length - 1]!,
    mean: s.reduce((a, b) => a + b, 0) / s.length,
  };
}

/** How many times slower `other` is than `baseline` (> 1: baseline is faster). */
export function ratio(other: number, baseline: number): number {
  if (!(baseline > 0)) throw new RangeError(`ratio against a baseline of ${baseline}`);
  return other / baseline;
}

/** Milliseconds with enough digits for both sub-millisecond netlink calls and multi-millisecond spawns. */
export function fmtMs(ms: number): string {
  return ms >= 100 ? ms.toFixed(1) : ms >= 10 ? ms.toFixed(2) : ms.toFixed(3);
}

export const fmtRatio = (r: number): string => `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;

/** Plain-text table with columns padded to their widest cell; numeric-looking cells are right-aligned. */
export function textTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = (c: string) => /^[\d.]+×?$/.test(c);
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => (numeric(c) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const numeric = (c: string) => /^[\d.]+×?$/.test(c);
  const align = header.map((_, i) => (rows.length && rows.every((r) => numeric(r[i] ?? '')) ? '---:' : '---'));
  const line = (r: readonly string[]) => `| ${r.join(' | ')} |`;
  return [line(header), line(align), ...rows.map(line)].join('\n');
}

// ---- The contract between a figure and the runner ----

/** One timed series: every sample of one operation done by one method, in milliseconds. */
export interface Series {
  /** What was done, e.g. "create"; series with the same op are compared with each other. */
  op: string;
  /** How it was done; must be a key of FigureResult.methods. */
  method: string;
  samplesMs: number[];
}

export interface FigureResult {
  /** One paragraph: what was measured and how (setup, alternation, what one sample covers). */
  what: string;
  /** Method key → one-line description (the exact call or command behind it). */
  methods: Record<string, string>;
  /** The method the others are divided by in the ratio column. */
  baseline: string;
  /** What one "round" means for this figure, e.g. "create + delete of one link per method". */
  roundUnit: string;
  rounds: number;
  series: Series[];
  /** Caveats a reader needs to interpret the figure. */
  notes: string[];
}

export interface FigureOptions {
  rounds: number;
  /** Progress for the person watching; goes to stderr so stdout stays the table. */
  log: (msg: string) => void;
}

export interface Figure {
  /** Used on the command line: `npm run bench -- <id>`. */
  id: string;
  title: string;
  defaultRounds: number;
  /** Rounds for a smoke run (--quick): enough to exercise every code path, not to be quoted. */
  quickRounds: number;
  run(opts: FigureOptions): Promise<FigureResult>;
}

// ---- Additions for figures that report more than times: targets, tables in other units, a plot ----

export const p99 = (samples: readonly number[]): number => percentile(samples, 99);

/** A target the issue sets for a figure; reported as a PASS/FAIL line, never asserted. */
export interface Target {
  /** What is measured, e.g. "macnet daemon RSS with 1,000 endpoints". */
  what: string;
  pass: boolean;
  /** The measured value and the limit, e.g. "61.2 MB, target at most 80 MB". */
  detail: string;
}

export const targetLine = (t: Target): string => `${t.pass ? 'PASS' : 'FAIL'}: ${t.what}: ${t.detail}`;

/** A table in the figure's own units (Mbit/s, MiB, ...), for what the millisecond table cannot show. */
export interface ExtraTable {
  title: string;
  header: string[];
  rows: string[][];
}

/** One bar of the plot: a value against its panel's axis. */
export interface PlotBar {
  label: string;
  value: number;
  /** Printed at the end of the bar; default: the value with the panel's unit. */
  text?: string;
  /** Whether the bar meets its target (colours it); undefined when no target applies. */
  pass?: boolean;
  /** A spread drawn as a whisker over the bar, e.g. the quartiles of per-round ratios. */
  range?: [number, number];
}

/** One panel of bench/results/*.svg: horizontal bars on one linear axis, with reference and target lines. */
export interface PlotPanel {
  title: string;
  /** Axis unit, e.g. "×" for ratios, "MB", "ms". */
  unit: string;
  /** Which way is good, said in the panel's caption. */
  better: 'lower' | 'higher';
  bars: PlotBar[];
  /** Vertical lines: parity (1×) and targets. */
  lines: { value: number; label: string; kind: 'reference' | 'target' }[];
}

/** A FigureResult with the extras bench/run.ts prints when present. */
export interface RichFigureResult extends FigureResult {
  targets?: Target[];
  tables?: ExtraTable[];
  /** Parts of the figure that could not be measured here, each with the reason. */
  skipped?: string[];
  plot?: PlotPanel[];
}

/** Ratios a[i] / b[i] of paired samples (taken next to each other, so that drift between pairs cancels). */
export function pairedRatios(a: readonly number[], b: readonly number[]): number[] {
  if (a.length !== b.length) throw new RangeError(`paired ratio of ${a.length} and ${b.length} samples`);
  return a.map((x, i) => ratio(x, b[i]!));
}

export const pairedRatioMedian = (a: readonly number[], b: readonly number[]): number => median(pairedRatios(a, b));
