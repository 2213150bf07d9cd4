// What a hostile day does to the daemon (issue 14), over the raw plugin protocol in a lab host: a probe link
// deleted under it, huge bodies, loose types, a SandboxKey that blocks, a locked database, bursts of scans,
// faults at the process level. Each test failed before its fix.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ETH_P_ARP, Kernel, type PacketSocket } from '../../src/kernel';
import { Daemon, pluginCall } from '../lab/daemon';
import { Lab } from '../lab/lab';
import { ipJson, sh } from '../lab/sh';

let lab: Lab;
let d: Daemon;
const tmp: string[] = [];
before(async () => {
  lab = await Lab.create({ hosts: 1 });
  d = await Daemon.start({ netns: lab.hosts[0]!.ns.path });
});
after(async () => {
  await d?.remove();
  await lab?.destroy();
  for (const t of tmp) fs.rmSync(t, { recursive: true, force: true });
});

const GW = { RequestAddressType: 'com.docker.network.gateway' };
const GENERIC = 'com.docker.network.generic';
type Body = Record<string, unknown>;

/** A pool, its gateway and a macnet network on eth0, as dockerd creates them. */
async function network(dm: Daemon, nid: string, subnet: string, extra: Body = {}): Promise<string> {
  const pool = (
    await dm.call('IpamDriver.RequestPool', {
      AddressSpace: 'LocalDefault',
      Pool: subnet,
      Options: {},
      V6: false,
      ...extra,
    })
  ).body;
  assert.equal(typeof pool.PoolID, 'string', JSON.stringify(pool));
  const gw = subnet.replace(/0\/\d+$/, '1');
  assert.equal(
    (await dm.call('IpamDriver.RequestAddress', { PoolID: pool.PoolID, Address: gw, Options: GW })).body.Err,
    undefined,
  );
  const prefix = subnet.split('/')[1];
  const c = await dm.call('NetworkDriver.CreateNetwork', {
    NetworkID: nid,
    Options: { [GENERIC]: { parent: 'eth0' } },
    IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: subnet, Gateway: `${gw}/${prefix}` }],
    IPv6Data: [],
  });
  assert.deepEqual(c.body, {});
  return pool.PoolID as string;
}

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([
    p,
    new Promise<T>((_, rej) => setTimeout(() => rej(new Error(`${what}: no answer in ${ms} ms`)), ms).unref()),
  ]);

async function timed<T>(p: Promise<T>): Promise<{ ms: number; value: T }> {
  const t = performance.now();
  const value = await p;
  return { ms: performance.now() - t, value };
}

test('a probe link that someone deletes is re-created: dynamic addresses keep coming', async () => {
  const host = lab.hosts[0]!;
  const pool = await network(d, '1a'.repeat(32), '198.18.15.0/24', { SubPool: '198.18.15.128/25' });
  assert.match(
    String((await d.call('IpamDriver.RequestAddress', { PoolID: pool, Address: '', Options: {} })).body.Address),
    /^198\.18\.15\./,
  );
  const probe = (await ipJson<{ ifname: string }[]>(host.ns.name, 'link', 'show')).find((l) =>
    /^mnp/.test(l.ifname),
  )!.ifname;
  await sh('ip', '-n', host.ns.name, 'link', 'del', probe);
  const again = (await d.call('IpamDriver.RequestAddress', { PoolID: pool, Address: '', Options: {} })).body;
  assert.match(String(again.Address), /^198\.18\.15\./, `after the deletion: ${JSON.stringify(again)}`);
  let back = false;
  for (let i = 0; i < 40 && !back; i++, await new Promise((r) => setTimeout(r, 50))) {
    back = (await ipJson<{ ifname: string }[]>(host.ns.name, 'link', 'show')).some((l) => l.ifname === probe);
  }
  assert.ok(back, 'the probe link is back (it defends the addresses handed out)');
});

/** Sends a raw HTTP request head and `body` chunks; resolves with what the daemon answered (or timeout). */
function rawRequest(
  head: string,
  send: (s: net.Socket) => void,
  ms: number,
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(d.socket);
    let text = '';
    let closed = false;
    s.on('data', (b) => {
      text += b.toString();
    });
    s.on('error', (e) => {
      text += `[client error: ${e.message}]`;
    });
    s.on('close', () => {
      closed = true;
      resolve({ text, closed });
    });
    s.on('connect', () => {
      s.write(head);
      send(s);
    });
    setTimeout(() => {
      s.destroy();
      resolve({ text, closed });
    }, ms).unref();
  });
}

