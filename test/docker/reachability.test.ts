// The two-host reachability matrix (Docker's built-in macvlan reaches 6 of its 9 cells) with macnet: two lab
// hosts, each with its own dockerd and macnet daemon, one macnet network per host on the LAN (198.18.15.0/24,
// gateway = the lab's router, a disjoint --ip-range per host), two long-running containers per host.
// Every cell the built-in driver reaches must be reachable with macnet; the cells it does not reach stay as
// they are (host access is a later macnet feature; names are per host).
import { after, before, type TestContext } from 'node:test';
import { test } from '../lab/engine-test';
import assert from 'node:assert/strict';
import { Daemon } from '../lab/daemon';
import { Lab, LAN, dockerMissing, type LabHost } from '../lab/lab';
import { ipJson, type RunResult } from '../lab/sh';

const SKIP = dockerMissing();
let lab: Lab | undefined;
const daemons: Daemon[] = [];
const RANGES = ['198.18.15.64/27', '198.18.15.96/27'];

interface Ctr {
  name: string;
  host: LabHost;
  ip: string;
}
const ctrs: Ctr[] = [];

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

before(async () => {
  if (SKIP) return;
  lab = await Lab.create({ hosts: 2, docker: true });
  for (const h of lab.hosts) daemons.push(await Daemon.start({ netns: h.ns.path, pluginDir: h.pluginDir }));
  await Promise.all(
    lab.hosts.map(async (h, i) => {
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
        '--subnet',
        LAN.subnet4,
        '--gateway',
        LAN.router4,
        '--ip-range',
        RANGES[i]!,
        'lan',
      );
      for (const k of [1, 2]) {
        const name = `${h.name}c${k}`;
        // --dns 127.0.0.1: a name this host's Docker does not know is forwarded inside the container, where
        // nothing listens (an immediate refusal), never to the machine's own resolver outside the lab.
        await ok(h, 'run', '-d', '--name', name, '--net', 'lan', '--dns', '127.0.0.1', 'busybox:local', 'sleep', '600');
        ctrs.push({
          name,
          host: h,
          ip: await ok(h, 'inspect', name, '--format', '{{(index .NetworkSettings.Networks "lan").IPAddress}}'),
        });
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

type From = { what: string; exec: (cmd: string, ...args: string[]) => Promise<RunResult> };
const fromCtr = (c: Ctr): From => ({ what: c.name, exec: (...cmd) => c.host.docker('exec', c.name, ...cmd) });
const fromHost = (h: LabHost): From => ({ what: h.name, exec: (cmd, ...args) => h.exec(cmd, ...args) });

/** One ping; "reachable" or why not (the last line of ping's output). */
async function reach(from: From, to: string): Promise<{ ok: boolean; detail: string }> {
  // A name nobody here knows costs busybox's resolver two 5 s timeouts (dockerd 20.10 never answers the
  // forwarded query); 3 s are plenty for every name that resolves (the embedded DNS answers in milliseconds).
  const byName = !/^[\d.]+$/.test(to);
  const cmd = [...(byName ? ['busybox', 'timeout', '3'] : []), 'ping', '-c', '1', '-W', '1', to];
  const r = await from.exec(cmd[0]!, ...cmd.slice(1));
  if (r.code === 0) return { ok: true, detail: 'reachable' };
  return {
    ok: false,
    detail:
      byName && r.code === 143
        ? 'the name does not resolve (3 s)'
        : (lines(r.stdout + r.stderr).pop() ?? `exit ${r.code}`),
  };
}

interface Cell {
  name: string;
  builtin: boolean;
  pairs: () => [From, string, string][];
}
const other = (c: Ctr) => ctrs.filter((x) => x.host !== c.host);
const sibling = (c: Ctr) => ctrs.find((x) => x.host === c.host && x !== c)!;
// The rows of lab.md's table, in its order, with what Docker's built-in macvlan does there.
const CELLS: Cell[] = [
  { name: 'container → gateway', builtin: true, pairs: () => ctrs.map((c) => [fromCtr(c), LAN.router4, 'router']) },
  {
    name: 'container → container, same host, by IP',
    builtin: true,
    pairs: () => ctrs.map((c) => [fromCtr(c), sibling(c).ip, sibling(c).name]),
  },
  {
    name: 'container → container, same host, by name',
    builtin: true,
    pairs: () => ctrs.map((c) => [fromCtr(c), sibling(c).name, sibling(c).name]),
  },
  {
    name: 'container → other host',
    builtin: true,
    pairs: () =>
      ctrs.map((c) => {
        const h = lab!.hosts.find((x) => x !== c.host)!;
        return [fromCtr(c), h.ipv4, h.name];
      }),
  },
  {
    name: 'container → container on other host, by IP',
    builtin: true,
    pairs: () => ctrs.flatMap((c) => other(c).map((o): [From, string, string] => [fromCtr(c), o.ip, o.name])),
  },
  {
    name: 'container → container on other host, by name',
    builtin: false,
    pairs: () => ctrs.flatMap((c) => other(c).map((o): [From, string, string] => [fromCtr(c), o.name, o.name])),
  },
  { name: 'host → its own container', builtin: false, pairs: () => ctrs.map((c) => [fromHost(c.host), c.ip, c.name]) },
  {
    name: 'container → its own host',
    builtin: false,
    pairs: () => ctrs.map((c) => [fromCtr(c), c.host.ipv4, c.host.name]),
  },
  {
    name: "host → other host's container",
    builtin: true,
    pairs: () =>
      ctrs.map((c) => {
        const h = lab!.hosts.find((x) => x !== c.host)!;
        return [fromHost(h), c.ip, c.name];
      }),
  },
];

test('the two-host matrix: macnet reaches every cell the built-in macvlan reaches, and no other', async (t: TestContext) => {
  if (SKIP) return t.skip(SKIP);
  t.diagnostic(
    `containers: ${ctrs.map((c) => `${c.name} ${c.ip}`).join(', ')}; hosts: ${lab!.hosts.map((h) => `${h.name} ${h.ipv4}`).join(', ')}`,
  );
  const rows: string[][] = [];
  for (const cell of CELLS) {
    await t.test(cell.name, async () => {
      const results = await Promise.all(
        cell.pairs().map(async ([from, to, label]) => ({ from: from.what, label, ...(await reach(from, to)) })),
      );
      const reached = results.filter((r) => r.ok).length;
      const macnet =
        reached === results.length
          ? 'reachable'
          : reached === 0
            ? 'NOT reachable'
            : `partly (${reached}/${results.length})`;
      const notes = [...new Set(results.filter((r) => !r.ok).map((r) => r.detail))].join('; ');
      rows.push([cell.name, cell.builtin ? 'reachable' : 'NOT reachable', macnet, notes]);
      for (const r of results)
        assert.equal(
          r.ok,
          cell.builtin,
          `${r.from} → ${r.label}: ${r.detail} (the built-in driver: ${cell.builtin ? 'reachable' : 'not reachable'})`,
        );
    });
  }
  const head = ['from → to', 'built-in macvlan (lab.md)', 'macnet', 'why not (ping)'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => `| ${r.map((c, i) => c.padEnd(w[i]!)).join(' | ')} |`;
  for (const l of [fmt(head), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...rows.map(fmt)]) t.diagnostic(l);
});

test('clean-up: containers and networks removed on both hosts; no macnet link left', async (t) => {
  if (SKIP) return t.skip(SKIP);
  for (const h of lab!.hosts) {
    const ids = lines((await h.docker('ps', '-aq')).stdout);
    if (ids.length) await ok(h, 'rm', '-f', ...ids);
    await ok(h, 'network', 'rm', 'lan');
    const left = (await ipJson<{ ifname: string }[]>(h.ns.name, 'link', 'show')).map((l) => l.ifname);
    assert.deepEqual(
      left.filter((n) => /^mn[0-9a-f]{11}$|^mnp[0-9a-f]{10}$|^d[mi]-/.test(n)),
      [],
      `${h.name}: no macnet link is left`,
    );
    assert.deepEqual(left.sort(), ['eth0', 'lo'], `${h.name}: exactly its own links again`);
  }
});
