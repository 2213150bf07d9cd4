// macnet scan's classification, pure: owners, conflicts, silent addresses, order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classify, ownerByMac } from '../../src/drivers/inventory';
import { hostsOf } from '../../src/drivers/scan';

const EP = '0a:11:11:11:11:11';
const known = {
  endpoints: [
    { address: '198.18.15.20', mac: EP, endpointId: 'e1'.repeat(32), link: 'mne1e1e1e1e1e' },
    { address: '198.18.15.21', mac: '0a:22:22:22:22:22', endpointId: 'e2'.repeat(32), link: 'mne2e2e2e2e2e' },
    { address: '198.18.15.22', mac: '0a:33:33:33:33:33', endpointId: 'e3'.repeat(32), link: 'mne3e3e3e3e3e' },
  ],
  host: [
    { address: '198.18.15.11', link: 'eth0', mac: '02:00:00:00:00:11' },
    { address: '198.18.15.254', link: 'mnh0123456789', mac: '02:00:00:00:00:fe' },
  ],
  hostMacs: ['02:00:00:00:00:11', '02:00:00:00:00:fe'],
  gateways: ['198.18.15.1'],
  stopped: [{ address: '198.18.15.30', name: 'web' }],
};

test('classify: owners by record, by kernel address, by gateway and by MAC signature; sorted numerically', () => {
  const rows = classify(
    new Map([
      ['198.18.15.1', ['02:00:00:00:00:01']],
      ['198.18.15.2', ['02:00:00:00:00:02', '02:00:00:00:00:99']],
      ['198.18.15.3', ['02:00:00:00:00:02']],
      ['198.18.15.11', ['02:00:00:00:00:fe']],
      ['198.18.15.12', ['02:00:00:00:00:12']],
      ['198.18.15.20', [EP]],
      ['198.18.15.21', ['0a:22:22:22:22:22', '02:00:00:00:00:02']],
      ['198.18.15.40', ['0a:44:44:44:44:44']],
      ['198.18.15.41', ['0e:55:55:55:55:55']],
      ['198.18.15.42', ['0a:66:66:66:66:66', '0e:55:55:55:55:55']],
      ['198.18.15.43', ['02:00:00:00:00:77', '0e:55:55:55:55:55']],
      ['198.18.15.254', ['02:00:00:00:00:fe']],
      ['198.18.15.99', []],
    ]),
    known,
  );
  const by = new Map(rows.map((r) => [r.address, r]));
  assert.deepEqual(
    rows.map((r) => r.address),
    [
      '198.18.15.1',
      '198.18.15.2',
      '198.18.15.3',
      '198.18.15.11',
      '198.18.15.12',
      '198.18.15.20',
      '198.18.15.21',
      '198.18.15.22',
      '198.18.15.30',
      '198.18.15.40',
      '198.18.15.41',
      '198.18.15.42',
      '198.18.15.43',
      '198.18.15.254',
    ],
  );
  assert.equal(by.get('198.18.15.1')!.owner, 'gateway');
  assert.deepEqual(
    [by.get('198.18.15.2')!.owner, by.get('198.18.15.2')!.conflict, by.get('198.18.15.2')!.mac],
    ['unknown', true, '02:00:00:00:00:02,02:00:00:00:00:99'],
  );
  assert.match(by.get('198.18.15.2')!.note, /^CONFLICT: 2 MACs answer/);
  assert.deepEqual([by.get('198.18.15.3')!.owner, by.get('198.18.15.3')!.conflict], ['unknown', false]);
  assert.deepEqual(
    [by.get('198.18.15.11')!.owner, by.get('198.18.15.11')!.mac, by.get('198.18.15.11')!.conflict],
    ['host', '02:00:00:00:00:fe', false],
    "the host-access link answers for the parent's address: one host",
  );
  assert.equal(by.get('198.18.15.12')!.owner, 'unknown');
  assert.deepEqual(
    [by.get('198.18.15.20')!.owner, by.get('198.18.15.20')!.conflict, by.get('198.18.15.20')!.note],
    ['container (this host)', false, `endpoint ${'e1'.repeat(6)}, link mne1e1e1e1e1e`],
  );
  assert.deepEqual(
    [by.get('198.18.15.21')!.owner, by.get('198.18.15.21')!.conflict],
    ['container (this host)', true],
    "a container's address answered by another MAC",
  );
  assert.match(
    by.get('198.18.15.21')!.note,
    /CONFLICT: 2 MACs answer: 0a:22:22:22:22:22 \(container \(this host\)\), 02:00:00:00:00:02 \(unknown\)/,
  );
  assert.match(by.get('198.18.15.22')!.note, /^silent: no reply/);
  assert.equal(by.get('198.18.15.22')!.mac, '0a:33:33:33:33:33');
  assert.match(by.get('198.18.15.30')!.note, /^silent: last address of stopped container web/);
  assert.equal(by.get('198.18.15.40')!.owner, 'macnet container (other host)');
  assert.equal(by.get('198.18.15.41')!.owner, 'macnet reserved (other host)');
  assert.deepEqual(
    [by.get('198.18.15.42')!.owner, by.get('198.18.15.42')!.conflict],
    ['macnet container (other host)', false],
    "its own host's probe link still defends a new container",
  );
  assert.match(by.get('198.18.15.42')!.note, /^just started/);
  assert.deepEqual(
    [by.get('198.18.15.43')!.owner, by.get('198.18.15.43')!.conflict],
    ['unknown', true],
    'a defended address that an unknown machine took',
  );
  assert.deepEqual(
    [by.get('198.18.15.254')!.owner, by.get('198.18.15.254')!.conflict],
    ['host', false],
    'the host-access link answering for itself',
  );
  assert.deepEqual(by.get('198.18.15.2')!.replies, [
    { mac: '02:00:00:00:00:02', count: 1 },
    { mac: '02:00:00:00:00:99', count: 1 },
  ]);
});

test('classify: one MAC answering twice is not a conflict but shows in replies; a silent gateway is listed', () => {
  const rows = classify(new Map([['198.18.15.5', ['02:00:00:00:00:05', '02:00:00:00:00:05']]]), {
    endpoints: [],
    host: [],
    hostMacs: [],
    gateways: ['198.18.15.1'],
    stopped: [],
  });
  assert.deepEqual(
    rows.map((r) => [r.address, r.owner, r.conflict]),
    [
      ['198.18.15.1', 'gateway', false],
      ['198.18.15.5', 'unknown', false],
    ],
  );
  assert.match(rows[0]!.note, /^silent/);
  assert.deepEqual(rows[1]!.replies, [{ mac: '02:00:00:00:00:05', count: 2 }]);
});

test('ownerByMac and hostsOf', () => {
  assert.equal(ownerByMac('0a:00:00:00:00:01'), 'macnet container (other host)');
  assert.equal(ownerByMac('0e:00:00:00:00:01'), 'macnet reserved (other host)');
  assert.equal(ownerByMac('02:42:ac:11:00:02'), 'unknown');
  assert.equal(hostsOf('198.18.15.0/24').length, 254);
  assert.deepEqual(hostsOf('198.18.15.0/30'), ['198.18.15.1', '198.18.15.2']);
  assert.deepEqual(hostsOf('198.18.15.4/31'), ['198.18.15.4', '198.18.15.5']);
  assert.equal(hostsOf('198.18.0.0/20').at(-1), '198.18.15.254');
});
