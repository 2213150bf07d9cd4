// The LAN layer closed while a probe is still to come (the daemon stopping during a warm-set refill, which
// Warmer.close does not wait for): the probe fails, and no probe link is made after close — one would outlive the
// daemon, and its link-event subscription kept a stopped daemon's process alive (seen on Docker 28).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Lan } from '../../src/lan';
import { silentLogger } from '../../src/log';
import { PROBE_LINK_PATTERN } from '../../src/lan/probe-links';
import { nsFixture, type NsFixture } from '../kernel/fixture';

let f: NsFixture;
before(async () => {
  f = await nsFixture('lan-close');
  await f.k.links.create({ kind: 'veth', name: 'eth0', peer: { name: 'peer0' }, up: true });
  await f.k.links.setUp('peer0');
});
after(async () => {
  await f?.close();
});

const probeLinks = async () =>
  (await f.k.links.list()).filter((l) => PROBE_LINK_PATTERN.test(l.name)).map((l) => l.name);

test('after close, a probe fails and makes no probe link', async () => {
  const lan = new Lan(f.k, silentLogger, { windowMs: 100 });
  lan.attach({
    network: 'n1',
    kind: 'macvlan',
    parent: 'eth0',
    lanBehind: true,
    probeFrom: 'probe-link',
    subnets: ['198.18.61.0/24'],
    conflict: 'refuse',
  });
  assert.deepEqual(await lan.inUse('198.18.61.0/24', ['198.18.61.9']), new Map(), 'nothing answers');
  assert.equal((await probeLinks()).length, 1, 'the first probe made the probe link');
  await lan.close();
  assert.deepEqual(await probeLinks(), [], 'close removed it');
  await assert.rejects(lan.inUse('198.18.61.0/24', ['198.18.61.9']), /closed/);
  assert.deepEqual(await probeLinks(), [], 'a probe after close made none');
});
