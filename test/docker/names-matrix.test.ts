// Names across hosts (issue 20's acceptance lab): three lab hosts with dockerd and macnet on a three-member etcd on
// the hosts' LAN addresses, one dual-stack macnet network, two containers per host using their own host's DNS
// (`--dns` = the host-access address). Side by side in the same file, Docker's built-in macvlan on the same LAN:
// no container finds another host's by name there. With macnet every cell of the reachability table is reachable
// (9 of 9: host access on, names across hosts), by name and alias, in IPv4 and IPv6 (AAAA). h3's network has
// -o dns=true instead of host_access=true: the option that turns the link on for naming. A host whose daemon
// stops: its names go from the other hosts once its presence is gone for the grace (docs/names.md); back, they
// return. A name on two hosts answers both addresses; `docker rm` ends a name; a killed daemon re-syncs a rename.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { describe, test } from '../lab/engine-test';
import { clusterLab, hostLabel, type ClusterLab } from '../lab/cluster-lab';
import {
  addressOn,
  createMacnetNetwork,
  dockerOk,
  hostAccessAddresses,
  lookupIn,
  nslookupAddresses,
  runSleeper,
} from '../lab/networks';
import { LAN, type LabHost } from '../lab/lab';
import { until } from '../lab/until';
import { NAMES_GRACE_MS } from '../../src/cli/names';

const NET = 'lan';

let cl: ClusterLab;
const hosts = (): LabHost[] => cl.lab.hosts;

interface Ctr {
  readonly name: string;
  readonly alias: string;
  readonly host: LabHost;
  readonly v4: string;
  readonly v6: string;
}
const ctrs: Ctr[] = [];
/** Each host's own addresses on the network (the host-side link's): its containers' DNS. */
const access = new Map<LabHost, { v4: string; v6: string | undefined }>();

before(async () => {
  cl = await clusterLab({ hosts: 3, ipv6: true, etcd: 'hosts' });
});
after(() => cl?.close());

const lines = (s: string) =>
  s
    .split('\n')
    .map((x) => x.trim())
    .filter(Boolean);

/** One ping from a container or a host; by name through busybox's resolver, bounded (a name nobody has: 3 s). */
async function ping(
  from: { exec: (...cmd: string[]) => Promise<{ code: number; stdout: string; stderr: string }> },
  to: string,
  v6 = false,
): Promise<{ ok: boolean; detail: string }> {
  const byName = !/^[\d.:a-f]+$/.test(to);
  const cmd = [...(byName ? ['busybox', 'timeout', '3'] : []), 'ping', ...(v6 ? ['-6'] : []), '-c', '1', '-W', '2', to];
  const r = await from.exec(...cmd);
  if (r.code === 0) return { ok: true, detail: 'reachable' };
  const why = byName && r.code === 143 ? 'the name does not resolve (3 s)' : lines(r.stdout + r.stderr).pop();
  return { ok: false, detail: why ?? `exit ${r.code}` };
}
const inCtr = (h: LabHost, c: string) => ({ exec: (...cmd: string[]) => h.docker('exec', c, ...cmd) });
const onHost = (h: LabHost) => ({ exec: (cmd: string, ...args: string[]) => h.exec(cmd, ...args) });

const lookup = lookupIn;

