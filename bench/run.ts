// `npm run bench`: runs the registered figures one after another (never in parallel: they would time each
// other), prints a table per figure to stdout and writes bench/results/latest.md with the machine facts and
// the command behind every figure, so a number quoted in the README can be traced and reproduced.
//
//   npm run bench                          all figures, full rounds → bench/results/latest.md
//   npm run bench -- kernel-links          only the named figures (ids as listed by --list)
//   npm run bench -- --quick               smoke run: each figure's quickRounds (also BENCH_QUICK=1)
//   npm run bench -- --rounds 200          rounds for every figure (also BENCH_ROUNDS=200)
//   npm run bench -- --out FILE            write the report elsewhere
//   npm run bench -- --engine current      the Docker figures on the current engine (28.x, test/lab/engines.ts)
//                                          instead of Debian 12's 20.10 (also BENCH_ENGINE=current)
//
// A run with fewer rounds than a figure's default is a smoke run: it writes bench/results/smoke.md unless
// --out says otherwise, so that checking that the bench works never overwrites the figures worth quoting.
// Progress goes to stderr, the tables to stdout.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ipam } from './ipam';
import { cluster } from './cluster';
import { lan } from './lan';
import { kernelLinks } from './kernel-links';
import { dockerRun } from './docker-run';
import { datapath } from './datapath';
import { footprint } from './footprint';
import { networkCreate } from './network-create';
import { names } from './names';
import { panelsOf, renderSvg } from './plot';
import { type Engine, ENGINE_IDS, type EngineId, ensureCurrentEngine, systemEngine } from '../test/lab/engines';
import {
  type Figure,
  type FigureResult,
  type RichFigureResult,
  fmtMs,
  fmtRatio,
  markdownTable,
  ratio,
  summarize,
  targetLine,
  textTable,
} from './stats';

/** The suite, in running order. A new figure is one module exporting a Figure, added here. */
const FIGURES: readonly Figure[] = [
  kernelLinks,
  ipam,
  cluster,
  lan,
  networkCreate,
  footprint,
  datapath,
  dockerRun,
  names,
];

// dist/bench/run.js → the project root
const ROOT = path.join(__dirname, '..', '..');
const RESULTS = path.join(ROOT, 'bench', 'results');

interface Options {
  figures: Figure[];
  rounds: (f: Figure) => number;
  out: string;
  smoke: boolean;
  engine: EngineId;
}

function usage(): string {
  return [
    'usage: npm run bench [-- [FIGURE...] [--quick] [--rounds N] [--out FILE] [--engine system|current] [--list]]',
    `figures: ${FIGURES.map((f) => f.id).join(', ')}`,
    'env: BENCH_QUICK=1 (as --quick), BENCH_ROUNDS=N (as --rounds N), BENCH_ENGINE=current (as --engine current)',
  ].join('\n');
}

function parse(argv: string[]): Options | undefined {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      quick: { type: 'boolean' },
      rounds: { type: 'string' },
      out: { type: 'string' },
      list: { type: 'boolean' },
      engine: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage());
    return undefined;
  }
  if (values.list) {
    for (const f of FIGURES)
      console.log(`${f.id.padEnd(16)} ${f.title} (${f.defaultRounds} rounds, --quick: ${f.quickRounds})`);
    return undefined;
  }
  const unknown = positionals.filter((p) => !FIGURES.some((f) => f.id === p));
  if (unknown.length) throw new UsageError(`unknown figure ${unknown.join(', ')}`);
  const figures = positionals.length ? FIGURES.filter((f) => positionals.includes(f.id)) : [...FIGURES];

  const roundsArg = values.rounds ?? process.env['BENCH_ROUNDS'];
  let fixed: number | undefined;
  if (roundsArg !== undefined && roundsArg !== '') {
    fixed = Number(roundsArg);
    if (!Number.isInteger(fixed) || fixed < 1)
      throw new UsageError(`rounds ${JSON.stringify(roundsArg)} is not a positive integer`);
  }
  const quick = values.quick === true || /^(1|true|yes)$/i.test(process.env['BENCH_QUICK'] ?? '');
  const rounds = (f: Figure) => fixed ?? (quick ? f.quickRounds : f.defaultRounds);
  const smoke = figures.some((f) => rounds(f) < f.defaultRounds);
  const out = values.out ? path.resolve(values.out) : path.join(RESULTS, smoke ? 'smoke.md' : 'latest.md');
  const engine = values.engine ?? process.env['BENCH_ENGINE'] ?? 'system';
  if (!(ENGINE_IDS as readonly string[]).includes(engine)) {
    throw new UsageError(`--engine ${JSON.stringify(engine)}: the engines are ${ENGINE_IDS.join(' and ')}`);
  }
  return { figures, rounds, out, smoke, engine: engine as EngineId };
}

class UsageError extends Error {}