test('a body over 1 MiB is refused before it is buffered: error reply, connection closed, daemon unaffected', async () => {
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const declared = await rawRequest(
    `POST /IpamDriver.RequestPool HTTP/1.1\r\nHost: x\r\nContent-Length: ${600 * 1024 * 1024}\r\n\r\n`,
    (s) => {
      for (let i = 0; i < 4; i++) s.write(chunk);
    },
    3000,
  );
  assert.match(declared.text, /^HTTP\/1\.1 413/, declared.text.slice(0, 200));
  assert.match(declared.text, /PLUGIN_REQUEST_TOO_LARGE: .*1 MiB/);
  assert.ok(declared.closed, 'connection closed');
  const chunked = await rawRequest(
    'POST /IpamDriver.RequestPool HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n',
    (s) => {
      const write = (i: number): void => {
        if (i === 40 || s.destroyed) return;
        s.write(`${chunk.length.toString(16)}\r\n`);
        s.write(chunk);
        s.write('\r\n', () => write(i + 1));
      };
      write(0);
    },
    3000,
  );
  assert.match(chunked.text, /^HTTP\/1\.1 413/, chunked.text.slice(0, 200));
  assert.ok(chunked.closed, 'connection closed');
  assert.deepEqual((await d.call('Plugin.Activate')).body, { Implements: ['NetworkDriver', 'IpamDriver'] });
});

test('input is echoed at most a few hundred bytes, in replies and in the log', async () => {
  const huge = 'z'.repeat(200_000);
  const replies = [
    await d.call('NetworkDriver.CreateEndpoint', { NetworkID: huge, EndpointID: huge, Interface: {} }),
    await d.call('NetworkDriver.CreateNetwork', `{not json${huge}`),
    await d.call('IpamDriver.RequestPool', { AddressSpace: huge }),
    await d.call('NetworkDriver.CreateNetwork', {
      NetworkID: '2b'.repeat(32),
      Options: { [GENERIC]: { parent: huge } },
    }),
  ];
  for (const r of replies) {
    assert.ok(
      String(r.body.Err).length < 1000,
      `reply of ${String(r.body.Err).length} characters: ${String(r.body.Err).slice(0, 300)}`,
    );
  }
  const long = d.rawLines().filter((l) => l.length > 2000);
  assert.deepEqual(
    long.map((l) => l.slice(0, 200)),
    [],
    'no log line longer than 2000 characters',
  );
});

