// The catalogue, the docs and the code that raises errors agree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CATALOGUE, MacnetError } from '../../src/errors';

const root = path.join(__dirname, '..', '..', '..');

test('every catalogue code is documented in docs/errors.md and every documented code exists', () => {
  const doc = fs.readFileSync(path.join(root, 'docs', 'errors.md'), 'utf8');
  const documented = [...doc.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
  assert.deepEqual([...documented].sort(), Object.keys(CATALOGUE).sort());
});

test('the README lists every catalogue code', () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  for (const code of Object.keys(CATALOGUE)) assert.ok(readme.includes(`\`${code}\``), `${code} missing from README.md`);
});

test('every code raised in src/ is in the catalogue', () => {
  const used = new Set<string>();
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts')) for (const m of fs.readFileSync(p, 'utf8').matchAll(/(?:MacnetError|KernelError)\(\s*'([A-Z_]+)'/g)) used.add(m[1]!);
    }
  };
  walk(path.join(root, 'src'));
  assert.ok(used.size > 0);
  for (const code of used) assert.ok(code in CATALOGUE, `${code} is raised but not in the catalogue`);
});

test('a MacnetError carries code, message, frozen details and cause', () => {
  const cause = new Error('inner');
  const e = new MacnetError('INVALID_ARGUMENT', 'mtu 10 is not a valid MTU', { option: 'mtu' }, cause);
  assert.equal(e.code, 'INVALID_ARGUMENT');
  assert.equal(e.cause, cause);
  assert.ok(Object.isFrozen(e.details));
});
