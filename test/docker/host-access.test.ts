// Host access end to end: two lab hosts, each with its own dockerd and macnet daemon, one dual-stack macnet
// network per host with -o host_access=true on the LAN (disjoint --ip-range per host), two containers per
// host. Every cell of the two-host reachability matrix must be reachable (except names across hosts, a later
// issue), in IPv4 and IPv6; after a simulated reboot (the daemon killed, every link it made in the host deleted) the
// restarted daemon restores host access by itself; after the networks are removed the hosts' links,
// addresses and routes are as before (`ip -json`).
import { after, before, type TestContext } from 'node:test';
import { test } from '../lab/engine-test';
import assert from 'node:assert/strict';
import { hostLinkName } from '../../src/drivers/host-access';
import { Daemon } from '../lab/daemon';
import { Lab, LAN, dockerMissing, type LabHost } from '../lab/lab';
import { ipJson, sh } from '../lab/sh';
import { hostAccessAddresses, nslookupAddresses } from '../lab/networks';

const SKIP = dockerMissing();
let lab: Lab | undefined;
const daemons: Daemon[] = [];
const RANGES4 = ['198.18.15.64/27', '198.18.15.96/27'];
const RANGES6 = ['2001:db8:15::1:0/112', '2001:db8:15::2:0/112'];
const LINK = hostLinkName('eth0');

interface Ctr {
  name: string;
  host: LabHost;
  ip4: string;
  ip6: string;
}
const ctrs: Ctr[] = [];
const snapshots = new Map<LabHost, unknown>();
/** Each host's own addresses on the network (the host-side link's), read from the kernel. */
const hostAddr = new Map<LabHost, { v4: string; v6: string }>();

const lines = (s: string) =>
  s
    .split('\n')
    .map((x) => x.trim())
    .filter(Boolean);
async function ok(h: LabHost, ...a: string[]): Promise<string> {
  const r = await h.docker(...a);
  assert.equal(r.code, 0, `${h.name}: docker ${a.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** The host's links, addresses and routes as `ip -json` shows them. */
async function hostState(h: LabHost): Promise<unknown> {
  const j = async (...a: string[]) => JSON.parse(await sh('ip', '-n', h.ns.name, '-json', ...a)) as unknown;
  return {
    link: await j('link', 'show'),
    addr: await j('addr', 'show'),
    route4: await j('-4', 'route', 'show', 'table', 'all'),
    route6: await j('-6', 'route', 'show', 'table', 'all'),
  };
}

/** The host's own addresses on the (dual-stack) network, read from the kernel. */
const readHostAddresses = async (h: LabHost) => {
  const a = await hostAccessAddresses(h);
  return { v4: a.v4, v6: a.v6! };
};

before(async () => {
  if (SKIP) return;
  lab = await Lab.create({ hosts: 2, docker: true, ipv6: true });
  for (const h of lab.hosts) {
    // Link-local addresses settle (DAD) before the "before" picture is taken.
    for (let i = 0; i < 50 && /tentative/.test(await sh('ip', '-n', h.ns.name, 'addr')); i++)
      await new Promise((r) => setTimeout(r, 100));
    snapshots.set(h, await hostState(h));
    // The names' options too: on SQLite each daemon's DNS answers for its own host's containers (docs/names.md).
    daemons.push(
      await Daemon.start({
        netns: h.ns.path,
        pluginDir: h.pluginDir,
        extraArgs: ['--docker-host', `unix://${h.dockerSocket}`, '--dns-host-label', h.name],
      }),
    );
  }
  // One host after the other: the second host's probe then sees the first one's host address as taken.
  for (const [i, h] of lab.hosts.entries()) {
    await ok(
      h,
      'network',
      'create',
      '-d',
      'macnet',
      '--ipam-driver',
      'macnet',
      '-o',
      'parent=eth0',
      '-o',
      'host_access=true',
      '--ipv6',
      '--subnet',
      LAN.subnet4,
      '--gateway',
      LAN.router4,
      '--ip-range',
      RANGES4[i]!,
      '--subnet',
      LAN.subnet6,
      '--gateway',
      LAN.router6,
      '--ip-range',
      RANGES6[i]!,
      'lan',
    );
    hostAddr.set(h, await readHostAddresses(h));
  }
  await Promise.all(
    lab.hosts.map(async (h) => {
      for (const k of [1, 2]) {
        const name = `${h.name}c${k}`;
        await ok(h, 'run', '-d', '--name', name, '--net', 'lan', '--dns', '127.0.0.1', 'busybox:local', 'sleep', '600');
        const s = JSON.parse(
          await ok(h, 'inspect', name, '--format', '{{json (index .NetworkSettings.Networks "lan")}}'),
        ) as { IPAddress: string; GlobalIPv6Address: string };
        ctrs.push({ name, host: h, ip4: s.IPAddress, ip6: s.GlobalIPv6Address });
      }
    }),
  );
  ctrs.sort((a, b) => a.name.localeCompare(b.name));
});

