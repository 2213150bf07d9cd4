// Node's TAP reporter output, parsed: how a test run inside the VM (test/lab/vm.ts) reports to the host, where
// each of its tests is mirrored by name (test/vm/kernel-in-vm.test.ts, test/vm/docker-in-vm.test.ts).
export interface TapTest {
  name: string;
  ok: boolean;
  directive?: { kind: 'SKIP' | 'TODO'; reason: string };
  /** The YAML block under the result line (error, expected, actual, stack). */
  diagnostic: string;
  children: TapTest[];
}

/** Node's TAP reporter: subtests indented 4 spaces per level, each result line after its children. */
export function parseTap(tap: string): { tests: TapTest[]; summary: Record<string, number> } {
  const done: TapTest[][] = [[]];
  const summary: Record<string, number> = {};
  let yaml: { test: TapTest; indent: string } | undefined;
  for (const line of tap.split('\n')) {
    if (yaml) {
      if (line.trim() === '...') yaml = undefined;
      else if (line.trim() !== '---') yaml.test.diagnostic += line.slice(yaml.indent.length) + '\n';
      continue;
    }
    const m = /^( *)(not ok|ok) \d+ - ((?:\\.|[^\\#])*?)\s*(?:# (SKIP|TODO)\b\s*(.*))?$/.exec(line);
    if (m) {
      const level = m[1]!.length / 4;
      const t: TapTest = {
        name: m[3]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c)),
        ok: m[2] === 'ok',
        ...(m[4] && { directive: { kind: m[4] as 'SKIP' | 'TODO', reason: m[5] ?? '' } }),
        diagnostic: '',
        children: done[level + 1] ?? [],
      };
      done[level + 1] = [];
      (done[level] ??= []).push(t);
      yaml = { test: t, indent: `${m[1]}  ` };
      continue;
    }
    const s = /^# (tests|suites|pass|fail|cancelled|skipped|todo) (\d+)$/.exec(line);
    if (s) summary[s[1]!] = Number(s[2]);
  }
  return { tests: done[0]!, summary };
}

export const flatten = (ts: TapTest[]): TapTest[] => ts.flatMap((t) => [t, ...flatten(t.children)]);
