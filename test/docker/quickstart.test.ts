// The README's quickstart, run as written (issue 15): a lab host with a real dockerd, the set-up command's
// `npm start` run in the host as the user runs it (npm ci has been run: that is how this test runs at all), then
// the second block, unchanged, as one `sh -e` script with the host's docker as `docker`. A new user runs it
// without touching their LAN (an internal network: no parent), so no LAN device is needed here either.
import { after, before } from 'node:test';
import { test } from '../lab/engine-test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Lab, type LabHost, dockerMissing } from '../lab/lab';
import { readmeBlocks, runAsUser } from '../lab/readme';
import { sh } from '../lab/sh';
import { projectRoot } from '../lab/vm';

const STATE = '/var/lib/macnet';

let lab: Lab | undefined;
let host: LabHost;
let daemon: ChildProcess | undefined;
let daemonExit: Promise<number | null> | undefined;
const daemonLog: string[] = [];
let stateTmp: string | undefined;
let createdStateDir = false;

before(async () => {
  assert.equal(dockerMissing(), undefined);
  lab = await Lab.create({ hosts: 1, docker: true });
  host = lab.hosts[0]!;
  // A user's `docker run busybox` pulls the image; the lab has it under another name and no registry.
  const r = await host.docker('tag', 'busybox:local', 'busybox:latest');
  assert.equal(r.code, 0, r.stderr);
  // `npm start` keeps its state in /var/lib/macnet: in the host's own mount namespace that is a temp dir, so
  // this machine's /var/lib/macnet (a real install's) is neither read nor written.
  stateTmp = fs.mkdtempSync(path.join(os.tmpdir(), `mnt-${process.pid}-quickstart-`));
  if (!fs.existsSync(STATE)) {
    fs.mkdirSync(STATE, { recursive: true });
    createdStateDir = true;
  }
  await sh('nsenter', `--mount=${host.mountNs}`, 'mount', '--bind', stateTmp, STATE);
});

after(async () => {
  try {
    await stopDaemon();
    await lab?.destroy();
  } finally {
    await Lab.destroyAll();
    if (createdStateDir) fs.rmSync(STATE, { recursive: true, force: true });
    if (stateTmp) fs.rmSync(stateTmp, { recursive: true, force: true });
  }
});

/** Ctrl-C in terminal 1: SIGINT to npm's process group. Returns the exit status. */
async function stopDaemon(): Promise<number | null | undefined> {
  if (!daemon || daemon.exitCode !== null || daemon.signalCode !== null) return daemon?.exitCode;
  process.kill(-daemon.pid!, 'SIGINT');
  const timer = setTimeout(() => process.kill(-daemon!.pid!, 'SIGKILL'), 15_000);
  const code = await daemonExit;
  clearTimeout(timer);
  return code;
}

test('the README quickstart runs as written: an internal macnet network, containers by name, host access both ways, nothing left after', async () => {
  const blocks = readmeBlocks('Quickstart').filter((b) => b.lang === 'sh');
  assert.equal(blocks.length, 2, 'the quickstart has two shell blocks: terminal 1 and terminal 2');
  // Terminal 1 is the README's set-up command; npm ci has been run by the time any test runs.
  assert.equal(blocks[0]!.body.trim(), 'npm ci && npm start');
  daemon = spawn(
    'nsenter',
    [`--net=${host.ns.path}`, `--mount=${host.mountNs}`, `--wd=${projectRoot}`, 'npm', 'start'],
    {
      cwd: projectRoot,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  daemon.stdout!.on('data', (b: Buffer) => daemonLog.push(b.toString()));
  daemon.stderr!.on('data', (b: Buffer) => daemonLog.push(b.toString()));
  daemonExit = new Promise((r) => daemon!.once('exit', (code) => r(code)));
  const until = Date.now() + 60_000;
  while (!daemonLog.join('').includes('"msg":"ready"')) {
    assert.equal(daemon.exitCode, null, `npm start exited: ${daemonLog.join('')}`);
    assert.ok(Date.now() < until, `npm start: no "ready" within 60 s: ${daemonLog.join('')}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  // Terminal 2, as written: the engine's own CLI as `docker`, talking to this host's dockerd.
  const r = await runAsUser(host, blocks[1]!.body);
  const out = r.out;
  assert.equal(r.code, 0, `the quickstart failed:\n${out}\n--- daemon:\n${daemonLog.join('')}`);
  // What the comments promise: both pings of each kind answered; the container's MAC is macnet's (0a:...).
  const pings = out.match(/(\d+) packets transmitted, (\d+) (packets )?received/g) ?? [];
  assert.equal(pings.length, 3, `three pings (container→container, host→container, container→host):\n${out}`);
  for (const p of pings) assert.match(p, /^2 packets transmitted, 2 (packets )?received/, out);
  assert.match(out, /^198\.18\.99\.\d+ 0a:[0-9a-f:]{14}$/m, `docker inspect shows the address and MAC:\n${out}`);

  // After `docker network rm`: no link of macnet's left in the host (its parent, the host-access link).
  const links = await host.exec('ip', '-o', 'link', 'show');
  const names = links.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(': ')[1]!.split('@')[0]!);
  assert.deepEqual(
    names.filter((n) => n !== 'lo' && n !== 'eth0' && !n.startsWith('mnp')),
    [],
    `links left after the quickstart: ${names.join(' ')}`,
  );
  await stopDaemon();
  assert.match(daemonLog.join(''), /"msg":"stopped"/, 'Ctrl-C stops the daemon cleanly');
});
