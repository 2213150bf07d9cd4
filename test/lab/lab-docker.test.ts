// The lab with a real dockerd per host, on the engine of this run (test/lab/engines.ts): the engine answers with
// its version, runs busybox, and its built-in macvlan containers reach each other across hosts. The lab is
// destroyed and nothing of this process remains.
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINE, test } from './engine-test';
import { Lab, LAN, dockerMissing, labResidue } from './lab';
import { listNetns } from './netns';

after(() => Lab.destroyAll());

async function ping(
  exec: (cmd: string, ...args: string[]) => Promise<{ code: number; stdout: string }>,
  to: string,
  what: string,
) {
  const r = await exec('ping', '-c', '1', '-W', '2', to);
  assert.equal(r.code, 0, `${what}: ping ${to} failed: ${r.stdout}`);
}

test('two hosts with dockerd: docker answers, runs busybox, and its macvlan containers reach each other', async (t) => {
  const missing = dockerMissing();
  if (missing) {
    t.skip(missing);
    return;
  }
  const lab = await Lab.create({ hosts: 2, docker: true });
  t.diagnostic(`lab with docker created in ${lab.createMs.toFixed(0)} ms`);
  try {
    for (const h of lab.hosts) {
      const info = await h.docker('info', '--format', '{{.ServerVersion}} {{.Name}}');
      assert.equal(info.code, 0, `${h.name}: docker info: ${info.stderr}`);
      assert.equal(
        info.stdout.split(' ')[0]?.split('+')[0],
        typeof ENGINE === 'string' ? '' : ENGINE.version,
        'the engine asked for',
      );
      const r = await h.docker('run', '--rm', '--net', 'none', 'busybox:local', 'true');
      assert.equal(r.code, 0, `${h.name}: docker run: ${r.stderr}`);
      const net = await h.docker(
        'network',
        'create',
        '-d',
        'macvlan',
        '--subnet',
        LAN.subnet4,
        '--gateway',
        LAN.router4,
        '-o',
        'parent=eth0',
        'mv',
      );
      assert.equal(net.code, 0, `${h.name}: network create: ${net.stderr}`);
      const c = await h.docker(
        'run',
        '-d',
        '--name',
        `c${h.index}`,
        '--net',
        'mv',
        '--ip',
        `198.18.15.${100 + h.index}`,
        'busybox:local',
        'sleep',
        '600',
      );
      assert.equal(c.code, 0, `${h.name}: docker run -d: ${c.stderr}`);
    }
    const [h1, h2] = lab.hosts as [Lab['hosts'][0], Lab['hosts'][0]];
    await ping((...a) => h1.docker('exec', 'c1', ...a), '198.18.15.102', 'c1 on h1 → c2 on h2');
    await ping((...a) => h2.docker('exec', 'c2', ...a), '198.18.15.101', 'c2 on h2 → c1 on h1');
    await ping((...a) => lab.routerExec(...a), '198.18.15.101', 'router → c1');
    for (const h of lab.hosts) {
      const rm = await h.docker('rm', '-f', `c${h.index}`);
      assert.equal(rm.code, 0, `${h.name}: rm: ${rm.stderr}`);
      const nr = await h.docker('network', 'rm', 'mv');
      assert.equal(nr.code, 0, `${h.name}: network rm: ${nr.stderr}`);
      assert.equal((await h.docker('ps', '-aq')).stdout.trim(), '');
    }
  } finally {
    await lab.destroy();
    assert.deepEqual(
      listNetns().filter((n) => n.startsWith(`mnt-${process.pid}-`)),
      [],
      'no namespace of this process remains',
    );
    assert.deepEqual(labResidue(), { dirs: [], mounts: [], processes: [], cgroups: [] });
    t.diagnostic(`destroyed in ${lab.destroyMs.toFixed(0)} ms`);
  }
});
