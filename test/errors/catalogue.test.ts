// The catalogue, docs/errors.md, the README and the code that raises errors agree: every code src/ raises is in
// the catalogue and the docs, and every catalogued or documented code is raised somewhere in src/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CATALOGUE, MacnetError } from '../../src/errors';
import { catalogueProblems, documentedCodes, scanRaised } from './codes';

const root = path.join(__dirname, '..', '..', '..');

function sources(dir: string): { path: string; text: string }[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return p.endsWith('.ts') ? [{ path: path.relative(root, p), text: fs.readFileSync(p, 'utf8') }] : [];
  });
}

// Constructions whose code is not a literal, each with the reason the scan may skip it.
const DYNAMIC_RAISES: Record<string, string> = {
  // `macnet scan` re-raises the code of the daemon's reply ("CODE: message"); the daemon raised it literally.
  'src/cli/scan.ts': "relays the daemon's code",
  // `macnet store migrate` re-raises the etcd store's code (STORE_UNAVAILABLE, STORE_AUTH_FAILED, STORE_ERROR) of a
  // write that failed, with what it undid; the store raised it literally.
  'src/cli/store-migrate.ts': "relays the etcd store's code",
  // fail(code, facts) builds the error of the code its caller names; the scan reads those calls' literals.
  'src/errors/index.ts': 'fail() raises the literal code of its call site',
};

test('src/, the catalogue and docs/errors.md name the same codes', () => {
  const raised = scanRaised(sources(path.join(root, 'src')));
  assert.ok(raised.codes.size >= 20, `the scan found only ${raised.codes.size} codes: has the raise pattern changed?`);
  const problems = catalogueProblems({
    raised: raised.codes,
    catalogued: Object.keys(CATALOGUE),
    documented: documentedCodes(fs.readFileSync(path.join(root, 'docs', 'errors.md'), 'utf8')),
  });
  assert.deepEqual(problems, []);
  assert.deepEqual(
    raised.dynamic.map((w) => w.replace(/:\d+$/, '')),
    Object.keys(DYNAMIC_RAISES),
    'an error constructed with a code that is not a literal: raise a literal code, or list the file with a reason',
  );
});

test('the check names each kind of disagreement (planted sets)', () => {
  const raised = new Map([
    ['A_CODE', ['src/a.ts:1']],
    ['B_CODE', ['src/b.ts:2']],
  ]);
  assert.deepEqual(
    catalogueProblems({ raised, catalogued: ['A_CODE', 'B_CODE'], documented: ['A_CODE', 'B_CODE'] }),
    [],
  );
  assert.deepEqual(
    catalogueProblems({
      raised: new Map([...raised, ['NEW_CODE', ['src/c.ts:3']]]),
      catalogued: ['A_CODE', 'B_CODE'],
      documented: ['A_CODE', 'B_CODE'],
    }),
    [
      'NEW_CODE is raised (src/c.ts:3) but not in the catalogue',
      'NEW_CODE is raised (src/c.ts:3) but not in docs/errors.md',
    ],
  );
  assert.deepEqual(
    catalogueProblems({
      raised,
      catalogued: ['A_CODE', 'B_CODE', 'DEAD_CODE'],
      documented: ['A_CODE', 'B_CODE', 'DEAD_CODE'],
    }),
    ['DEAD_CODE is in the catalogue but src/ never raises it'],
  );
  assert.deepEqual(catalogueProblems({ raised, catalogued: ['A_CODE', 'B_CODE'], documented: ['A_CODE'] }), [
    'B_CODE is raised (src/b.ts:2) but not in docs/errors.md',
    'B_CODE is in the catalogue but not in docs/errors.md',
  ]);
  assert.deepEqual(
    catalogueProblems({
      raised,
      catalogued: ['A_CODE', 'B_CODE'],
      documented: ['A_CODE', 'B_CODE', 'OLD_CODE', 'A_CODE'],
    }),
    [
      'OLD_CODE is in docs/errors.md but not in the catalogue',
      'OLD_CODE is in docs/errors.md but never raised',
      'A_CODE is documented twice in docs/errors.md',
    ],
  );
});

test('the scan finds literal codes across lines and flags codes that are not literals (planted source)', () => {
  const text = [
    "throw new MacnetError('A_CODE', 'one line');",
    'return new KernelError(',
    "  'B_CODE',",
    '  `across lines`,',
    ');',
    'throw new MacnetError(code as ErrorCode, message);',
    "throw fail('C_CODE', { option, value, valid });",
    "const s = 'new MacnetError is a phrase, not a raise';",
  ].join('\n');
  const r = scanRaised([{ path: 'src/x.ts', text }]);
  assert.deepEqual(
    [...r.codes],
    [
      ['A_CODE', ['src/x.ts:1']],
      ['B_CODE', ['src/x.ts:2']],
      ['C_CODE', ['src/x.ts:7']],
    ],
  );
  assert.deepEqual(r.dynamic, ['src/x.ts:6']);
  assert.deepEqual(documentedCodes('| code | meaning |\n|---|---|\n| `A_CODE` | x | y |\n`B_CODE` in prose\n'), [
    'A_CODE',
  ]);
});

test('the README lists every catalogue code', () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  for (const code of Object.keys(CATALOGUE))
    assert.ok(readme.includes(`\`${code}\``), `${code} missing from README.md`);
});

test('a MacnetError carries code, message, frozen details and cause', () => {
  const cause = new Error('inner');
  const e = new MacnetError('INVALID_ARGUMENT', 'mtu 10 is not a valid MTU', { option: 'mtu' }, cause);
  assert.equal(e.code, 'INVALID_ARGUMENT');
  assert.equal(e.cause, cause);
  assert.ok(Object.isFrozen(e.details));
});
