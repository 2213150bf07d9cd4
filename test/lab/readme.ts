// The README's examples as the tests run them: the fenced code blocks of one section, so that a test runs what a
// new user reads, and a change of either shows up as a failure.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { projectRoot } from './vm';

/**
 * The fenced blocks (language, body) under the heading `heading` (exact text, any level), up to the next heading
 * of that level or higher.
 */
export function readmeBlocks(heading: string): { lang: string; body: string }[] {
  const lines = fs.readFileSync(path.join(projectRoot, 'README.md'), 'utf8').split('\n');
  const start = lines.findIndex((l) => /^#+ /.test(l) && l.replace(/^#+ /, '') === heading);
  if (start < 0) throw new Error(`README.md has no heading "${heading}"`);
  const level = /^#+/.exec(lines[start]!)![0].length;
  const blocks: { lang: string; body: string }[] = [];
  let open: { lang: string; body: string[] } | undefined;
  for (const l of lines.slice(start + 1)) {
    if (!open && /^#+ /.test(l) && /^#+/.exec(l)![0].length <= level) break;
    const fence = /^```(\S*)\s*$/.exec(l);
    if (fence && !open) open = { lang: fence[1]!, body: [] };
    else if (fence && open) {
      blocks.push({ lang: open.lang, body: open.body.join('\n') + '\n' });
      open = undefined;
    } else open?.body.push(l);
  }
  return blocks;
}