test('loose types: every field is checked for type and range first, errors name it and what is valid', async () => {
  const pool = await network(d, '3c'.repeat(32), '198.18.30.0/24');
  const eid = '3d'.repeat(32);
  const cases: [string, Body, RegExp][] = [
    [
      'IpamDriver.RequestPool',
      { AddressSpace: 'LocalDefault', Pool: 12345, V6: false },
      /^PLUGIN_REQUEST_INVALID: RequestPool: field Pool /,
    ],
    [
      'IpamDriver.RequestPool',
      { AddressSpace: 'LocalDefault', Pool: ['198.18.31.0/24'], V6: false },
      /^PLUGIN_REQUEST_INVALID: RequestPool: field Pool /,
    ],
    [
      'IpamDriver.RequestPool',
      { AddressSpace: 'LocalDefault', Pool: '198.18.31.0/24', SubPool: 5 },
      /^PLUGIN_REQUEST_INVALID: RequestPool: field SubPool /,
    ],
    [
      'IpamDriver.RequestPool',
      { AddressSpace: 'LocalDefault', Pool: '2001:db8:31::/64', V6: 'true' },
      /^PLUGIN_REQUEST_INVALID: RequestPool: field V6 .*true or false/,
    ],
    [
      'IpamDriver.RequestPool',
      { AddressSpace: 'LocalDefault', Pool: '198.18.31.0/24', Options: 'x' },
      /^PLUGIN_REQUEST_INVALID: RequestPool: field Options /,
    ],
    [
      'IpamDriver.RequestPool',
      { AddressSpace: 'LocalDefault', Pool: '198.18.31.0/24', Options: { mode: 5 } },
      /^PLUGIN_REQUEST_INVALID: RequestPool: field Options\.mode /,
    ],
    [
      'IpamDriver.RequestAddress',
      { PoolID: pool, Address: 5, Options: {} },
      /^PLUGIN_REQUEST_INVALID: RequestAddress: field Address /,
    ],
    [
      'IpamDriver.ReleaseAddress',
      { PoolID: pool, Address: ['198.18.30.5'] },
      /^PLUGIN_REQUEST_INVALID: ReleaseAddress: field Address /,
    ],
    [
      'NetworkDriver.CreateEndpoint',
      { NetworkID: '3c'.repeat(32), EndpointID: eid, Interface: 'x' },
      /^PLUGIN_REQUEST_INVALID: CreateEndpoint: field Interface /,
    ],
    [
      'NetworkDriver.CreateEndpoint',
      { NetworkID: '3c'.repeat(32), EndpointID: eid, Interface: { Address: 5 } },
      /^PLUGIN_REQUEST_INVALID: CreateEndpoint: field Interface\.Address /,
    ],
    [
      'NetworkDriver.CreateNetwork',
      { NetworkID: '3e'.repeat(32), Options: { [GENERIC]: { parent: 'eth0\u0000x' } } },
      /^OPTION_INVALID: option parent=.*NUL/,
    ],
    [
      'NetworkDriver.CreateNetwork',
      { NetworkID: '3e'.repeat(32), Options: { [GENERIC]: { parent: 'éééééééé' } } },
      /^OPTION_INVALID: option parent=.*16 bytes.*15 bytes/,
    ],
    [
      'NetworkDriver.CreateNetwork',
      { NetworkID: '3e'.repeat(32), Options: { [GENERIC]: { parent: 'eth0', mtu: 1400.5 } } },
      /^OPTION_INVALID: option mtu=/,
    ],
    [
      'NetworkDriver.CreateNetwork',
      { NetworkID: '3e'.repeat(32), Options: { [GENERIC]: { parent: 'eth0', mtu: { a: 1 } } } },
      /^OPTION_INVALID: option mtu /,
    ],
    [
      'NetworkDriver.CreateNetwork',
      { NetworkID: '3e'.repeat(32), Options: 'x' },
      /^PLUGIN_REQUEST_INVALID: CreateNetwork: field Options /,
    ],
    [
      'NetworkDriver.CreateNetwork',
      { NetworkID: '3e'.repeat(32), Options: { [GENERIC]: [1] } },
      /^PLUGIN_REQUEST_INVALID: CreateNetwork: field Options\["com\.docker\.network\.generic"\] /,
    ],
    [
      'NetworkDriver.CreateNetwork',
      { NetworkID: '3e'.repeat(32), IPv4Data: 'x' },
      /^PLUGIN_REQUEST_INVALID: CreateNetwork: field IPv4Data /,
    ],
    [
      'NetworkDriver.CreateNetwork',
      { NetworkID: '3e'.repeat(32), IPv4Data: [null] },
      /^PLUGIN_REQUEST_INVALID: CreateNetwork: field IPv4Data\[0\] /,
    ],
    [
      'NetworkDriver.CreateNetwork',
      { NetworkID: '3e'.repeat(32), IPv4Data: [{ Pool: 5 }] },
      /^PLUGIN_REQUEST_INVALID: CreateNetwork: field IPv4Data\[0\]\.Pool /,
    ],
    [
      'NetworkDriver.CreateNetwork',
      { NetworkID: '3e'.repeat(32), IPv4Data: [{ Pool: '198.18.32.0/24', Gateway: 7 }] },
      /^PLUGIN_REQUEST_INVALID: CreateNetwork: field IPv4Data\[0\]\.Gateway /,
    ],
    [
      'NetworkDriver.CreateNetwork',
      { NetworkID: '3e'.repeat(32), IPv4Data: [{ Pool: '198.18.32.0/24', AuxAddresses: 'a' }] },
      /^PLUGIN_REQUEST_INVALID: CreateNetwork: field IPv4Data\[0\]\.AuxAddresses /,
    ],
    [
      'NetworkDriver.CreateNetwork',
      { NetworkID: '3e'.repeat(32), IPv6Data: [{ Pool: '2001:db8:32::/64', AuxAddresses: { a: 1 } }] },
      /^PLUGIN_REQUEST_INVALID: CreateNetwork: field IPv6Data\[0\]\.AuxAddresses\.a /,
    ],
    [
      'NetworkDriver.Join',
      { NetworkID: '3c'.repeat(32), EndpointID: eid, SandboxKey: 'relative/path' },
      /^PLUGIN_REQUEST_INVALID: Join: field SandboxKey .*absolute path/,
    ],
  ];
  const wrong: string[] = [];
  for (const [call, body, want] of cases) {
    const r = await d.call(call, body);
    const err = String(r.body.Err ?? `(no error: ${JSON.stringify(r.body)})`);
    if (!want.test(err) || err !== r.body.Error)
      wrong.push(`${call} ${JSON.stringify(body).slice(0, 120)}\n    got: ${err.slice(0, 300)}`);
  }
  assert.deepEqual(wrong, []);
  const links = (await ipJson<{ ifname: string }[]>(lab.hosts[0]!.ns.name, 'link', 'show')).map((l) => l.ifname);
  assert.ok(!links.some((l) => l.startsWith('é') || l.startsWith('dm-3e')), links.join(' '));
  assert.deepEqual((await d.call('NetworkDriver.DeleteNetwork', { NetworkID: '3e'.repeat(32) })).body, {});
});

