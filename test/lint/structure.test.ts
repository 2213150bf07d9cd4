// The structure rules of eslint.config.mjs (issue 18, docs/architecture.md): planted code, linted as text with a
// path inside src/, fails with each rule's message, and code along the rules passes. Nothing is written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ESLint } from 'eslint';

const root = path.join(__dirname, '..', '..', '..');
const eslint = new ESLint({ cwd: root });

/** The messages of `rules` for `code` linted as if it were the file `file` (relative to the checkout). */
async function errors(code: string, file: string, rules = ['no-restricted-syntax', 'max-lines']): Promise<string[]> {
  const [r] = await eslint.lintText(code, { filePath: path.join(root, file) });
  assert.equal(r!.fatalErrorCount, 0, `${file}: ${r!.messages.map((m) => m.message).join('; ')}`);
  return r!.messages.filter((m) => rules.includes(m.ruleId ?? '')).map((m) => m.message);
}

const KIND = 'A branch on a link kind belongs in src/drivers/kinds (ask kindOf(config); docs/architecture.md).';

test('a branch on a link kind fails outside src/drivers/kinds, in any form; other kinds and the kinds folder pass', async () => {
  const branches = [
    "export const f = (c: { kind: string }) => c.kind === 'macvlan';\n",
    "export const f = (c: { kind: string }) => 'ipvlan' !== c.kind;\n",
    "export function f(k: string) {\n  switch (k) {\n    case 'ipvlan':\n      return 1;\n  }\n  return 0;\n}\n",
  ];
  for (const file of ['src/drivers/zz-planted.ts', 'src/lan/zz-planted.ts', 'src/ipam/zz-planted.ts']) {
    for (const code of branches) assert.deepEqual(await errors(code, file), [KIND], `${file}: ${code}`);
  }
  for (const code of branches) assert.deepEqual(await errors(code, 'src/drivers/kinds/zz-planted.ts'), []);
  // A parent's kind (vlan, dummy, bridge) is no link kind of the strategy.
  assert.deepEqual(
    await errors("export const f = (r: { kind: string }) => r.kind === 'vlan';\n", 'src/drivers/zz-planted.ts'),
    [],
  );
});

test('a file of src over 350 lines fails the lint; tests may be longer', async () => {
  const long = Array.from({ length: 351 }, (_, i) => `export const v${i} = ${i};`).join('\n') + '\n';
  assert.deepEqual(await errors(long, 'src/lan/zz-planted.ts'), [
    'File has too many lines (351). Maximum allowed is 350.',
  ]);
  assert.deepEqual(await errors(long, 'test/lan/zz-planted.test.ts'), []);
});

test('the daemon hands the driver and the IPAM services, never closures between them', async () => {
  const planted = (arg: string) =>
    "import { NetworkDriver } from '../drivers/driver';\nimport { Ipam } from '../ipam/ipam';\n" +
    'declare const k: never, store: never, log: never, lan: never, ipam: Ipam;\n' +
    `export const d = new NetworkDriver(k, store, log, ${arg});\n`;
  const file = 'src/cli/daemon.ts';
  for (const arg of [
    '{ lan, ipamHolds: (s: string, ip: string) => ipam.allocatedHere(s, ip) }',
    '{ lan, ipamHolds: function (s: string, ip: string) { return ipam.allocatedHere(s, ip); } }',
    '{ lan, ipamHolds: ipam.allocatedHere.bind(ipam) }',
  ]) {
    const got = await errors(planted(arg), file, ['no-restricted-syntax']);
    assert.equal(got.length, 1, `${arg}: ${got.join('; ')}`);
    assert.match(got[0]!, /no closures between driver and IPAM/);
  }
  assert.deepEqual(await errors(planted('{ lan, addresses: ipam }'), file, ['no-restricted-syntax']), []);
});

test("today's src/ keeps the structure rules", async () => {
  const results = await eslint.lintFiles(['src']);
  const broken = results.flatMap((r) =>
    r.messages
      .filter((m) => m.ruleId === 'no-restricted-syntax' || m.ruleId === 'max-lines')
      .map((m) => `${path.relative(root, r.filePath)}:${m.line}: ${m.message}`),
  );
  assert.deepEqual(broken, []);
});