/** The command as the person typed it, so the report can say what to run to get the same figures. */
function invocation(): string {
  const env = ['BENCH_QUICK', 'BENCH_ROUNDS', 'BENCH_ENGINE']
    .filter((k) => process.env[k])
    .map((k) => `${k}=${process.env[k]} `)
    .join('');
  const args = process.argv.slice(2).join(' ');
  return process.env['npm_lifecycle_event'] === 'bench'
    ? `${env}npm run bench${args ? ` -- ${args}` : ''}`
    : `${env}node dist/bench/run.js${args ? ` ${args}` : ''}`;
}

function tryRun(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], cwd: ROOT }).trim();
  } catch {
    return undefined;
  }
}

function machine(engine: Engine): [string, string][] {
  const cpus = os.cpus();
  const commit = tryRun('git', ['rev-parse', '--short', 'HEAD']);
  const dirty = tryRun('git', ['status', '--porcelain', '--', 'src', 'bench', 'native']);
  return [
    ['kernel (uname -r)', os.release()],
    ['cpu', `${cpus[0]?.model.trim() ?? 'unknown'}`],
    ['cores', String(cpus.length)],
    ['memory', `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`],
    ['node', process.version],
    ['iproute2', tryRun('ip', ['-V'])?.replace(/^ip utility, /, '') ?? 'unknown'],
    [
      'load average at start (1/5/15 min)',
      os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(' '),
    ],
    ['Docker engine of the Docker figures', `${engine.label} (${engine.source})`],
    [
      'code',
      commit
        ? `git ${commit}${dirty ? ' + uncommitted changes in src/, bench/ or native/' : ''}`
        : 'not a git checkout',
    ],
  ];
}

interface Row {
  op: string;
  method: string;
  cells: string[];
}

/** One row per series: n, median, p90, min, max, and both ratios against the baseline method of the same op. */
function rows(r: FigureResult): Row[] {
  return r.series.map((s) => {
    const sum = summarize(s.samplesMs);
    const base = r.series.find((b) => b.op === s.op && b.method === r.baseline);
    const bs = base ? summarize(base.samplesMs) : undefined;
    return {
      op: s.op,
      method: s.method,
      cells: [
        s.op,
        s.method,
        String(sum.n),
        fmtMs(sum.median),
        fmtMs(sum.p90),
        fmtMs(sum.min),
        fmtMs(sum.max),
        bs ? fmtRatio(ratio(sum.median, bs.median)) : '-',
        bs ? fmtRatio(ratio(sum.p90, bs.p90)) : '-',
      ],
    };
  });
}

const header = (r: FigureResult) => [
  'op',
  'method',
  'n',
  'median ms',
  'p90 ms',
  'min ms',
  'max ms',
  `median / ${r.baseline}`,
  `p90 / ${r.baseline}`,
];

interface Done {
  figure: Figure;
  result: FigureResult;
  seconds: number;
}

function reproduce(f: Figure, rounds: number): string {
  return `npm run bench -- ${f.id}${rounds === f.defaultRounds ? '' : ` --rounds ${rounds}`}`;
}

/** What a RichFigureResult adds: tables in its own units, skipped parts with the reason, its targets. */
function extras(r: FigureResult, table: (h: string[], rows: string[][]) => string): string[] {
  const x = r as RichFigureResult;
  return [
    ...(x.tables ?? []).flatMap((t) => ['', `${t.title}:`, '', table(t.header, t.rows)]),
    ...(x.skipped?.length ? ['', ...x.skipped.map((s) => `SKIPPED: ${s}`)] : []),
    ...(x.targets?.length ? ['', ...x.targets.map(targetLine)] : []),
  ];
}

const WHOLE_RUN_TARGET_S = 20 * 60;

/** Every PASS/FAIL line of the run, each with its figure: targets, target lines in notes, the run's own time. */
function targetLines(opts: Options, done: Done[], seconds: number): string[] {
  const lines = done.flatMap(({ figure: f, result: r }) =>
    [
      ...((r as RichFigureResult).targets ?? []).map(targetLine),
      ...r.notes.filter((n) => /^(PASS|FAIL): /.test(n)),
    ].map((l) => l.replace(/^(PASS|FAIL): /, `$1: ${f.id}: `)),
  );
  const took = `${seconds.toFixed(0)} s (${(seconds / 60).toFixed(1)} min) from the bench's start to its report, without the build before it`;
  if (opts.figures.length === FIGURES.length && !opts.smoke) {
    lines.push(
      `${seconds < WHOLE_RUN_TARGET_S ? 'PASS' : 'FAIL'}: whole \`npm run bench\`: ${took}, target under ${WHOLE_RUN_TARGET_S / 60} min`,
    );
  } else {
    lines.push(
      `not evaluated: the whole-run target (under ${WHOLE_RUN_TARGET_S / 60} min) applies to \`npm run bench\` with every figure at default rounds; this run: ${took}`,
    );
  }
  return lines;
}

const svgPath = (out: string) => `${out.replace(/\.md$/, '')}.svg`;

