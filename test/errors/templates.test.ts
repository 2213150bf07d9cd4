// The catalogue's message templates give the texts the call sites wrote before them, byte for byte (users and
// tests compare them), with the same details.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fail, MacnetError } from '../../src/errors';

const shape = (e: MacnetError) => ({ code: e.code, message: e.message, details: { ...e.details } });

test('ADDRESS_CONFLICT: on the LAN (answered, probing) and offered by a DHCP server', () => {
  const lan = { address: '198.18.15.9', mac: '02:00:00:00:00:09', subnet: '198.18.15.0/24' };
  assert.deepEqual(shape(fail('ADDRESS_CONFLICT', { ...lan, reason: 'answered' })), {
    code: 'ADDRESS_CONFLICT',
    message:
      'address 198.18.15.9 is in use on the LAN by 02:00:00:00:00:09 (it answered a probe); pick another address, ' +
      'or create the network with -o conflict=warn to use it anyway',
    details: lan,
  });
  assert.match(
    fail('ADDRESS_CONFLICT', { ...lan, reason: 'probing' }).message,
    /by 02:00:00:00:00:09 \(it is probing for the address right now\); pick another/,
  );
  assert.deepEqual(
    shape(fail('ADDRESS_CONFLICT', { address: '198.18.15.9', server: '198.18.15.1', holder: 'container web' })),
    {
      code: 'ADDRESS_CONFLICT',
      message:
        'the DHCP server 198.18.15.1 offered 198.18.15.9, which container web on this host already uses (a static ' +
        "--ip or the gateway inside the server's range?); declined it: keep static addresses out of the server's range",
      details: { address: '198.18.15.9', server: '198.18.15.1' },
    },
  );
});

