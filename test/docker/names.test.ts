// Names across hosts (issue 20, docs/names.md), end to end: two lab hosts with dockerd and macnet on one etcd, one
// network on both with host access, each host's containers using their own host's host-access address as DNS
// (`--dns`; Docker's embedded resolver forwards to it what it does not know). A container pings another host's
// containers by name, by alias and by <name>.<host label>; a name used on both hosts answers with both addresses;
// a removed container's name stops resolving; a daemon killed while a container is renamed re-syncs when it is back.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { describe, test } from '../lab/engine-test';
import { clusterLab, type ClusterLab } from '../lab/cluster-lab';
import { addressOn, createMacnetNetwork, dockerOk as ok, lookupIn, runSleeper } from '../lab/networks';
import { type LabHost } from '../lab/lab';

const NET = 'lan';
/** Each host's address on the network (host access), and the DNS its containers use. */
const HOST_ADDR = ['198.18.15.241', '198.18.15.242'];

let cl: ClusterLab;

before(async () => {
  cl = await clusterLab({ hosts: 2, etcd: 'router' });
});
after(() => cl?.close());

const ipOf = (h: LabHost, c: string) => addressOn(h, c, NET);

const lookup = (h: LabHost, c: string, name: string, server?: string) => lookupIn(h, c, name, 'a', server);

async function until<T>(what: string, get: () => Promise<T>, done: (v: T) => boolean, ms = 15_000): Promise<T> {
  const t0 = Date.now();
  let v = await get();
  while (!done(v)) {
    assert.ok(Date.now() - t0 < ms, `not within ${ms} ms: ${what} (last: ${JSON.stringify(v)})`);
    await new Promise((r) => setTimeout(r, 200));
    v = await get();
  }
  return v;
}

describe('names across hosts on etcd', () => {
  test('by name, alias and <name>.<host> from the other host; both addresses for a name on both; rm; a restarted daemon re-syncs', async (t) => {
    const [h1, h2] = cl.lab.hosts as [LabHost, LabHost];
    // No aux address: macnet's IPAM never hands out an address a host has or the LAN answers for.
    for (const [i, h] of cl.lab.hosts.entries())
      await createMacnetNetwork(h, NET, { opts: { host_access_address: HOST_ADDR[i]! } });
    const runOn = (h: LabHost, i: number, name: string, ...args: string[]) =>
      runSleeper(h, name, NET, { dns: HOST_ADDR[i]!, args });
    await runOn(h1, 0, 'web', '--network-alias', 'www');
    await runOn(h2, 1, 'client');
    const web = await ipOf(h1, 'web');
    const client = await ipOf(h2, 'client');

    const t0 = Date.now();
    await until(
      'web resolves on h2',
      () => lookup(h2, 'client', 'web'),
      (a) => a.join() === web,
    );
    t.diagnostic(`web resolved on the other host ${Date.now() - t0} ms after docker run returned (nslookup polled)`);
    for (const name of ['web', 'www', 'web.h1', 'www.h1']) {
      const r = await h2.docker('exec', 'client', 'ping', '-c', '1', '-W', '2', name);
      assert.equal(r.code, 0, `ping ${name} from h2: ${r.stdout}${r.stderr}`);
    }
    // And the other way round: h1's container finds h2's by name.
    await until(
      'client resolves on h1',
      () => lookup(h1, 'web', 'client.h2'),
      (a) => a.join() === client,
    );
    assert.equal((await h1.docker('exec', 'web', 'ping', '-c', '1', '-W', '2', 'client')).code, 0);

    // The same name on both hosts: macnet's DNS answers with both addresses, <name>.<host> picks one. (Asked
    // directly: Docker's embedded resolver answers a name it knows on its own host itself, without forwarding.)
    await runOn(h2, 1, 'web2', '--network-alias', 'www');
    const web2 = await ipOf(h2, 'web2');
    const both = [web, web2].sort().join();
    for (const [h, c, server] of [
      [h2, 'client', HOST_ADDR[1]!],
      [h1, 'web', HOST_ADDR[0]!],
    ] as const)
      await until(
        `www on both hosts, from ${h.name}`,
        () => lookup(h, c, 'www', server),
        (a) => a.join() === both,
      );
    assert.deepEqual(await lookup(h2, 'client', 'www.h1'), [web]);
    assert.deepEqual(await lookup(h2, 'client', 'www.h2', HOST_ADDR[1]), [web2]);
    t.diagnostic(`www through h2's embedded resolver: ${(await lookup(h2, 'client', 'www')).join(', ')}`);

    // Removed: its name stops resolving on the other host.
    const t1 = Date.now();
    await ok(h1, 'rm', '-f', 'web');
    await until(
      'web gone on h2',
      () => lookup(h2, 'client', 'web.h1'),
      (a) => a.length === 0,
    );
    t.diagnostic(`web stopped resolving on the other host ${Date.now() - t1} ms after docker rm began`);
    assert.deepEqual(await lookup(h2, 'client', 'www'), [web2]);

    // h1's daemon killed; a container renamed meanwhile (no plugin call needed); back, it re-syncs from the engine.
    await runOn(h1, 0, 'late');
    const late = await ipOf(h1, 'late');
    await until(
      'late resolves on h2',
      () => lookup(h2, 'client', 'late'),
      (a) => a.join() === late,
    );
    await cl.daemons[0]!.stop('SIGKILL');
    await ok(h1, 'rename', 'late', 'later');
    await cl.daemons[0]!.restart();
    await until(
      'later resolves on h2 after h1 re-synced',
      () => lookup(h2, 'client', 'later'),
      (a) => a.join() === late,
    );
    assert.deepEqual(await lookup(h2, 'client', 'late'), [], 'the old name is gone');
  });
});
