// The logger writes an error as fields (issue 18): message, code, details, the stack of an unplanned error and
// the chain of causes, bounded in depth; a planned MacnetError's stack is left out (its message says it all).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MacnetError } from '../../src/errors';
import { createLogger } from '../../src/log';

function capture() {
  const lines: Record<string, unknown>[] = [];
  return { log: createLogger('info', {}, (l) => lines.push(JSON.parse(l) as Record<string, unknown>)), lines };
}

test('an error field carries code, details and the whole cause chain', () => {
  const { log, lines } = capture();
  const root = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
  const mid = new MacnetError('STORE_ERROR', 'open state: EACCES', { path: '/var/lib/macnet' }, root);
  const top = new MacnetError('NETWORK_CONFIG_INVALID', 'network abc: cannot be stored', { network: 'abc' }, mid);
  log.warn('refused', { error: top });
  const e = lines[0]!['error'] as Record<string, unknown>;
  assert.equal(e['code'], 'NETWORK_CONFIG_INVALID');
  assert.deepEqual(e['details'], { network: 'abc' });
  assert.equal(e['stack'], undefined, "a MacnetError's stack is not written");
  const c1 = e['cause'] as Record<string, unknown>;
  assert.equal(c1['code'], 'STORE_ERROR');
  assert.deepEqual(c1['details'], { path: '/var/lib/macnet' });
  const c2 = c1['cause'] as Record<string, unknown>;
  assert.equal(c2['code'], 'EACCES');
  assert.equal(c2['message'], 'EACCES: permission denied');
  assert.match(String(c2['stack']), /^Error: EACCES/, "an unplanned error's stack is written");
});

test('a cause chain is cut after five levels; a cause that is not an Error is written as text', () => {
  const { log, lines } = capture();
  let e: Error = new Error('level 0', { cause: 'a string cause' });
  for (let i = 1; i <= 7; i++) e = new Error(`level ${i}`, { cause: e });
  log.error('deep', { error: e });
  let f = lines[0]!['error'] as Record<string, unknown>;
  for (let i = 0; i < 5; i++) f = f['cause'] as Record<string, unknown>;
  assert.equal(f['message'], 'level 2');
  assert.equal(f['cause'], '(further causes not shown)');
  const { log: log2, lines: l2 } = capture();
  log2.error('text cause', { error: new Error('top', { cause: 'plain words' }) });
  assert.equal((l2[0]!['error'] as Record<string, unknown>)['cause'], 'plain words');
});
