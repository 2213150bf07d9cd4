// The command line's shared rules (README, "Exit status"): an argument error is a MacnetError thrown while a
// command parses its arguments, before it does anything; main() prints it as `macnet: CODE: message` with a hint
// to the command's --help and exits 2. Node's own parse errors (an unknown option, a missing value) get the same
// shape here.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { fail, MacnetError } from '../errors';

/** node:util parseArgs, strict, with its errors as INVALID_ARGUMENT naming the command. */
export function parseCommandArgs<O extends NonNullable<ParseArgsConfig['options']>>(
  command: string,
  argv: string[],
  options: O,
  allowPositionals = false,
) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals });
  } catch (e) {
    if (!String((e as { code?: string }).code).startsWith('ERR_PARSE_ARGS')) throw e;
    // "Unknown option '--x'. To specify a positional argument starting with a '-', ...": the first sentence.
    const first = (e as Error).message.split(/\.\s/)[0]!.replace(/\.$/, '');
    throw new MacnetError('INVALID_ARGUMENT', `${command}: ${first[0]!.toLowerCase()}${first.slice(1)}`, {
      command,
    });
  }
}

/** An option naming a directory: absolute, and not under something that is not a directory. */
export function directoryOption(option: string, dir: string): string {
  if (!path.isAbsolute(dir)) {
    throw fail('OPTION_INVALID', { option, value: dir, valid: 'give an absolute path' });
  }
  // The closest existing ancestor must be a directory: "/dev/null/x" can never be made.
  for (let p = dir; ; p = path.dirname(p)) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(p);
    } catch {
      /* not there yet: its parent decides */
    }
    if (st) {
      if (st.isDirectory()) return dir;
      throw fail('OPTION_INVALID', { option, value: dir, valid: `${p} is not a directory; give a directory's path` });
    }
    if (p === path.dirname(p)) return dir;
  }
}

/**
 * Creates a directory an option named, and its missing parents; an error is OPTION_INVALID with the errno,
 * never a stack trace. One level at a time rather than mkdirSync's `recursive`, which loops for ever under
 * /proc (`--state-dir /proc/x` hung the daemon: Node retries a mkdir the kernel answers with ENOENT).
 */
export function makeDirectory(option: string, dir: string, mode: number): void {
  try {
    const missing: string[] = [];
    for (let p = path.resolve(dir); !fs.existsSync(p); p = path.dirname(p)) {
      missing.unshift(p);
      if (p === path.dirname(p)) break;
    }
    for (const p of missing) fs.mkdirSync(p, { mode });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new MacnetError(
      'OPTION_INVALID',
      `--${option} ${JSON.stringify(dir)}: cannot create it (${err.code ?? err.message}): give a directory ` +
        'this user may write',
      { option, value: dir },
    );
  }
}
