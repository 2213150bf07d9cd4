// The run and the report: a check that throws becomes a warning of its own without hiding the others; the text
// form (one line per finding, its fix indented below); the JSON document; the exit status from the worst finding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildReport, CHECKS, exitStatus, renderJson, renderText, runChecks, type Check } from '../../src/doctor';
import { Tree } from './trees';

test('runChecks: a check that throws is a doctor.check-failed warning; the others still report', async () => {
  const broken: Check = function brokenCheck() {
    return Promise.reject(new Error('no such file'));
  };
  const fine: Check = () => Promise.resolve([{ check: 'x.fine', severity: 'ok', summary: 'fine' }]);
  const t = Tree.make();
  try {
    const fs = await runChecks(t.ctx(), [broken, fine]);
    assert.deepEqual(
      fs.map((f) => [f.check, f.severity, f.summary]),
      [
        ['doctor.check-failed', 'warn', 'the check brokenCheck failed: no such file'],
        ['x.fine', 'ok', 'fine'],
      ],
    );
    assert.ok(CHECKS.length >= 4);
  } finally {
    t.remove();
  }
});

test('the report: text lines with indented fixes, the JSON document, exit 1 only when something blocks', () => {
  const t = Tree.make();
  try {
    const ctx = { ...t.ctx({ parent: 'eth0', network: { name: 'lan', kind: 'macvlan' } }), gateway: '198.18.15.1' };
    const findings = [
      { check: 'env.hypervisor', severity: 'ok' as const, summary: 'bare metal' },
      { check: 'parent.kind', severity: 'blocking' as const, summary: 'eth0 is wireless', fix: 'use a wire' },
    ];
    const r = buildReport(ctx, findings, { name: 'h1', kernel: '6.1.0' });
    assert.equal(
      renderText(r),
      'ok       env.hypervisor  bare metal\n' +
        'blocking parent.kind     eth0 is wireless\n' +
        '                         fix: use a wire\n' +
        'network lan (parent eth0) on h1: 1 blocking, 0 warn, 1 ok; worst blocking\n',
    );
    assert.deepEqual(JSON.parse(renderJson(r)), {
      version: 1,
      host: { name: 'h1', kernel: '6.1.0' },
      parent: 'eth0',
      network: { name: 'lan', id: 'a'.repeat(64), kind: 'macvlan' },
      gateway: '198.18.15.1',
      environment: { name: 'bare-metal' },
      findings,
      worst: 'blocking',
    });
    assert.equal(exitStatus(r), 1);
    assert.equal(exitStatus(buildReport(t.ctx(), findings.slice(0, 1), { name: 'h1', kernel: '6.1.0' })), 0);
    assert.equal(exitStatus({ worst: 'warn' }), 0);
  } finally {
    t.remove();
  }
});
