// macnet v0.1.0 (commit 5369ab9, the release before state schema versions), built from this repository's own
// history into a temp dir for the upgrade test: `git archive`, this checkout's node_modules linked in (the same
// better-sqlite3), its addon built with npm's node-gyp against this Node's headers, its TypeScript compiled.
// Nothing is fetched. About 10 s.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run, sh } from './sh';

export const V010_COMMIT = '5369ab9';
const ROOT = path.join(__dirname, '..', '..', '..');

export interface OldBuild {
  /** Its bin/macnet, for Daemon.start({ main }). */
  readonly main: string;
  remove(): void;
}

export async function buildV010(): Promise<OldBuild> {
  const dir = fs.mkdtempSync(path.join('/tmp', `mnt-${process.pid}-v010-`));
  const remove = () => fs.rmSync(dir, { recursive: true, force: true });
  try {
    const tar = await run('sh', ['-c', `git -C "$0" archive ${V010_COMMIT} | tar -x -C "$1"`, ROOT, dir]);
    if (tar.code !== 0) throw new Error(`git archive ${V010_COMMIT} (needs this repository's history): ${tar.stderr}`);
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    const npm = fs.realpathSync((await sh('sh', '-c', 'command -v npm')).trim());
    const gyp = path.join(path.dirname(npm), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    const nodeDir = path.dirname(path.dirname(fs.realpathSync(process.execPath)));
    const g = await run(process.execPath, [gyp, 'rebuild', `--nodedir=${nodeDir}`, `--directory=${dir}`], {
      timeoutMs: 120_000,
    });
    if (g.code !== 0) throw new Error(`node-gyp rebuild of v0.1.0's addon: ${g.stderr}`);
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const t = await run(process.execPath, [tsc, '-p', path.join(dir, 'tsconfig.json')], { timeoutMs: 120_000 });
    if (t.code !== 0) throw new Error(`tsc of v0.1.0: ${t.stdout}${t.stderr}`);
    const main = path.join(dir, 'bin', 'macnet');
    const v = await run(process.execPath, [main, '--version']);
    if (v.stdout.trim() !== '0.1.0') throw new Error(`v0.1.0's bin/macnet --version: ${v.stdout}${v.stderr}`);
    return { main, remove };
  } catch (e) {
    remove();
    throw e;
  }
}
