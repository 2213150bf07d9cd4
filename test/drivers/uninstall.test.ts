// Which links `macnet uninstall` takes for macnet's (src/drivers/uninstall.ts), on a listed set of links: by
// name and kind, a parent only by its record and kind; never a device without a kind (loopback, a NIC).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DriverState } from '../../src/drivers/state';
import { macnetLinks } from '../../src/drivers/uninstall';
import type { Kernel, Link } from '../../src/kernel';

const link = (index: number, name: string, kind?: string, parentIndex?: number): Link =>
  ({ index, name, ...(kind && { kind }), ...(parentIndex && { parentIndex }) }) as unknown as Link;

test('macnet links: probe, host-access and endpoint links by name and kind, parents by record; children first', async () => {
  const all = [
    link(1, 'lo'),
    link(2, 'eth0'),
    link(3, 'eth0.50', 'vlan', 2),
    link(4, 'mnp3e616bf67d', 'macvlan', 2),
    link(5, 'mnh3e616bf67d', 'ipvlan', 2),
    link(6, 'mnd5d5d5d5d5d', 'macvlan', 3),
    link(7, 'mnp0123456789', 'veth'), // an operator's look-alikes
    link(8, 'mnh0123456789', 'veth'),
    link(9, 'br-mn', 'bridge'), // a bridge of that name, but the record says dummy
    link(10, 'eth1'), // recorded as a vlan macnet made, but a device without a kind now
  ];
  const k = { links: { list: async () => all } } as unknown as Kernel;
  const state = {
    parents: async () => [
      { name: 'eth0.50', kind: 'vlan', networks: [] },
      { name: 'br-mn', kind: 'dummy', networks: [] },
      { name: 'eth1', kind: 'vlan', networks: [] },
    ],
  } as unknown as DriverState;
  assert.deepEqual(await macnetLinks(k, state), [
    { name: 'mnp3e616bf67d', kind: 'macvlan', role: 'probe link', parent: 'eth0' },
    { name: 'mnh3e616bf67d', kind: 'ipvlan', role: 'host-access link', parent: 'eth0' },
    { name: 'mnd5d5d5d5d5d', kind: 'macvlan', role: 'endpoint link', parent: 'eth0.50' },
    { name: 'eth0.50', kind: 'vlan', role: 'parent', parent: 'eth0' },
  ]);
  assert.deepEqual(
    (await macnetLinks(k, undefined)).map((l) => l.name),
    ['mnp3e616bf67d', 'mnh3e616bf67d', 'mnd5d5d5d5d5d'],
    'without a state: no parent, and never lo or eth0',
  );
});
