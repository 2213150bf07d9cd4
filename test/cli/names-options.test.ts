// The daemon's names options (src/cli/names.ts): the default DNS label comes from the host name and never stops the
// daemon (a bare VM's kernel calls itself "(none)"); a label given on purpose that is no DNS label is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labelOf, parseNamesOptions } from '../../src/cli/names';
import { isMacnetError } from '../../src/errors';

test('the default label is the host name made a DNS label; a name that leaves nothing is "host"', () => {
  assert.equal(labelOf('node1'), 'node1');
  assert.equal(labelOf('Node1.example.com'), 'node1');
  assert.equal(labelOf('(none)'), 'none');
  assert.equal(labelOf('my_host'), 'my-host');
  assert.equal(labelOf('--'), 'host');
  assert.equal(labelOf(''), 'host');
  assert.equal(labelOf('a'.repeat(70)), 'a'.repeat(63));
  assert.equal(labelOf(`${'a'.repeat(62)}_b`), 'a'.repeat(62));
});

test('a label given on purpose is refused unless it is a DNS label, naming the option and the value', () => {
  assert.equal(parseNamesOptions({ 'dns-host-label': 'Node-2' }).label, 'node-2');
  for (const bad of ['node_1', '-node', 'node-', 'a'.repeat(64), '', 'a.b'])
    assert.throws(
      () => parseNamesOptions({ 'dns-host-label': bad }),
      (e) =>
        isMacnetError(e, 'OPTION_INVALID') && e.message.includes('--dns-host-label') && e.message.includes(`"${bad}"`),
      bad,
    );
});
