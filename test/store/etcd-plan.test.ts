// The pure parts of the etcd store: how a txn becomes one etcd transaction (etcd-txn.ts), and which failures a
// write may be sent again after (etcd-errors.ts). The behaviour against real members is in etcd.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GRPCDeadlineExceededError, GRPCUnavailableError, EtcdAuthenticationFailedError, EtcdError } from 'etcd3';
import { BrokenCircuitError } from 'cockatiel';
import { planTxn } from '../../src/store/etcd-txn';
import { classify } from '../../src/store/etcd-errors';
import { createdValues, judge } from '../../src/store/etcd-verify';

test('planTxn: conditions on untouched keys become compares; one write per key, in first-write order', () => {
  const plan = planTxn([
    { op: 'create', key: 'c', value: '1' },
    { op: 'update', key: 'u', value: '2', revision: 7 },
    { op: 'delete', key: 'd', revision: 9 },
    { op: 'put', key: 'c', value: '3' },
    { op: 'delete', key: 'x' },
  ]);
  assert.equal(plan.possible, true);
  assert.deepEqual(plan.compares, [
    { key: 'c', target: 'create', revision: 0 },
    { key: 'u', target: 'mod', revision: 7 },
    { key: 'd', target: 'mod', revision: 9 },
  ]);
  assert.deepEqual(
    [...plan.writes],
    [
      ['c', '3'],
      ['u', '2'],
      ['d', null],
      ['x', null],
    ],
  );
});

test('planTxn: conditions on keys the txn wrote are decided from what it wrote', () => {
  assert.equal(
    planTxn([
      { op: 'create', key: 'k', value: '1' },
      { op: 'create', key: 'k', value: '2' },
    ]).possible,
    false,
  );
  assert.equal(
    planTxn([
      { op: 'put', key: 'k', value: '1' },
      { op: 'update', key: 'k', value: '2', revision: 5 },
    ]).possible,
    false,
  );
  assert.equal(
    planTxn([
      { op: 'delete', key: 'k' },
      { op: 'delete', key: 'k', revision: 5 },
    ]).possible,
    false,
  );
  const recreate = planTxn([
    { op: 'put', key: 'k', value: '1' },
    { op: 'delete', key: 'k' },
    { op: 'create', key: 'k', value: '3' },
  ]);
  assert.deepEqual([recreate.possible, recreate.compares, [...recreate.writes]], [true, [], [['k', '3']]]);
  // A missing key has mod_revision 0 in etcd: an update "at revision 0" must not pass as a compare.
  assert.equal(planTxn([{ op: 'update', key: 'k', value: '1', revision: 0 }]).possible, false);
});

test('classify: only a request that never left may be sent again; credentials apart', () => {
  assert.equal(
    classify(
      new GRPCUnavailableError(
        '14 UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 198.18.19.1:2379',
      ),
    ),
    'unsent',
  );
  assert.equal(classify(new BrokenCircuitError()), 'unsent');
  assert.equal(classify(new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded')), 'ambiguous');
  assert.equal(classify(new GRPCUnavailableError('14 UNAVAILABLE: Connection dropped')), 'ambiguous');
  assert.equal(
    classify(new EtcdAuthenticationFailedError('etcdserver: authentication failed, invalid user ID or password')),
    'auth',
  );
  assert.equal(classify(new EtcdError('3 INVALID_ARGUMENT: etcdserver: user name is empty')), 'auth');
  assert.equal(classify(new EtcdError('3 INVALID_ARGUMENT: etcdserver: too many operations in txn request')), 'other');
});

test('a write etcd did not confirm: its creates, as etcd holds them now, say whether it was applied', () => {
  const plan = planTxn([
    { op: 'create', key: 'a', value: 'mine-a' },
    { op: 'create', key: 'b', value: 'mine-b' },
    { op: 'put', key: 'sticky', value: 'x' },
    { op: 'create', key: 'gone', value: 'y' },
    { op: 'delete', key: 'gone' },
  ]);
  const created = createdValues(plan);
  assert.deepEqual(
    [...created],
    [
      ['a', 'mine-a'],
      ['b', 'mine-b'],
    ],
  );
  const held = (a?: string, b?: string) =>
    new Map([
      ['a', a],
      ['b', b],
    ]);
  assert.equal(judge(created, held('mine-a', 'mine-b')), 'applied');
  assert.equal(judge(created, held(undefined, undefined)), 'not-applied');
  assert.equal(judge(created, held(undefined, 'other host')), 'refused');
  // Half of an atomic transaction cannot be: no verdict, the write fails as unconfirmed.
  assert.equal(judge(created, held('mine-a', undefined)), undefined);
});