test('a SandboxKey whose open blocks (a FIFO) does not freeze the daemon: other calls answer meanwhile', async () => {
  const nid = '4a'.repeat(32);
  const eid = '4b'.repeat(32);
  const pool = await network(d, nid, '198.18.40.0/24');
  const a = (await d.call('IpamDriver.RequestAddress', { PoolID: pool, Address: '', Options: {} })).body
    .Address as string;
  assert.equal(typeof a, 'string', 'an address (the announcement needs one)');
  assert.deepEqual(
    (await d.call('NetworkDriver.CreateEndpoint', { NetworkID: nid, EndpointID: eid, Interface: { Address: a } })).body
      .Err,
    undefined,
  );
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mnt-${process.pid}-fifo-`));
  tmp.push(dir);
  const fifo = path.join(dir, 'sandbox');
  await sh('mkfifo', fifo);
  try {
    const join = d.call('NetworkDriver.Join', { NetworkID: nid, EndpointID: eid, SandboxKey: fifo, Options: {} });
    const t = await timed(withTimeout(d.call('Plugin.Activate'), 3000, 'Plugin.Activate during a Join on a FIFO'));
    assert.ok(t.ms < 500, `Plugin.Activate took ${t.ms.toFixed(0)} ms`);
    const j = await withTimeout(join, 3000, 'Join on a FIFO');
    // Either refused at once or answered (the namespace is looked at later, for the announcement).
    if (j.body.Err) assert.match(String(j.body.Err), /SandboxKey|network namespace/);
    const t2 = await timed(withTimeout(d.call('Plugin.Activate'), 3000, 'Plugin.Activate after a Join on a FIFO'));
    assert.ok(t2.ms < 500, `Plugin.Activate took ${t2.ms.toFixed(0)} ms`);
  } finally {
    // A reader blocked in open() returns once a writer opens the FIFO: the daemon is released either way.
    try {
      fs.closeSync(fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK));
    } catch {
      /* gone */
    }
  }
  await d.call('NetworkDriver.Leave', { NetworkID: nid, EndpointID: eid });
  await d.call('NetworkDriver.DeleteEndpoint', { NetworkID: nid, EndpointID: eid });
});

test('another process holding the database write lock does not stall unrelated calls', async () => {
  const db = path.join(d.opts.stateDir, 'state.db');
  const sqlite = require.resolve('better-sqlite3');
  const script = `const D = require(${JSON.stringify(sqlite)}); const db = new D(${JSON.stringify(db)});
    db.exec('BEGIN IMMEDIATE'); process.stdout.write('locked\\n'); setTimeout(() => { db.exec('COMMIT'); db.close(); }, 2500);`;
  const holder = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((r) => holder.stdout!.once('data', () => r()));
    const write = timed(
      d.call('IpamDriver.RequestPool', {
        AddressSpace: 'LocalDefault',
        Pool: '198.18.50.0/24',
        Options: {},
        V6: false,
      }),
    );
    await new Promise((r) => setTimeout(r, 20));
    const t = await timed(d.call('Plugin.Activate'));
    assert.ok(t.ms < 300, `Plugin.Activate took ${t.ms.toFixed(0)} ms while another process held the lock`);
    const w = await write;
    assert.equal(
      typeof w.value.body.PoolID,
      'string',
      `the write went through once the lock was free: ${JSON.stringify(w.value.body)}`,
    );
  } finally {
    await new Promise((r) => (holder.exitCode !== null ? r(null) : holder.once('exit', r)));
  }
});

test('every log line is JSON, also a warning (an announcement that waits for an interface that never comes up)', async () => {
  const nid = '5a'.repeat(32);
  const pool = await network(d, nid, '198.18.60.0/24');
  const container = await lab.newNetns('quiet');
  const eid = '5b'.repeat(32);
  const a = (await d.call('IpamDriver.RequestAddress', { PoolID: pool, Address: '', Options: {} })).body
    .Address as string;
  assert.equal(typeof a, 'string', 'an address (the announcement needs one)');
  assert.deepEqual(
    (await d.call('NetworkDriver.CreateEndpoint', { NetworkID: nid, EndpointID: eid, Interface: { Address: a } })).body
      .Err,
    undefined,
  );
  assert.equal(
    (await d.call('NetworkDriver.Join', { NetworkID: nid, EndpointID: eid, SandboxKey: container.path, Options: {} }))
      .body.Err,
    undefined,
  );
  await new Promise((r) => setTimeout(r, 3500)); // the announcement polls for up to 10 s
  const bad = d.rawLines().filter((l) => {
    try {
      return typeof JSON.parse(l) !== 'object';
    } catch {
      return true;
    }
  });
  assert.deepEqual(bad, []);
  await d.call('NetworkDriver.Leave', { NetworkID: nid, EndpointID: eid });
  await d.call('NetworkDriver.DeleteEndpoint', { NetworkID: nid, EndpointID: eid });
});

test('macnet/scan: one scan per network at a time, at most 1,000 frames per second', async () => {
  const nid = '6a'.repeat(32);
  await network(d, nid, '198.18.64.0/22');
  // ARP probes as the LAN's switch sees them (broadcast: the bridge device gets every one).
  const k = Kernel.open(lab.lan.path);
  const seen: number[] = [];
  let sock: PacketSocket | undefined;
  try {
    sock = await k.openPacketSocket('sw0', { protocol: ETH_P_ARP });
    sock.on('packet', (p: { data: Buffer }) => {
      // op 1 (request) from 0.0.0.0 for 198.18.64-67.x: the sweep's probes.
      if (
        p.data.readUInt16BE(6) === 1 &&
        p.data.readUInt32BE(14) === 0 &&
        p.data[24] === 198 &&
        (p.data[26]! & 0xfc) === 64
      )
        seen.push(performance.now());
    });
    const scans = await Promise.all([0, 1, 2].map(() => d.call('macnet/scan', { network: nid.slice(0, 12) })));
    const ok = scans.filter((s) => !s.body.Err);
    const busy = scans.filter((s) => /^SCAN_BUSY: /.test(String(s.body.Err)));
    assert.equal(ok.length, 1, scans.map((s) => String(s.body.Err ?? 'ok').slice(0, 200)).join('\n'));
    assert.equal(busy.length, 2);
    assert.match(String(busy[0]!.body.Err), /one scan per network at a time/);
    let worst = 0;
    for (let i = 0, j = 0; i < seen.length; i++) {
      while (seen[i]! - seen[j]! > 1000) j++;
      worst = Math.max(worst, i - j + 1);
    }
    assert.ok(seen.length >= 1000, `saw ${seen.length} probes`);
    assert.ok(worst <= 1050, `${worst} ARP probes in one second`);
  } finally {
    sock?.close();
    await k.close();
  }
});

test('fault injection (test-only MACNET_TEST_FAULTS): an uncaught exception or rejection exits 70 with a JSON log line', async () => {
  assert.equal((await d.call('macnet/test-fault', { kind: 'throw' })).status, 404, 'not there without the variable');
  for (const kind of ['throw', 'reject']) {
    // Its own namespace: one daemon per network namespace.
    const ns = await lab.newNetns(`fault-${kind}`);
    const f = await Daemon.start({ netns: ns.path, extraArgs: ['--no-probe'], env: { MACNET_TEST_FAULTS: '1' } });
    try {
      assert.equal((await f.call('macnet/test-fault', { kind })).status, 200);
      assert.equal(await withTimeout(f.exited(), 5000, 'exit after the fault'), 70);
      const last = f.logLines().at(-1)!;
      assert.equal(last.level, 'error');
      assert.match(String(last.msg), kind === 'throw' ? /^fatal: uncaught exception/ : /^fatal: unhandled rejection/);
      assert.match(String(last.error), /injected fault/);
      assert.equal(fs.existsSync(f.socket), false, 'its socket is gone');
      assert.deepEqual(
        f.rawLines().filter((l) => !l.startsWith('{')),
        [],
      );
    } finally {
      await f.remove();
    }
  }
  assert.deepEqual((await pluginCall(d.socket, 'Plugin.Activate', {})).body, {
    Implements: ['NetworkDriver', 'IpamDriver'],
  });
});