function report(opts: Options, facts: [string, string][], done: Done[], started: Date, seconds: number): string {
  const md: string[] = [
    `# Benchmark results${opts.smoke ? ' (smoke run: reduced rounds, not for quoting)' : ''}`,
    '',
    `Produced by \`${invocation()}\` on ${started.toISOString()}; the run took ${seconds.toFixed(1)} s.`,
    'Times are per operation, in milliseconds, as seen by the calling Node process. p90 is by nearest rank ' +
      '(a time that was measured); ratios divide by the baseline method of the same operation.',
    '',
    '## Machine',
    '',
    markdownTable(
      ['fact', 'value'],
      [
        ...facts,
        [
          'load average at end (1/5/15 min)',
          os
            .loadavg()
            .map((x) => x.toFixed(2))
            .join(' '),
        ],
      ],
    ),
    '',
    '## Targets',
    '',
    'Reported, never asserted.',
    '',
    ...targetLines(opts, done, seconds).map((l) => `- ${l}`),
    '',
    '## Plot',
    '',
    `![Each figure's ratios (macnet / built-in, or method / baseline) and measured values against their targets](${path.basename(svgPath(opts.out))})`,
    '',
    'One panel per figure part, each on its own linear axis from 0; bars green when they meet their target, red when ' +
      'they miss it, blue when no target applies; dashed line: parity (1×), solid orange: target; a whisker, where ' +
      'drawn, spans the quartiles of the per-round ratios. ' +
      `Source: \`${path.basename(svgPath(opts.out))}\`, drawn by bench/plot.ts from the figures below.`,
  ];
  for (const { figure: f, result: r, seconds: s } of done) {
    md.push(
      '',
      `## ${f.id}: ${f.title}`,
      '',
      `Command: \`${reproduce(f, r.rounds)}\` (or \`npm run bench\` for the whole suite). ` +
        `Rounds: ${r.rounds} (one round: ${r.roundUnit}). Took ${s.toFixed(1)} s.`,
      '',
      r.what,
      '',
      'Methods:',
      '',
      ...Object.entries(r.methods).map(([k, v]) => `- \`${k}\`${k === r.baseline ? ' (baseline)' : ''}: ${v}`),
      '',
      markdownTable(
        header(r),
        rows(r).map((x) => x.cells),
      ),
      ...extras(r, markdownTable),
      '',
      'Notes:',
      '',
      ...r.notes.map((n) => `- ${n}`),
    );
  }
  return `${md.join('\n')}\n`;
}

async function main(): Promise<number> {
  let opts: Options | undefined;
  try {
    opts = parse(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof UsageError) && (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') !== true) throw e;
    console.error(`bench: ${(e as Error).message}\n${usage()}`);
    return 2;
  }
  if (!opts) return 0;
  if (process.getuid?.() !== 0) {
    console.error('bench: needs root (it creates a network namespace)');
    return 1;
  }

  // The lab reads MACNET_ENGINE (test/lab/engines.ts); the current engine is fetched into its cache if needed.
  const e = opts.engine === 'current' ? ensureCurrentEngine() : systemEngine();
  if (typeof e === 'string') {
    console.error(`bench: --engine ${opts.engine}: ${e}`);
    return 1;
  }
  const engine = 'engine' in e ? e.engine : e;
  process.env['MACNET_ENGINE'] = engine.id;
  process.stderr.write(`bench: Docker figures on ${engine.label} (${engine.source})\n`);
  const started = new Date();
  const facts = machine(engine);
  const log = (msg: string) => process.stderr.write(`${msg}\n`);
  const done: Done[] = [];
  for (const figure of opts.figures) {
    const rounds = opts.rounds(figure);
    log(`bench: ${figure.id}, ${rounds} rounds${opts.smoke ? ' (smoke run)' : ''}`);
    const t0 = performance.now();
    let result: FigureResult;
    try {
      result = await figure.run({ rounds, log });
    } catch (e) {
      // No report: a partial one would replace the last complete results with fewer figures.
      console.error(`bench: ${figure.id} failed, no report written:`, e);
      return 1;
    }
    const seconds = (performance.now() - t0) / 1000;
    done.push({ figure, result, seconds });
    console.log(
      `\n${figure.id}: ${figure.title}\n${result.rounds} rounds (${result.roundUnit}), ${seconds.toFixed(1)} s\n`,
    );
    console.log(
      textTable(
        header(result),
        rows(result).map((x) => x.cells),
      ),
    );
    for (const line of extras(result, textTable)) console.log(line);
  }
  const total = (Date.now() - started.getTime()) / 1000;
  fs.mkdirSync(path.dirname(opts.out), { recursive: true });
  fs.writeFileSync(opts.out, report(opts, facts, done, started, total));
  fs.writeFileSync(
    svgPath(opts.out),
    renderSvg(
      panelsOf(done.map((d) => ({ id: d.figure.id, result: d.result }))),
      `${started.toISOString().slice(0, 16).replace('T', ' ')} UTC, ${os.cpus().length} cores, ${invocation()}`,
    ),
  );
  console.log(`\nTargets (reported, never asserted):\n${targetLines(opts, done, total).join('\n')}`);
  console.log(
    `\nwrote ${path.relative(process.cwd(), opts.out) || opts.out} and ${path.basename(svgPath(opts.out))} (${total.toFixed(1)} s)`,
  );
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    console.error('bench:', e);
    process.exitCode = 1;
  },
);
