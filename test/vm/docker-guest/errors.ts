// Guest scenarios: the error table's ipvlan and vlan rows (test/docker/errors-table.test.ts has the rest), which
// need a kernel with ipvlan and 802.1q links to mean anything. The text exactly as the user sees it; afterwards
// the host's links and Docker's networks are as before.
import assert from 'node:assert/strict';
import type { ExpectationId } from './expectations';
import { create, g, hostLinks, lines, mknet, ok, scenario } from './fixture';

const REMOTE = 'Error response from daemon: remote: ';
const S = ['--subnet', '198.18.81.0/24'];

/** A refused `docker network create`: its text, and nothing changed in the host or in Docker. */
function refused(id: ExpectationId, fixture: string[] | undefined, args: string[], want: (fx: string) => string): void {
  scenario(id, async () => {
    const { h1 } = g();
    const fx = fixture ? await mknet(h1, 'fx', ...fixture) : '';
    const before = [await hostLinks(h1), lines(await ok(h1, 'network', 'ls', '-q'))];
    const r = await create(h1, 'bad', ...args);
    assert.notEqual(r.code, 0, `docker network create ${args.join(' ')} succeeded`);
    assert.equal(r.stderr.trim(), want(fx.slice(0, 12)));
    assert.deepEqual([await hostLinks(h1), lines(await ok(h1, 'network', 'ls', '-q'))], before);
  });
}

const IPVLAN_FX = ['-o', 'parent=eth0', '-o', 'ipvlan_mode=l2', '--subnet', '198.18.80.0/24'];

refused(
  'error-ipvlan-twice',
  IPVLAN_FX,
  [...S, '-o', 'parent=eth0', '-o', 'ipvlan_mode=l3'],
  (fx) =>
    `${REMOTE}PARENT_IN_USE: ipvlan network ${fx} already uses parent "eth0"; ipvlan networks cannot share a parent ` +
    '(the ipvlan mode is per parent); use a vlan sub-interface such as eth0.<vid>',
);
refused(
  'error-macvlan-beside-ipvlan',
  IPVLAN_FX,
  [...S, '-o', 'parent=eth0', '-o', 'kind=macvlan'],
  (fx) =>
    `${REMOTE}PARENT_IN_USE: ipvlan network ${fx} already uses parent "eth0"; macvlan and ipvlan cannot share a ` +
    'parent (the kernel allows one kind per parent)',
);
for (const vid of [0, 4095])
  refused(
    vid === 0 ? 'error-vlan-0' : 'error-vlan-4095',
    undefined,
    [...S, '-o', `parent=eth0.${vid}`, '-o', 'ipvlan_mode=l2'],
    () => `${REMOTE}PARENT_INVALID: option parent="eth0.${vid}": vlan id must be between 1 and 4094, received ${vid}`,
  );
