// test/run.js's verdicts beyond failed tests: counts per engine, the skip policy (CI=true), and Docker tests that
// ran on one engine only. Pure: outcomes in, lines and problems out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { engineLacks, kernelLacks } from '../skip-policy';
import { type Outcome, summarize } from './summary';

const E20 = 'docker 20.10.24',
  E28 = 'docker 28.5.2';
const engines = new Map([
  [E20, 'system'],
  [E28, 'sid'],
]);
const docker = (engine: string, name: string, outcome: Outcome['outcome'] = 'pass', reason?: string): Outcome => ({
  name: `[${engine}] ${name}`,
  nesting: 0,
  engine,
  outcome,
  ...(reason !== undefined && { reason }),
});

test('counts per engine and for the tests without dockerd', () => {
  const s = summarize(
    [
      docker(E20, 'a'),
      docker(E20, 'b', 'skip', engineLacks('20.10.24+dfsg1', 'x', 28, 'y')),
      docker(E28, 'a'),
      docker(E28, 'b'),
      { name: 'unit', nesting: 0, outcome: 'fail' },
    ],
    engines,
    true,
  );
  assert.deepEqual(s.lines.slice(0, 3), [
    `${E20} (system): 2 tests: 1 pass, 1 skip, 0 fail`,
    `${E28} (sid): 2 tests: 2 pass, 0 skip, 0 fail`,
    'tests without dockerd: 1 tests: 0 pass, 0 skip, 1 fail',
  ]);
  assert.deepEqual(s.problems, []);
});

test('CI: a skip with a reason the policy does not list is a problem; listed reasons are not; outside CI only printed', () => {
  const outcomes = [
    docker(E20, 'kernel', 'skip', kernelLacks('ipvlan', '(network create: KERNEL_FEATURE_MISSING)')),
    docker(E28, 'kernel', 'skip', kernelLacks('ipvlan', '(network create: KERNEL_FEATURE_MISSING)')),
    { name: 'needs dnsmasq', nesting: 0, outcome: 'skip' as const, reason: 'dnsmasq is not installed' },
  ];
  const ci = summarize(outcomes, engines, true);
  assert.equal(ci.problems.length, 1);
  assert.match(
    ci.problems[0]!,
    /1 skips with a reason test\/skip-policy\.ts does not allow \(CI=true\): "needs dnsmasq": dnsmasq is not installed/,
  );
  assert.ok(ci.lines.includes('  NOT ALLOWED (1; covered by a reason missing from test/skip-policy.ts)'));
  assert.ok(ci.lines.some((l) => l.startsWith('  kernel-lacks-kind (2; covered by test/vm')));
  assert.deepEqual(summarize(outcomes, engines, false).problems, []);
});

test('a Docker test that ran on one engine only is a problem, named', () => {
  const s = summarize([docker(E20, 'a'), docker(E20, 'b'), docker(E28, 'a')], engines, false);
  assert.deepEqual(s.problems, [`1 Docker tests ran on ${E20} but not on ${E28}: b`]);
});
