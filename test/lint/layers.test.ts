// The layer rules of eslint.config.mjs (README, "Design"): an import against them fails the lint with the rule's
// message, today's src/ keeps them, and each listed exception is still needed. Planted code is linted as text with
// a path inside src/, so nothing is written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ESLint } from 'eslint';

const root = path.join(__dirname, '..', '..', '..');
const RULE = 'no-restricted-imports';
const eslint = new ESLint({ cwd: root });

/** The layer rule's messages for `code` linted as if it were the file `file` (relative to the checkout). */
async function layerErrors(code: string, file: string): Promise<string[]> {
  const [r] = await eslint.lintText(code, { filePath: path.join(root, file) });
  assert.equal(r!.fatalErrorCount, 0, `${file}: ${r!.messages.map((m) => m.message).join('; ')}`);
  return r!.messages.filter((m) => m.ruleId === RULE).map((m) => m.message);
}

const importOf = (spec: string) => `import type * as planted from '${spec}';\nexport type Planted = typeof planted;\n`;

test('an upward import from src/kernel fails the lint with the layer rule', async () => {
  assert.deepEqual(await layerErrors(importOf('../drivers/driver'), 'src/kernel/zz-planted.ts'), [
    "'../drivers/driver' import is restricted from being used by a pattern. " +
      'Layer rule: src/kernel may import errors, types, log of src/ (eslint.config.mjs, README "Design").',
  ]);
  // From a subdirectory, and as a re-export.
  assert.equal(
    (await layerErrors("export { Ipam } from '../../ipam/ipam';\n", 'src/kernel/nl/zz-planted.ts')).length,
    1,
  );
});

test('imports against the graph fail; imports along it pass', async () => {
  const refused: [string, string][] = [
    ['src/drivers/zz-planted.ts', '../docker/handlers'], // up
    ['src/drivers/zz-planted.ts', '../cli/daemon'], // up
    ['src/ipam/zz-planted.ts', '../drivers/driver'], // sideways: drivers and ipam import nothing of each other
    ['src/drivers/zz-planted.ts', '../ipam/ipam'], // the same, the other way
    ['src/lan/zz-planted.ts', '../drivers/driver'], // the LAN layer is below the driver and the IPAM
    ['src/lan/zz-planted.ts', '../ipam/ipam'],
    ['src/kernel/zz-planted.ts', '../lan'],
    ['src/docker/zz-planted.ts', '../cli/main'], // cli is the composition root above docker
    ['src/store/zz-planted.ts', '../kernel'], // siblings below drivers and ipam
    ['src/probe/zz-planted.ts', '../kernel'],
    ['src/dhcp/zz-planted.ts', '../probe/prober'],
    ['src/errors/zz-planted.ts', '../types/address'], // errors, types and log import nothing of src/
    ['src/log/zz-planted.ts', '../errors'],
  ];
  for (const [file, spec] of refused) {
    assert.equal((await layerErrors(importOf(spec), file)).length, 1, `${file} importing ${spec} must fail`);
  }
  const allowed: [string, string][] = [
    ['src/cli/zz-planted.ts', '../docker/server'],
    ['src/docker/zz-planted.ts', '../drivers/driver'],
    ['src/docker/zz-planted.ts', '../ipam/ipam'],
    ['src/drivers/zz-planted.ts', '../kernel'],
    ['src/drivers/zz-planted.ts', '../probe/prober'],
    ['src/drivers/zz-planted.ts', '../lan'],
    ['src/ipam/zz-planted.ts', '../lan/leases'],
    ['src/lan/zz-planted.ts', '../probe/prober'],
    ['src/lan/zz-planted.ts', '../store/types'],
    ['src/ipam/zz-planted.ts', '../dhcp'],
    ['src/ipam/zz-planted.ts', '../store/types'],
    ['src/kernel/zz-planted.ts', '../errors'],
    ['src/kernel/nl/zz-planted.ts', '../../types/address'],
    ['src/kernel/nl/zz-planted.ts', '../errors'], // src/kernel/errors.ts: the layer's own file
  ];
  for (const [file, spec] of allowed) {
    assert.deepEqual(await layerErrors(importOf(spec), file), [], `${file} importing ${spec} must pass`);
  }
});

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test("today's src/ keeps the layer rules", async () => {
  const results = await eslint.lintFiles(['src']);
  assert.ok(results.length >= 50, `linted ${results.length} files`);
  const broken = results.flatMap((r) =>
    r.messages
      .filter((m) => m.ruleId === RULE || m.fatal)
      .map((m) => `${path.relative(root, r.filePath)}:${m.line}: ${m.message}`),
  );
  assert.deepEqual(broken, []);
});

test('each listed exception is still needed (issue 18 removed the last; a new one must pass this)', async () => {
  const ruleOf = async (file: string) =>
    JSON.stringify(((await eslint.calculateConfigForFile(path.join(root, file))) as ESLintConfig).rules?.[RULE]);
  for (const file of sources(path.join(root, 'src')).map((f) => path.relative(root, f))) {
    const planted = path.join(path.dirname(file), 'zz-planted.ts');
    if ((await ruleOf(file)) === (await ruleOf(planted))) continue;
    // The file's own imports, linted under the layer's plain rule, break it: the exception lets something through.
    const errors = await layerErrors(fs.readFileSync(path.join(root, file), 'utf8'), planted);
    assert.ok(errors.length > 0, `${file} has a layer exception in eslint.config.mjs but needs none`);
  }
});

type ESLintConfig = { rules?: Record<string, unknown> };
