// The plot of a bench run: bench/results/latest.svg, hand-written SVG from the results (no plotting library).
// One panel per figure part, horizontal bars on a linear axis from 0, with dashed reference lines (parity,
// 1×) and solid target lines; a bar is green when it meets its target, red when it misses it, blue when no
// target applies. Each panel has its own axis, so a 14× ratio and a 1.02× ratio can both be read.
import { type FigureResult, type PlotPanel, type RichFigureResult, median, ratio } from './stats';

const W = 960;
const LABEL_W = 300;
const X0 = LABEL_W + 20;
const X1 = W - 90;
const BAR_H = 20;
const BAR_GAP = 8;
const COLOUR = {
  pass: '#2e7d32',
  fail: '#c62828',
  none: '#4f79a8',
  target: '#e65100',
  reference: '#555',
  grid: '#e0e0e0',
  text: '#222',
};

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** A step of 1, 2 or 5 × 10^k giving about `count` ticks up to `max`. */
function niceStep(max: number, count = 5): number {
  const raw = max / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
}

/** Axis ticks: as few digits as the tick needs (0×, 0.5×, 20 MB). */
const fmtTick = (t: number, unit: string) => `${Number(t.toFixed(6))}${unit === '×' ? '×' : ` ${unit}`}`;

function fmtValue(v: number, unit: string): string {
  // Three decimals below 2×: a 0.969× against a 0.97× target must not print as 0.97×.
  if (unit === '×') return `${v >= 10 ? v.toFixed(1) : v >= 2 ? v.toFixed(2) : v.toFixed(3)}×`;
  const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${v.toFixed(digits)} ${unit}`;
}

/** A panel from a figure without its own plot: each method's median time over the baseline's, per op. */
export function ratioPanel(id: string, r: FigureResult): PlotPanel | undefined {
  const bars = r.series
    .filter((s) => s.method !== r.baseline)
    .flatMap((s) => {
      const base = r.series.find((b) => b.op === s.op && b.method === r.baseline);
      if (!base || !s.samplesMs.length || !base.samplesMs.length) return [];
      return [{ label: `${s.op}: ${s.method}`, value: ratio(median(s.samplesMs), median(base.samplesMs)) }];
    });
  if (!bars.length) return undefined;
  return {
    title: `${id}: median time, method / ${r.baseline}`,
    unit: '×',
    better: 'lower',
    bars,
    lines: [{ value: 1, label: 'parity', kind: 'reference' }],
  };
}

/** The panels of a run, in figure order: a figure's own plot, else the generic ratio panel. */
export function panelsOf(done: { id: string; result: FigureResult }[]): PlotPanel[] {
  return done.flatMap(({ id, result }) => {
    const own = (result as RichFigureResult).plot;
    if (own?.length) return own.map((p) => ({ ...p, title: `${id}: ${p.title}` }));
    const p = ratioPanel(id, result);
    return p ? [p] : [];
  });
}

function panelSvg(p: PlotPanel, top: number): { svg: string[]; height: number } {
  const out: string[] = [];
  const max =
    Math.max(...p.bars.map((b) => Math.max(b.value, b.range?.[1] ?? 0)), ...p.lines.map((l) => l.value)) * 1.08 || 1;
  const step = niceStep(max);
  const axisMax = Math.ceil(max / step) * step;
  const x = (v: number) => X0 + (v / axisMax) * (X1 - X0);
  const barsTop = top + 40;
  const barsH = p.bars.length * (BAR_H + BAR_GAP);
  out.push(`<text x="12" y="${top + 16}" font-weight="bold" font-size="14">${esc(p.title)}</text>`);
  out.push(
    `<text x="${W - 12}" y="${top + 16}" text-anchor="end" font-size="12" fill="#666">${p.better} is better</text>`,
  );
  for (let t = 0; t <= axisMax + step / 1e6; t += step) {
    out.push(`<line x1="${x(t)}" y1="${barsTop - 6}" x2="${x(t)}" y2="${barsTop + barsH}" stroke="${COLOUR.grid}"/>`);
    out.push(
      `<text x="${x(t)}" y="${barsTop + barsH + 14}" text-anchor="middle" font-size="11" fill="#666">${esc(fmtTick(t, p.unit))}</text>`,
    );
  }
  const values: string[] = [];
  p.bars.forEach((b, i) => {
    const y = barsTop + i * (BAR_H + BAR_GAP);
    const fill = b.pass === undefined ? COLOUR.none : b.pass ? COLOUR.pass : COLOUR.fail;
    out.push(
      `<text x="${LABEL_W + 10}" y="${y + BAR_H / 2 + 4}" text-anchor="end" font-size="12">${esc(clip(b.label, 44))}</text>`,
    );
    out.push(
      `<rect x="${X0}" y="${y}" width="${Math.max(1, x(b.value) - X0).toFixed(1)}" height="${BAR_H}" fill="${fill}"/>`,
    );
    if (b.range) {
      const [lo, hi] = b.range.map(x);
      const m = y + BAR_H / 2;
      out.push(
        `<path d="M${lo} ${m - 5}V${m + 5}M${lo} ${m}H${hi}M${hi} ${m - 5}V${m + 5}" stroke="#111" stroke-width="1.5" fill="none"/>`,
      );
    }
    const text = b.text ?? fmtValue(b.value, p.unit) + (b.pass === undefined ? '' : b.pass ? ' ✓' : ' ✗');
    // A white halo, so that a line crossing the number does not hide it; right of the whisker if there is one.
    values.push(
      `<text x="${Math.max(x(b.value), b.range ? x(b.range[1]) : 0) + 5}" y="${y + BAR_H / 2 + 4}" font-size="12" stroke="#fff" stroke-width="3" paint-order="stroke">${esc(text)}</text>`,
    );
  });
  // Lines over the bars, values over the lines; reference labels above the bars, target labels below, so that
  // close lines (parity 1× and a 0.97× target) stay legible.
  for (const l of p.lines) {
    const colour = l.kind === 'target' ? COLOUR.target : COLOUR.reference;
    const dash = l.kind === 'target' ? '' : ' stroke-dasharray="5,4"';
    out.push(
      `<line x1="${x(l.value)}" y1="${barsTop - 8}" x2="${x(l.value)}" y2="${barsTop + barsH}" stroke="${colour}" stroke-width="2"${dash}/>`,
    );
    const ly = l.kind === 'target' ? barsTop + barsH + 28 : barsTop - 11;
    out.push(
      `<text x="${x(l.value)}" y="${ly}" text-anchor="middle" font-size="11" fill="${colour}">${esc(l.label)}</text>`,
    );
  }
  out.push(...values);
  return { svg: out, height: barsH + 88 };
}

/** The whole SVG document. `caption` goes under the title (when and how the run was made). */
export function renderSvg(panels: PlotPanel[], caption: string): string {
  const body: string[] = [];
  let y = 62;
  for (const p of panels) {
    const { svg, height } = panelSvg(p, y);
    body.push(...svg);
    y += height;
  }
  const legend = [
    [COLOUR.pass, 'meets its target'],
    [COLOUR.fail, 'misses its target'],
    [COLOUR.none, 'no target'],
  ].map(
    ([c, t], i) =>
      `<rect x="${12 + i * 150}" y="38" width="12" height="12" fill="${c}"/><text x="${28 + i * 150}" y="49" font-size="12">${t}</text>`,
  );
  legend.push(
    `<line x1="470" y1="44" x2="500" y2="44" stroke="${COLOUR.reference}" stroke-width="2" stroke-dasharray="5,4"/><text x="506" y="49" font-size="12">reference (1× = parity)</text>`,
  );
  legend.push(
    `<line x1="680" y1="44" x2="710" y2="44" stroke="${COLOUR.target}" stroke-width="2"/><text x="716" y="49" font-size="12">target</text>`,
  );
  legend.push(
    `<path d="M780 39V49M780 44H810M810 39V49" stroke="#111" stroke-width="1.5" fill="none"/><text x="816" y="49" font-size="12">p25 to p75</text>`,
  );
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y + 10}" viewBox="0 0 ${W} ${y + 10}" font-family="Helvetica, Arial, sans-serif" fill="${COLOUR.text}">`,
    `<rect width="${W}" height="${y + 10}" fill="#fff"/>`,
    `<text x="12" y="22" font-size="16" font-weight="bold">macnet benchmarks</text>`,
    `<text x="${W - 12}" y="22" text-anchor="end" font-size="12" fill="#666">${esc(caption)}</text>`,
    ...legend,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}
