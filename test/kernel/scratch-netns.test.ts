// ScratchNetns (a namespace held by one fd) and links created directly in another namespace: what `macnet
// doctor` relies on to leave nothing behind. The proofs are the kernel's: a passthru macvlan is refused on a parent
// while any macvlan child of it exists anywhere, and made once none does.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Kernel, ScratchNetns } from '../../src/kernel';
import { nsFixture, type NsFixture } from './fixture';

let f: NsFixture;
before(async () => {
  f = await nsFixture('scratch');
  await f.k.links.create({ kind: 'veth', name: 'sp0', peer: { name: 'sp1' }, up: true });
});
after(() => f.close());

/** Whether eth0-like `sp0` has no macvlan child left anywhere: a passthru one can be made (and is removed again). */
async function parentFree(): Promise<boolean> {
  try {
    await f.k.links.create({ kind: 'macvlan', name: 'sp-pt', parent: 'sp0', mode: 'passthru' });
  } catch {
    return false;
  }
  await f.k.links.delete('sp-pt');
  return true;
}

test('a macvlan created directly in a scratch namespace: never in ours, gone with the namespace', async () => {
  const ns = ScratchNetns.open();
  let closed = false;
  try {
    assert.match(ns.path, new RegExp(`^/proc/${process.pid}/fd/\\d+$`));
    assert.notEqual(fs.statSync(ns.path).ino, fs.statSync('/proc/self/ns/net').ino, 'a namespace of its own');
    const l = await f.k.links.create({
      kind: 'macvlan',
      name: 'sp-child',
      parent: 'sp0',
      mode: 'bridge',
      netns: ns.path,
    });
    assert.equal(l.name, 'sp-child', 'read back where it was made');
    assert.equal(l.parentNetnsId !== undefined, true, 'its parent is in another namespace, as seen from there');
    assert.equal(await f.k.links.find('sp-child'), undefined, 'not in the namespace of the parent');
    const inside = await Kernel.with(ns.path, (k) => k.links.list());
    assert.deepEqual(inside.map((x) => x.name).sort(), ['lo', 'sp-child']);
    assert.equal(await parentFree(), false, 'the child holds the parent while the namespace lives');
    ns.close();
    closed = true;
    assert.equal(ns.closed, true);
    // The kernel tears the namespace down in a work queue: give it a moment.
    let free = false;
    for (let i = 0; i < 50 && !free; i++) {
      free = await parentFree();
      if (!free) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(free, 'the child outlived its namespace');
  } finally {
    if (!closed) ns.close();
  }
});

test('a link created in a namespace that is not there: NETNS_NOT_FOUND, nothing made here', async () => {
  await assert.rejects(
    f.k.links.create({ kind: 'macvlan', name: 'sp-x', parent: 'sp0', netns: '/run/netns/macnet-no-such-ns' }),
    (e: Error & { code?: string }) => e.code === 'NETNS_NOT_FOUND' && /macnet-no-such-ns/.test(e.message),
  );
  assert.equal(await f.k.links.find('sp-x'), undefined);
});
