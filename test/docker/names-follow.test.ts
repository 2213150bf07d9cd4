// Where the names come from (issue 20): the events follower (src/docker/names-follow.ts) against a real dockerd of
// a lab host, writing name records into a store (src/names/records.ts) that a NameView (src/names/view.ts) follows,
// as the daemon will: a container's name, network alias and address as `docker inspect` shows them; a second
// network connected and disconnected; a rename; `docker stop` and `docker start`; `docker rm`; and a follower
// started afresh after changes it did not see (its full sync).
import assert from 'node:assert/strict';
import { EngineApi } from '../../src/docker/engine';
import { NamesFollower } from '../../src/docker/names-follow';
import { NameWriter, NAMES } from '../../src/names/records';
import { NameView } from '../../src/names/view';
import { MemoryStore } from '../../src/store/memory';
import { silentLogger } from '../../src/log';
import { h, lanNic, lines, mknet, ok, scenario, settings, start } from './fixture';

/** What the driver knows in the daemon: which networks are macnet's (here: asked of the engine). */
const macnetNetworks = {
  networkIds: async () => new Set(lines(await ok('network', 'ls', '-q', '--no-trunc', '--filter', 'driver=macnet'))),
};

async function until(what: string, done: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await done()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`not within 10 s: ${what}`);
}

scenario(
  'names follow the engine: name, alias and address; connect, disconnect, rename, stop and start, rm; a fresh sync',
  async () => {
    await lanNic('nf0');
    await mknet('nf-a', '-o', 'parent=nf0', '--subnet', '198.18.171.0/24');
    await lanNic('nf1');
    await mknet('nf-b', '-o', 'parent=nf1', '--subnet', '198.18.172.0/24');
    await start('web', 'nf-a', '--network-alias', 'www');
    const store = new MemoryStore();
    const view = new NameView(store);
    await view.start();
    const follower = new NamesFollower(
      new EngineApi(h.dockerSocket),
      macnetNetworks,
      new NameWriter(store, 'host-1-id', 'host-1'),
      silentLogger,
    );
    try {
      follower.start();
      const webA = (await settings('web', 'nf-a')).IPAddress;
      await until('web answered with its address', () => view.names.addresses('web')?.v4[0] === webA);
      assert.deepEqual(view.names.addresses('www'), { v4: [webA], v6: [] });
      assert.deepEqual(view.names.addresses('web.host-1'), { v4: [webA], v6: [] });

      // Connected to a second macnet network at run time: both addresses; disconnected: the first only.
      await ok('network', 'connect', 'nf-b', 'web');
      const webB = (await settings('web', 'nf-b')).IPAddress;
      await until('web on both networks', () => view.names.addresses('web')?.v4.length === 2);
      assert.deepEqual(view.names.addresses('web')!.v4, [webA, webB].sort());
      await ok('network', 'disconnect', 'nf-b', 'web');
      await until('web on nf-a only', () => view.names.addresses('web')?.v4.length === 1);

      await ok('rename', 'web', 'site');
      await until('renamed', () => view.names.addresses('site') !== undefined);
      assert.equal(view.names.addresses('web'), undefined);

      // Stopped: its records go (dockerd disconnects a stopped container's endpoints, the event the follower acts
      // on); started again: its name is back, with the address it has now.
      await ok('stop', '-t', '1', 'site');
      await until('site gone while stopped', () => view.names.addresses('site') === undefined);
      await ok('start', 'site');
      const siteA = (await settings('site', 'nf-a')).IPAddress;
      await until('site back once started', () => view.names.addresses('site')?.v4[0] === siteA);

      // Changes the follower does not see: its next start makes the records match the engine again.
      await follower.close();
      await start('db', 'nf-a');
      await ok('rm', '-f', 'site');
      const again = new NamesFollower(
        new EngineApi(h.dockerSocket),
        macnetNetworks,
        new NameWriter(store, 'host-1-id', 'host-1'),
        silentLogger,
      );
      again.start();
      try {
        await until(
          'db named, site gone',
          () => view.names.addresses('db') !== undefined && !view.names.addresses('site'),
        );
        assert.equal((await store.list(NAMES)).length, 1);
        await ok('rm', '-f', 'db');
        await until('db gone', () => view.names.addresses('db') === undefined);
      } finally {
        await again.close();
      }
    } finally {
      await follower.close();
      await view.close();
    }
  },
);