describe('names across three hosts on a three-member etcd', () => {
  test("side by side, Docker's built-in macvlan: no container reaches another host's container by name", async (t) => {
    const ranges = ['198.18.15.64/28', '198.18.15.80/28', '198.18.15.96/28'];
    for (const [i, h] of hosts().entries()) {
      await dockerOk(
        h,
        ...['network', 'create', '-d', 'macvlan', '-o', 'parent=eth0', '--subnet', LAN.subnet4],
        ...['--gateway', LAN.router4, '--ip-range', ranges[i]!, 'mv'],
      );
      // --dns 127.0.0.1: what Docker's resolver does not know is refused in the container, never sent outside the lab.
      await dockerOk(
        h,
        'run',
        '-d',
        '--name',
        `mv${i + 1}`,
        '--net',
        'mv',
        '--dns',
        '127.0.0.1',
        'busybox:local',
        'sleep',
        '600',
      );
    }
    const results = await Promise.all(
      hosts().flatMap((h, i) =>
        hosts()
          .map((_, j) => j)
          .filter((j) => j !== i)
          .map(async (j) => ({
            pair: `mv${i + 1} → mv${j + 1}`,
            ...(await ping(inCtr(h, `mv${i + 1}`), `mv${j + 1}`)),
          })),
      ),
    );
    for (const r of results) assert.equal(r.ok, false, `${r.pair}: the built-in driver has no names across hosts`);
    t.diagnostic(`built-in macvlan, by name across hosts: 0 of ${results.length} (${results[0]!.detail})`);
    // Shown not to be the data path: by address they reach each other.
    const ip3 = await dockerOk(
      hosts()[2]!,
      'inspect',
      '-f',
      '{{(index .NetworkSettings.Networks "mv").IPAddress}}',
      'mv3',
    );
    assert.ok((await ping(inCtr(hosts()[0]!, 'mv1'), ip3)).ok, 'mv1 → mv3 by address');
    for (const [i, h] of hosts().entries()) {
      await dockerOk(h, 'rm', '-f', `mv${i + 1}`);
      await dockerOk(h, 'network', 'rm', 'mv');
    }
  });

  test('macnet: the reachability table, 9 of 9, by name and alias across hosts (IPv4)', async (t) => {
    // One host after the other: each host's probe then sees the previous hosts' host-access addresses as taken.
    for (const [i, h] of hosts().entries()) {
      await createMacnetNetwork(h, NET, { ipv6: true, opts: i === 2 ? { dns: 'true' } : { host_access: 'true' } });
      const a = await hostAccessAddresses(h);
      access.set(h, a);
      for (const k of [1, 2]) {
        const name = `${hostLabel(i)}c${k}`;
        const alias = `svc-${name}`;
        await runSleeper(h, name, NET, { dns: a.v4, args: ['--network-alias', alias] });
        const [v4, v6] = [await addressOn(h, name, NET), await addressOn(h, name, NET, 'GlobalIPv6Address')];
        ctrs.push({ name, alias, host: h, v4, v6 });
      }
    }
    t.diagnostic(`containers: ${ctrs.map((c) => `${c.name} ${c.v4} ${c.v6}`).join(', ')}`);
    t.diagnostic(
      `DNS (host access): ${hosts()
        .map((h) => `${h.name} ${access.get(h)!.v4}`)
        .join(', ')}`,
    );
    // Names written by one host reach the others through etcd: wait until the last container's does.
    const last = ctrs[ctrs.length - 1]!;
    assert.ok(await until(async () => (await lookup(hosts()[0]!, 'h1c1', last.name)).join() === last.v4, 15_000));

    const sibling = (c: Ctr) => ctrs.find((x) => x.host === c.host && x !== c)!;
    const others = (c: Ctr) => ctrs.filter((x) => x.host !== c.host);
    const other = (h: LabHost) => hosts()[(hosts().indexOf(h) + 1) % hosts().length]!;
    type Pair = [ReturnType<typeof inCtr>, string, string];
    const cells: [string, () => Pair[]][] = [
      ['container → gateway', () => ctrs.map((c) => [inCtr(c.host, c.name), LAN.router4, c.name])],
      [
        'container → container, same host, by IP',
        () => ctrs.map((c) => [inCtr(c.host, c.name), sibling(c).v4, c.name]),
      ],
      [
        'container → container, same host, by name',
        () => ctrs.map((c) => [inCtr(c.host, c.name), sibling(c).name, c.name]),
      ],
      ['container → other host', () => ctrs.map((c) => [inCtr(c.host, c.name), other(c.host).ipv4, c.name])],
      [
        'container → container on other host, by IP',
        () => ctrs.flatMap((c) => others(c).map((o): Pair => [inCtr(c.host, c.name), o.v4, `${c.name}→${o.name}`])),
      ],
      [
        'container → container on other host, by name',
        () => ctrs.flatMap((c) => others(c).map((o): Pair => [inCtr(c.host, c.name), o.name, `${c.name}→${o.name}`])),
      ],
      ['host → its own container', () => ctrs.map((c) => [onHost(c.host), c.v4, c.name])],
      ['container → its own host', () => ctrs.map((c) => [inCtr(c.host, c.name), access.get(c.host)!.v4, c.name])],
      ["host → other host's container", () => ctrs.map((c) => [onHost(other(c.host)), c.v4, c.name])],
      [
        'container → container on other host, by alias and by <name>.<host>',
        () =>
          ctrs.flatMap((c) =>
            others(c).flatMap((o): Pair[] => {
              const label = hostLabel(hosts().indexOf(o.host));
              return [
                [inCtr(c.host, c.name), o.alias, `${c.name}→${o.alias}`],
                [inCtr(c.host, c.name), `${o.name}.${label}`, `${c.name}→${o.name}.${label}`],
              ];
            }),
          ),
      ],
    ];
    let reachedCells = 0;
    for (const [name, pairs] of cells) {
      const results = await Promise.all(
        pairs().map(async ([from, to, what]) => ({ what, to, ...(await ping(from, to)) })),
      );
      const reached = results.filter((r) => r.ok).length;
      t.diagnostic(`| ${name} | ${reached === results.length ? 'reachable' : `${reached}/${results.length}`} |`);
      for (const r of results) assert.ok(r.ok, `${name}: ${r.what} (${r.to}): ${r.detail}`);
      reachedCells++;
    }
    t.diagnostic(`the table's 9 cells and the aliases: ${reachedCells} of ${cells.length} rows reachable`);
  });

  test('macnet, IPv6: AAAA of another host’s container, and ping -6 by name', async () => {
    for (const c of ctrs) {
      const o = ctrs.find((x) => x.host !== c.host)!;
      assert.deepEqual(await lookup(c.host, c.name, o.name, 'aaaa'), [o.v6], `${c.name}: AAAA ${o.name}`);
      const r = await ping(inCtr(c.host, c.name), o.name, true);
      assert.ok(r.ok, `${c.name} → ${o.name} over IPv6 by name: ${r.detail}`);
    }
  });

  test("a LAN machine (the router) asks any host's DNS for every host's containers", async () => {
    for (const h of hosts()) {
      const dns = access.get(h)!.v4;
      for (const c of ctrs) {
        const r = await cl.lab.routerExec('busybox', 'nslookup', '-type=a', c.name, dns);
        assert.deepEqual(
          nslookupAddresses(r.stdout),
          [c.v4],
          `the router asks ${h.name}'s DNS (${dns}) for ${c.name}: ${r.stdout}`,
        );
      }
    }
  });

  test('a host whose daemon stops: its names go from the other hosts after the grace; its daemon back, they return', async (t) => {
    const [h1, , h3] = hosts() as [LabHost, LabHost, LabHost];
    const gone = ctrs.find((c) => c.host === h3)!;
    const stays = ctrs.find((c) => c.host !== h3 && c.host !== h1)!;
    const t0 = Date.now();
    await cl.daemons[2]!.stop('SIGTERM'); // a clean stop: its presence key is revoked; its containers run on
    const went = await until(async () => (await lookup(h1, 'h1c1', gone.name)).length === 0, NAMES_GRACE_MS + 15_000);
    assert.ok(went, `${gone.name} still resolves on h1 ${Date.now() - t0} ms after h3's daemon stopped`);
    t.diagnostic(`h3's names went from h1 ${Date.now() - t0} ms after its daemon stopped (grace ${NAMES_GRACE_MS} ms)`);
    assert.deepEqual(await lookup(h1, 'h1c1', stays.name), [stays.v4], "the other hosts' names stay");
    assert.ok((await ping(inCtr(h1, 'h1c1'), gone.v4)).ok, "h3's container itself still answers by address");

    const t1 = Date.now();
    await cl.daemons[2]!.restart();
    assert.ok(await until(async () => (await lookup(h1, 'h1c1', gone.name)).join() === gone.v4, 15_000));
    t.diagnostic(`back ${Date.now() - t1} ms after h3's daemon was started again`);
  });
  test('a name on two hosts answers both, <name>.<host> picks one; docker rm ends a name; a killed daemon re-syncs a rename', async (t) => {
    const [h1, h2, h3] = hosts() as [LabHost, LabHost, LabHost];
    const dns2 = access.get(h2)!.v4;
    const run = (h: LabHost, name: string) => runSleeper(h, name, NET, { dns: access.get(h)!.v4 });
    const ipOf = (h: LabHost, c: string) => addressOn(h, c, NET);
    await run(h1, 'dup');
    await run(h3, 'dup');
    const [d1, d3] = [await ipOf(h1, 'dup'), await ipOf(h3, 'dup')];
    const t0 = Date.now();
    // Asked of h2's DNS directly: Docker's embedded resolver answers a name of its own host itself.
    const both = await until(
      async () => (await lookup(h2, 'h2c1', 'dup', 'a', dns2)).join() === [d1, d3].sort().join(),
      15_000,
    );
    assert.ok(both, `dup answers both addresses from h2's DNS: ${(await lookup(h2, 'h2c1', 'dup', 'a', dns2)).join()}`);
    t.diagnostic(
      `a new name resolved on another host ${Date.now() - t0} ms after docker run returned (nslookup polled)`,
    );
    assert.deepEqual(await lookup(h2, 'h2c1', 'dup.h1'), [d1]);
    assert.deepEqual(await lookup(h2, 'h2c1', 'dup.h3'), [d3]);

    const t1 = Date.now();
    await dockerOk(h1, 'rm', '-f', 'dup');
    assert.ok(await until(async () => (await lookup(h2, 'h2c1', 'dup.h1')).length === 0, 15_000), 'dup.h1 gone');
    t.diagnostic(`a removed container stopped resolving on another host ${Date.now() - t1} ms after docker rm began`);
    assert.deepEqual(await lookup(h2, 'h2c1', 'dup', 'a', dns2), [d3], "h3's dup stays");

    // h1's daemon killed; a container renamed meanwhile (no plugin call needed); back, it re-syncs from the engine.
    const renamed = ctrs.find((c) => c.name === 'h1c2')!;
    await cl.daemons[0]!.stop('SIGKILL');
    await dockerOk(h1, 'rename', 'h1c2', 'h1c2b');
    await cl.daemons[0]!.restart();
    const synced = await until(async () => (await lookup(h3, 'h3c1', 'h1c2b')).join() === renamed.v4, 15_000);
    assert.ok(synced, 'the new name resolves on h3 after h1 re-synced');
    assert.deepEqual(await lookup(h3, 'h3c1', 'h1c2'), [], 'the old name is gone');
  });
});
