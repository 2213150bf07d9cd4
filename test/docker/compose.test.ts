// The README's compose example (issue 15), run as written with both compose generations: v2 (Debian unstable's
// Go plugin, as `docker compose`) and v1 (Debian 12's python docker-compose 1.29, `docker-compose`), against a lab
// host's dockerd with the macnet daemon. The file is the README's yaml block, the commands its shell block (for
// v1 with `docker compose` typed `docker-compose`, as the README says); the LAN's gateway pings the fixed address.
import { after, before } from 'node:test';
import { test } from '../lab/engine-test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Compose, composeV1, composeV2For, ensureComposeV2 } from '../lab/compose';
import { Daemon } from '../lab/daemon';
import { Lab, type LabHost, dockerMissing } from '../lab/lab';
import { readmeBlocks, runAsUser } from '../lab/readme';

let lab: Lab | undefined;
let host: LabHost;
let daemon: Daemon | undefined;
let work: string | undefined;

before(async () => {
  assert.equal(dockerMissing(), undefined);
  lab = await Lab.create({ hosts: 1, docker: true });
  host = lab.hosts[0]!;
  daemon = await Daemon.start({ netns: host.ns.path, mountNs: host.mountNs, pluginDir: host.pluginDir });
  const r = await host.docker('tag', 'busybox:local', 'busybox:latest');
  assert.equal(r.code, 0, r.stderr);
  work = fs.mkdtempSync(path.join(os.tmpdir(), `mnt-${process.pid}-compose-`));
});

after(async () => {
  try {
    await lab?.destroy();
  } finally {
    await daemon?.remove();
    await Lab.destroyAll();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  }
});

/** Runs shell lines in the host (its network and mount namespaces), in the project dir, with the engine's CLI. */
async function shell(compose: Compose, project: string, lines: string[]) {
  const r = await runAsUser(host, `${lines.join('\n')}\n`, { cwd: project, timeoutMs: 300_000 });
  const out = r.out;
  assert.equal(
    r.code,
    0,
    `${compose.label}: ${lines.join('; ')} failed:\n${out}\n--- daemon:\n${daemon!.rawLines().slice(-20).join('\n')}`,
  );
  return out;
}

async function runExample(compose: Compose, name: string): Promise<void> {
  const yaml = readmeBlocks('Docker compose').filter((b) => b.lang === 'yaml');
  const cmds = readmeBlocks('Docker compose').filter((b) => b.lang === 'sh');
  assert.equal(yaml.length, 1, 'one compose file in the README');
  assert.equal(cmds.length, 1, 'one block of commands in the README');
  const project = path.join(work!, name);
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'compose.yaml'), yaml[0]!.body);
  if (compose.argv[0] === '/usr/bin/docker-compose') {
    // compose 1.29 looks for docker-compose.yml / .yaml only.
    fs.renameSync(path.join(project, 'compose.yaml'), path.join(project, 'docker-compose.yaml'));
  }
  let lines = cmds[0]!.body.split('\n').filter((l) => l.trim());
  if (compose.argv[0] === '/usr/bin/docker-compose')
    lines = lines.map((l) => l.replaceAll('docker compose', 'docker-compose'));
  const down = lines.findIndex((l) => /compose down/.test(l));
  assert.ok(down > 0, 'the README ends the example with compose down');

  const out = await shell(compose, project, lines.slice(0, down));
  const pings = out.match(/(\d+) packets transmitted, (\d+) (packets )?received/g) ?? [];
  assert.equal(pings.length, 2, out);
  for (const p of pings) assert.match(p, /^2 packets transmitted, 2 (packets )?received/, out);

  // What compose made: a macnet network named after the project, dns at its fixed address, app in the range.
  const net = `${name}_lan`;
  const r = await host.docker(
    'network',
    'inspect',
    net,
    '-f',
    '{{.Driver}} {{.IPAM.Driver}}{{range .Containers}} {{.Name}}={{.IPv4Address}}{{end}}',
  );
  assert.equal(r.code, 0, r.stderr);
  const [driver, ipam, ...members] = r.stdout.trim().split(' ');
  assert.equal(driver, 'macnet');
  assert.equal(ipam, 'macnet');
  const addr = (svc: string) => members.find((m) => new RegExp(`[-_]${svc}[-_]1=`).test(m))?.split('=')[1];
  assert.equal(addr('dns'), '198.18.15.53/24', members.join(' '));
  assert.match(
    addr('app') ?? '',
    /^198\.18\.15\.(12[89]|1[3-9]\d|2\d\d)\/24$/,
    `app in the ip_range: ${members.join(' ')}`,
  );
  // The LAN (its gateway) reaches the fixed address.
  const lan = await lab!.lan.exec('ping', '-c', '2', '-W', '2', '198.18.15.53');
  assert.equal(lan.code, 0, lan.stdout + lan.stderr);

  await shell(compose, project, lines.slice(down));
  const left = await host.docker('network', 'ls', '--filter', `name=${net}`, '-q');
  assert.equal(left.stdout.trim(), '', `compose down removed ${net}`);
  assert.equal((await host.docker('ps', '-aq')).stdout.trim(), '', 'no container left');
}

test('the README compose example with compose v2 (docker compose): up, by name, host and LAN reach the fixed address, down', async () => {
  const v2 = ensureComposeV2();
  if (typeof v2 === 'string') assert.fail(v2);
  const compose = composeV2For(path.join(host.dir, 'cli'), v2.plugin, v2.version, host.engine.cli);
  await runExample(compose, 'demo2');
});

test('the README compose example with compose 1.29 (docker-compose): the same file and commands', async () => {
  const v1 = composeV1();
  if (typeof v1 === 'string') assert.fail(v1);
  await runExample(v1, 'demo1');
});