test('OPTION_INVALID: a flag, a network option and an --ipam-opt of a call', () => {
  assert.deepEqual(shape(fail('OPTION_INVALID', { option: 'probe-window', value: '5', valid: 'give ms' })), {
    code: 'OPTION_INVALID',
    message: '--probe-window "5" is not valid: give ms',
    details: { option: 'probe-window', value: '5' },
  });
  const long = 'x'.repeat(300);
  const opt = fail('OPTION_INVALID', { as: 'driver-opt', option: 'mode', value: long, valid: 'use bridge' });
  assert.match(opt.message, /^option mode="x{199}… \(302 characters\) is not valid: use bridge$/);
  assert.equal(opt.details.value, opt.message.slice('option mode='.length, -' is not valid: use bridge'.length));
  assert.equal(
    fail('OPTION_INVALID', { as: 'ipam-opt', call: 'RequestPool', option: 'mode', value: 'x', valid: 'use pool' })
      .message,
    'RequestPool: --ipam-opt mode="x" is not valid: use pool',
  );
});

test('INVALID_ARGUMENT: a named value, with or without what is valid', () => {
  const e = fail('INVALID_ARGUMENT', { what: 'arp_ignore', value: 9, valid: 'use 0 to 8', details: { option: 'a' } });
  assert.deepEqual(shape(e), {
    code: 'INVALID_ARGUMENT',
    message: 'arp_ignore 9 is not valid: use 0 to 8',
    details: { option: 'a' },
  });
  assert.equal(
    fail('INVALID_ARGUMENT', { what: 'sysctl name', value: 'a/b', details: {} }).message,
    'sysctl name "a/b" is not valid',
  );
});

test('the not-found codes: plugin calls, scan and DHCP', () => {
  const id = 'a'.repeat(64);
  assert.deepEqual(shape(fail('NETWORK_NOT_FOUND', { call: 'CreateEndpoint', network: id })), {
    code: 'NETWORK_NOT_FOUND',
    message: 'CreateEndpoint: network aaaaaaaaaaaa is not known to macnet (was its state dir removed?)',
    details: { network: id },
  });
  assert.equal(
    fail('NETWORK_NOT_FOUND', { call: 'scan', network: 'lan', docker: '/run/docker.sock' }).message,
    'scan: Docker at unix:///run/docker.sock has no network "lan"; ' +
      '`docker network ls --filter driver=macnet` lists the macnet networks',
  );
  assert.equal(
    fail('NETWORK_NOT_FOUND', { call: 'scan', network: 'abc', daemon: true }).message,
    'scan: no macnet network with id "abc" (or an id starting so) on this daemon; ' +
      '`docker network ls --filter driver=macnet` lists the networks macnet serves',
  );
  assert.deepEqual(shape(fail('NETWORK_NOT_FOUND', { call: 'DHCP', subnet: '198.18.15.0/24' })), {
    code: 'NETWORK_NOT_FOUND',
    message:
      'DHCP: no macnet network on this host uses subnet 198.18.15.0/24 (is the network being created or removed?)',
    details: { subnet: '198.18.15.0/24' },
  });
  assert.deepEqual(shape(fail('ENDPOINT_NOT_FOUND', { call: 'Join', endpoint: 'e'.repeat(64), network: id })), {
    code: 'ENDPOINT_NOT_FOUND',
    message: 'Join: endpoint eeeeeeeeeeee of network aaaaaaaaaaaa is not known to macnet',
    details: { endpoint: 'e'.repeat(64) },
  });
  assert.deepEqual(shape(fail('IPAM_POOL_NOT_FOUND', { call: 'ReleasePool', poolId: 'p1' })), {
    code: 'IPAM_POOL_NOT_FOUND',
    message: 'ReleasePool: no pool with ID "p1" (was its network removed?)',
    details: { poolId: '"p1"' },
  });
});

test('the etcd store errors name the operation, the endpoints, the reason and the last error; the cause is kept', () => {
  const cause = new Error('connect ECONNREFUSED');
  const facts = {
    op: 'get',
    key: 'net/1',
    endpoints: ['https://e1:2379', 'https://e2:2379'],
    timeoutMs: 2000,
    reason: 'no answer within 2000 ms',
    lastError: 'ECONNREFUSED',
  };
  const e = fail('STORE_UNAVAILABLE', facts, cause);
  assert.deepEqual(shape(e), {
    code: 'STORE_UNAVAILABLE',
    message:
      'store get "net/1" on etcd https://e1:2379,https://e2:2379: no answer within 2000 ms; last error: ECONNREFUSED',
    details: { op: 'get', key: 'net/1', endpoints: facts.endpoints, timeoutMs: 2000 },
  });
  assert.equal(e.cause, cause);
  assert.equal(fail('STORE_AUTH_FAILED', facts).code, 'STORE_AUTH_FAILED');
  assert.equal(fail('STORE_ERROR', facts).message, e.message);
});

test('STORE_ERROR of a record that is not JSON names its key and the reader (decodeRecord)', async () => {
  const { decodeRecord, encodeRecord } = await import('../../src/store/records');
  assert.deepEqual(decodeRecord('ipam/pools/x', encodeRecord({ a: 1 }), 'IPAM load'), { a: 1 });
  assert.throws(
    () => decodeRecord('ipam/pools/x', '{', 'IPAM load'),
    (e: MacnetError) =>
      e.code === 'STORE_ERROR' &&
      /^IPAM load: unreadable record ipam\/pools\/x: /.test(e.message) &&
      e.details.key === 'ipam/pools/x' &&
      e.cause instanceof SyntaxError,
  );
});

test('STORE_MIGRATE_CONFLICT names each conflict (20 in the message, all in the details) and what was not written', () => {
  const one = { key: 'ipam/addresses/LocalDefault/198.18.15.0_24/198.18.15.3', what: 'held by h2', host: 'h2' };
  const e = fail('STORE_MIGRATE_CONFLICT', { etcd: 'etcd http://e1:2379 prefix macnet/', conflicts: [one] });
  assert.deepEqual(shape(e), {
    code: 'STORE_MIGRATE_CONFLICT',
    message:
      'store migrate to etcd http://e1:2379 prefix macnet/: 1 conflict with what etcd holds; nothing was written to ' +
      'etcd and the SQLite state is unchanged: ipam/addresses/LocalDefault/198.18.15.0_24/198.18.15.3: held by h2',
    details: { etcd: 'etcd http://e1:2379 prefix macnet/', conflicts: [one] },
  });
  const many = Array.from({ length: 22 }, (_, i) => ({ key: `k${i}`, what: `w${i}` }));
  const m = fail('STORE_MIGRATE_CONFLICT', { etcd: 'etcd', conflicts: many });
  assert.match(m.message, /22 conflicts .*k19: w19; and 2 more$/);
  assert.equal((m.details.conflicts as unknown[]).length, 22);
});