after(async () => {
  // dockerd first (it calls the plugins while it removes containers), the plugins after it.
  try {
    await lab?.destroy();
  } finally {
    for (const d of daemons) await d.remove();
    await Lab.destroyAll();
  }
});

type From = {
  what: string;
  exec: (cmd: string, ...args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>;
};
const fromCtr = (c: Ctr): From => ({ what: c.name, exec: (...cmd) => c.host.docker('exec', c.name, ...cmd) });
const fromHost = (h: LabHost): From => ({ what: h.name, exec: (cmd, ...args) => h.exec(cmd, ...args) });

async function reach(from: From, to: string): Promise<{ ok: boolean; detail: string }> {
  // Neighbour discovery on a fresh path can take a second: two tries before "not reachable".
  for (let i = 0; i < 2; i++) {
    const r = await from.exec('ping', '-c', '1', '-W', '2', to);
    if (r.code === 0) return { ok: true, detail: 'reachable' };
    if (i === 1) return { ok: false, detail: lines(r.stdout + r.stderr).pop() ?? `exit ${r.code}` };
  }
  return { ok: false, detail: '' };
}

const otherHost = (h: LabHost) => lab!.hosts.find((x) => x !== h)!;
const sibling = (c: Ctr) => ctrs.find((x) => x.host === c.host && x !== c)!;
const others = (c: Ctr) => ctrs.filter((x) => x.host !== c.host);
type Pair = [From, string, string];
/** The matrix rows (names across hosts left out: a later issue), per family. */
function cells(v: 4 | 6): { name: string; pairs: () => Pair[] }[] {
  const ip = (c: Ctr) => (v === 4 ? c.ip4 : c.ip6);
  const hostIp = (h: LabHost) => (v === 4 ? h.ipv4 : h.ipv6!);
  const access = (h: LabHost) => (v === 4 ? hostAddr.get(h)!.v4 : hostAddr.get(h)!.v6);
  return [
    {
      name: 'container → gateway',
      pairs: () => ctrs.map((c) => [fromCtr(c), v === 4 ? LAN.router4 : LAN.router6, 'router']),
    },
    {
      name: 'container → container, same host, by IP',
      pairs: () => ctrs.map((c) => [fromCtr(c), ip(sibling(c)), sibling(c).name]),
    },
    ...(v === 4
      ? [
          {
            name: 'container → container, same host, by name',
            pairs: () => ctrs.map((c): Pair => [fromCtr(c), sibling(c).name, sibling(c).name]),
          },
        ]
      : []),
    {
      name: 'container → other host',
      pairs: () => ctrs.map((c) => [fromCtr(c), hostIp(otherHost(c.host)), otherHost(c.host).name]),
    },
    {
      name: 'container → container on other host, by IP',
      pairs: () => ctrs.flatMap((c) => others(c).map((o): Pair => [fromCtr(c), ip(o), o.name])),
    },
    { name: 'host → its own container', pairs: () => ctrs.map((c) => [fromHost(c.host), ip(c), c.name]) },
    {
      name: 'container → its own host (its host access address)',
      pairs: () => ctrs.map((c) => [fromCtr(c), access(c.host), `${c.host.name} ${access(c.host)}`]),
    },
    // IPv4 only: ARP through the host-side link answers for every address of the host; IPv6 neighbour
    // discovery answers only for addresses on the link itself (docs/driver.md).
    ...(v === 4
      ? [
          {
            name: 'container → its own host (its LAN address)',
            pairs: () => ctrs.map((c): Pair => [fromCtr(c), c.host.ipv4, c.host.name]),
          },
        ]
      : []),
    {
      name: "host → other host's container",
      pairs: () => ctrs.map((c) => [fromHost(otherHost(c.host)), ip(c), c.name]),
    },
  ];
}

async function matrix(t: TestContext, v: 4 | 6): Promise<void> {
  const rows: string[] = [];
  for (const cell of cells(v)) {
    const results = await Promise.all(
      cell.pairs().map(async ([from, to, label]) => ({ from: from.what, label, to, ...(await reach(from, to)) })),
    );
    const reached = results.filter((r) => r.ok).length;
    rows.push(
      `| IPv${v} | ${cell.name} | ${reached === results.length ? 'reachable' : `${reached}/${results.length}`} |`,
    );
    for (const r of results) assert.ok(r.ok, `IPv${v} ${cell.name}: ${r.from} → ${r.label} (${r.to}): ${r.detail}`);
  }
  for (const l of rows) t.diagnostic(l);
}

test('IPv4: every cell of the matrix is reachable with host access', async (t) => {
  if (SKIP) return t.skip(SKIP);
  t.diagnostic(
    `containers: ${ctrs.map((c) => `${c.name} ${c.ip4} ${c.ip6}`).join(', ')}; host access: ${lab!.hosts.map((h) => `${h.name} ${hostAddr.get(h)!.v4} ${hostAddr.get(h)!.v6}`).join(', ')}`,
  );
  assert.notEqual(
    hostAddr.get(lab!.hosts[0]!)!.v4,
    hostAddr.get(lab!.hosts[1]!)!.v4,
    'the hosts took different addresses',
  );
  assert.notEqual(hostAddr.get(lab!.hosts[0]!)!.v6, hostAddr.get(lab!.hosts[1]!)!.v6);
  await matrix(t, 4);
});

test('IPv6: the same matrix on the dual-stack network', async (t) => {
  if (SKIP) return t.skip(SKIP);
  await matrix(t, 6);
});

test("names on SQLite: a LAN machine asks a host's DNS (its host-access address) for that host's containers", async (t) => {
  if (SKIP) return t.skip(SKIP);
  for (const h of lab!.hosts) {
    const dns = hostAddr.get(h)!.v4;
    for (const c of ctrs.filter((x) => x.host === h))
      for (const name of [c.name, `${c.name}.${h.name}`]) {
        let got: string[] = [];
        // The follower writes a record within milliseconds of the container's start; polled for a loaded machine.
        for (let i = 0; i < 50 && got.join() !== [c.ip4, c.ip6].sort().join(); i++) {
          const r = await lab!.routerExec('busybox', 'nslookup', name, dns);
          got = nslookupAddresses(r.stdout);
          if (got.join() !== [c.ip4, c.ip6].sort().join()) await new Promise((r) => setTimeout(r, 200));
        }
        assert.deepEqual(got, [c.ip4, c.ip6].sort(), `the router asks ${h.name}'s DNS (${dns}) for ${name}`);
      }
  }
});

test("the daemon log shows the link, its addresses and the containers' routes", async (t) => {
  if (SKIP) return t.skip(SKIP);
  const msgs = daemons[0]!.logLines().filter((l) => String(l.msg).startsWith('host access'));
  assert.ok(
    msgs.some((l) => l.msg === 'host access: link created' && l.link === LINK && l.parent === 'eth0'),
    JSON.stringify(msgs),
  );
  const a = hostAddr.get(lab!.hosts[0]!)!;
  for (const addr of [`${a.v4}/32`, `${a.v6}/128`])
    assert.ok(
      msgs.some((l) => l.msg === 'host access: address added' && l.address === addr),
      addr,
    );
  for (const c of ctrs.filter((x) => x.host === lab!.hosts[0]))
    assert.ok(
      msgs.some((l) => l.msg === 'host access: route added' && l.route === `${c.ip4}/32`),
      c.name,
    );
});

test('reboot simulation: daemon killed, its links deleted, restarted: host access is back without user action', async (t) => {
  if (SKIP) return t.skip(SKIP);
  const h = lab!.hosts[0]!,
    d = daemons[0]!;
  const mine = ctrs.filter((c) => c.host === h);
  await d.stop('SIGKILL');
  const made = (await ipJson<{ ifname: string }[]>(h.ns.name, 'link', 'show'))
    .map((l) => l.ifname)
    .filter((n) => /^mn[hp][0-9a-f]{10}$/.test(n));
  assert.ok(made.includes(LINK), `links: ${made.join(', ')}`);
  for (const l of made) await sh('ip', '-n', h.ns.name, 'link', 'del', l);
  assert.equal((await reach(fromHost(h), mine[0]!.ip4)).ok, false, 'no host access while the link is gone');
  const t0 = performance.now();
  await d.restart();
  t.diagnostic(`daemon ready again in ${Math.round(performance.now() - t0)} ms`);
  assert.deepEqual(await readHostAddresses(h), hostAddr.get(h), 'the same host addresses');
  for (const c of mine) {
    for (const [from, to] of [
      [fromHost(h), c.ip4],
      [fromHost(h), c.ip6],
      [fromCtr(c), hostAddr.get(h)!.v4],
      [fromCtr(c), hostAddr.get(h)!.v6],
    ] as const) {
      const r = await reach(from, to);
      assert.ok(r.ok, `${from.what} → ${to}: ${r.detail}`);
    }
  }
});

test("clean-up: after the containers and networks are removed, each host's links, addresses and routes are as before", async (t) => {
  if (SKIP) return t.skip(SKIP);
  for (const h of lab!.hosts) {
    const ids = lines((await h.docker('ps', '-aq')).stdout);
    if (ids.length) await ok(h, 'rm', '-f', ...ids);
    await ok(h, 'network', 'rm', 'lan');
    assert.deepEqual(await hostState(h), snapshots.get(h), `${h.name}: ip -json link/addr/route as before`);
  }
});
