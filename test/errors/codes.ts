// What the catalogue test compares: the codes src/ raises, the catalogue's codes and the codes docs/errors.md
// documents. Pure functions over text, so the test can feed them planted sources and sets.

/**
 * A code raised with a literal: `new MacnetError('CODE', ...)`, `new KernelError('CODE', ...)`, a catalogue
 * template (`fail('CODE', facts)`, src/errors), or a plugin reply that fails without an error object
 * (`failedReply('CODE', ...)`, src/docker/server.ts).
 */
const RAISE = /\b(?:new\s+(?:MacnetError|KernelError)|failedReply|fail)\s*\(\s*(['"`])([A-Z][A-Z0-9_]*)\1/g;
/** Any construction of either error, to find those whose code is not a literal. */
const CONSTRUCT = /\bnew\s+(?:MacnetError|KernelError)\s*\(\s*(.)/g;

export interface Raised {
  /** Code → the files (and lines) that raise it. */
  readonly codes: Map<string, string[]>;
  /** "file:line" of every construction whose code is not a string literal (the scan cannot see which code). */
  readonly dynamic: string[];
}

const lineOf = (text: string, index: number) => text.slice(0, index).split('\n').length;

export function scanRaised(files: readonly { path: string; text: string }[]): Raised {
  const codes = new Map<string, string[]>();
  const dynamic: string[] = [];
  for (const { path, text } of files) {
    for (const m of text.matchAll(RAISE)) {
      const where = `${path}:${lineOf(text, m.index!)}`;
      codes.set(m[2]!, [...(codes.get(m[2]!) ?? []), where]);
    }
    for (const m of text.matchAll(CONSTRUCT)) {
      if (!`'"\``.includes(m[1]!)) dynamic.push(`${path}:${lineOf(text, m.index!)}`);
    }
  }
  return { codes, dynamic };
}

/** The codes in the table of docs/errors.md: rows that start with | `CODE` |. */
export const documentedCodes = (doc: string): string[] => [...doc.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]!);

/** Every disagreement between the three, one sentence each; empty when they agree. */
export function catalogueProblems(s: {
  raised: ReadonlyMap<string, readonly string[]>;
  catalogued: readonly string[];
  documented: readonly string[];
}): string[] {
  const problems: string[] = [];
  const catalogued = new Set(s.catalogued);
  const documented = new Set(s.documented);
  for (const [code, where] of s.raised) {
    if (!catalogued.has(code)) problems.push(`${code} is raised (${where.join(', ')}) but not in the catalogue`);
    if (!documented.has(code)) problems.push(`${code} is raised (${where.join(', ')}) but not in docs/errors.md`);
  }
  for (const code of catalogued) {
    if (!documented.has(code)) problems.push(`${code} is in the catalogue but not in docs/errors.md`);
    if (!s.raised.has(code)) problems.push(`${code} is in the catalogue but src/ never raises it`);
  }
  for (const code of documented) {
    if (!catalogued.has(code)) problems.push(`${code} is in docs/errors.md but not in the catalogue`);
    if (!s.raised.has(code) && !catalogued.has(code)) problems.push(`${code} is in docs/errors.md but never raised`);
  }
  const twice = s.documented.filter((c, i) => s.documented.indexOf(c) !== i);
  for (const code of new Set(twice)) problems.push(`${code} is documented twice in docs/errors.md`);
  return problems;
}
