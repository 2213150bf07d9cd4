// What test/run.js prints after the passes, and what fails the run beyond a failed test: the counts per engine
// (Docker tests carry "[docker X.Y.Z]" in their names), the skips grouped by reason, a skip whose reason is not
// in test/skip-policy.ts when in CI, and Docker tests that ran on one engine but not on the other.
import { ALLOWED_SKIPS, allowedSkip } from '../skip-policy';

export interface Outcome {
  name: string;
  nesting: number;
  /** The engine label of the nearest enclosing "[docker X.Y.Z] ..." test, itself included. */
  engine?: string;
  outcome: 'pass' | 'fail' | 'skip' | 'todo';
  reason?: string;
  file?: string;
  durationMs?: number;
}

export interface Summary {
  lines: string[];
  /** Why the run fails although no test failed (empty: it does not). */
  problems: string[];
}

const ENGINE_PREFIX = /^\[docker [^\]]+\] /;

function counts(os: Outcome[]): string {
  const n = (k: Outcome['outcome']) => os.filter((o) => o.outcome === k).length;
  return `${os.length} tests: ${n('pass')} pass, ${n('skip')} skip, ${n('fail')} fail${n('todo') ? `, ${n('todo')} todo` : ''}`;
}

/**
 * @param engines the engines Docker tests ran on, label → where it came from, in running order
 * @param ci whether unlisted skips fail the run (CI=true)
 */
export function summarize(outcomes: Outcome[], engines: Map<string, string>, ci: boolean): Summary {
  const lines: string[] = [];
  const problems: string[] = [];
  for (const [label, source] of engines) {
    const os = outcomes.filter((o) => o.engine === label);
    lines.push(`${label} (${source}): ${counts(os)}`);
  }
  const other = outcomes.filter((o) => !o.engine);
  lines.push(`tests without dockerd: ${counts(other)}`);

  // The same Docker tests on every engine: a file that failed to load on one of them shows here.
  const labels = [...engines.keys()];
  if (labels.length > 1) {
    const namesOf = (l: string) =>
      new Set(
        outcomes
          .filter((o) => o.engine === l && o.nesting === 0 && ENGINE_PREFIX.test(o.name))
          .map((o) => o.name.replace(ENGINE_PREFIX, '')),
      );
    const sets = labels.map(namesOf);
    for (const [i, l] of labels.entries()) {
      for (const [j, m] of labels.entries()) {
        if (i === j) continue;
        const missing = [...sets[j]!].filter((n) => !sets[i]!.has(n));
        if (missing.length)
          problems.push(
            `${missing.length} Docker tests ran on ${m} but not on ${l}: ${missing.slice(0, 5).join('; ')}`,
          );
      }
    }
  }

  const skips = outcomes.filter((o) => o.outcome === 'skip');
  if (skips.length) {
    lines.push('skips by reason:');
    const groups = new Map<string, Outcome[]>();
    for (const s of skips) {
      const id = allowedSkip(s.reason ?? '') ?? 'NOT ALLOWED';
      groups.set(id, [...(groups.get(id) ?? []), s]);
    }
    for (const [id, ss] of groups) {
      const covered = ALLOWED_SKIPS.find((r) => r.id === id)?.coveredBy ?? 'a reason missing from test/skip-policy.ts';
      lines.push(`  ${id} (${ss.length}; covered by ${covered})`);
      for (const s of ss) lines.push(`    ${s.name}: ${s.reason || '(no reason given)'}`);
    }
    const bad = groups.get('NOT ALLOWED') ?? [];
    if (ci && bad.length) {
      problems.push(
        `${bad.length} skips with a reason test/skip-policy.ts does not allow (CI=true): ${bad.map((s) => `"${s.name}": ${s.reason || '(no reason)'}`).join('; ')}`,
      );
    }
  }
  return { lines, problems };
}
