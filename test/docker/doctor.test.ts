// `macnet doctor --network` against a real dockerd: a macnet network gives its parent, kind and gateway (the
// parent's kind read from the lab host's own sysfs); a name Docker does not know is NETWORK_NOT_FOUND, a network
// of another driver is refused naming the driver; both exit 1. A passthru network's own child (in its running
// container) does not count against it; a foreign passthru child of its parent does.
import { after, before } from 'node:test';
import { test } from '../lab/engine-test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { Report } from '../../src/doctor';
import { Daemon } from '../lab/daemon';
import { Lab, type LabHost } from '../lab/lab';
import { run } from '../lab/sh';
import { createMacnetNetwork, dockerOk, runSleeper } from '../lab/networks';

const bin = path.join(__dirname, '..', '..', '..', 'bin', 'macnet');
let lab: Lab;
let d: Daemon;
before(async () => {
  lab = await Lab.create({ hosts: 1, docker: true });
  const h = lab.hosts[0]!;
  d = await Daemon.start({ netns: h.ns.path, mountNs: h.mountNs, pluginDir: h.pluginDir });
});
after(async () => {
  await d?.remove();
  await lab?.destroy();
});

/**
 * doctor as a user runs it on the lab host: its network namespace, and a sysfs of that namespace mounted in a
 * private copy of its mount namespace (a host's /sys shows its own links; unshare keeps the lab's untouched).
 */
function doctorOn(h: LabHost, ...args: string[]) {
  return run('nsenter', [
    `--net=${h.ns.path}`,
    `--mount=${h.mountNs}`,
    'unshare',
    '--mount',
    '--propagation',
    'private',
    'sh',
    '-c',
    'mount -t sysfs sysfs /sys && exec "$@"',
    'sh',
    process.execPath,
    bin,
    'doctor',
    ...args,
    '--docker-host',
    `unix://${h.dockerSocket}`,
  ]);
}

test('doctor --network: a macnet network gives parent, kind and gateway; unknown and foreign networks exit 1', async () => {
  const h = lab.hosts[0]!;
  await createMacnetNetwork(h, 'lan');
  try {
    const r = await doctorOn(h, '--network', 'lan', '--json');
    const rep = JSON.parse(r.stdout) as Report;
    assert.equal(r.code, rep.worst === 'blocking' ? 1 : 0, r.stderr);
    assert.equal(rep.parent, 'eth0');
    assert.deepEqual(
      [rep.network?.name, rep.network?.kind, rep.network?.id.length, rep.gateway],
      ['lan', 'macvlan', 64, '198.18.15.1'],
    );
    const kind = rep.findings.find((f) => f.check === 'parent.kind');
    assert.deepEqual([kind?.severity, kind?.detail?.kind], ['ok', 'veth']);
    const text = await doctorOn(h, '--network', 'lan');
    assert.match(text.stdout, /\nnetwork lan \(parent eth0\) on \S+: \d+ blocking/);

    const missing = await run(bin, ['doctor', '--network', 'nope', '--docker-host', `unix://${h.dockerSocket}`]);
    assert.deepEqual(
      [missing.code, missing.stderr.trim()],
      [
        1,
        `macnet: NETWORK_NOT_FOUND: doctor: Docker at unix://${h.dockerSocket} has no network "nope"; ` +
          '`docker network ls --filter driver=macnet` lists the macnet networks',
      ],
    );
    const foreign = await run(bin, ['doctor', '--network', 'none', '--docker-host', `unix://${h.dockerSocket}`]);
    assert.deepEqual(
      [foreign.code, foreign.stderr.trim()],
      [
        1,
        'macnet: OPTION_INVALID: --network "none" is not valid: it is a network of driver "null", not macnet; give ' +
          'a macnet network (docker network ls --filter driver=macnet), or --parent to check an interface',
      ],
    );
  } finally {
    assert.equal((await h.docker('network', 'rm', 'lan')).code, 0);
  }
});

test("doctor --network of a passthru network: its own container's child is ok, a foreign passthru child blocks", async () => {
  const h = lab.hosts[0]!;
  // A parent of its own (a veth pair inside the lab host, both ends up: carrier), so eth0 stays the lab's.
  await run('ip', ['-n', h.ns.name, 'link', 'add', 'ptp0', 'type', 'veth', 'peer', 'name', 'ptp1']);
  const findings = async () => {
    const r = await doctorOn(h, '--network', 'pt', '--json');
    const rep = JSON.parse(r.stdout) as Report;
    assert.equal(r.code, rep.worst === 'blocking' ? 1 : 0, r.stderr);
    return { code: r.code, rep, pt: rep.findings.find((f) => f.check === 'parent.passthru')! };
  };
  try {
    for (const l of ['ptp0', 'ptp1'])
      assert.equal((await run('ip', ['-n', h.ns.name, 'link', 'set', l, 'up'])).code, 0);
    await dockerOk(
      h,
      ...['network', 'create', '-d', 'macnet', '--ipam-driver', 'macnet', '--subnet', '198.18.30.0/24'],
      ...['-o', 'parent=ptp0', '-o', 'macvlan_mode=passthru', 'pt'],
    );
    await runSleeper(h, 'ptc', 'pt');
    // The network's own child, in its container's namespace: the network working, nothing blocks.
    const own = await findings();
    assert.equal(own.pt.severity, 'ok', own.pt.summary);
    assert.match(own.pt.summary, /^ptp0 is taken by network pt's own passthru child, eth0 \(in namespace \S+\)$/);
    assert.deepEqual(
      own.rep.findings.filter((f) => f.severity === 'blocking').map((f) => `${f.check}: ${f.summary}`),
      [],
    );
    assert.equal(own.code, 0);
    // A passthru child that is not the network's (made by hand on its parent): blocking, exit 1.
    await dockerOk(h, 'rm', '-f', 'ptc');
    const add = ['link', 'add', 'link', 'ptp0', 'name', 'fpt0', 'type', 'macvlan', 'mode', 'passthru'];
    assert.equal((await run('ip', ['-n', h.ns.name, ...add])).code, 0);
    const foreign = await findings();
    assert.equal(foreign.pt.severity, 'blocking', foreign.pt.summary);
    assert.match(foreign.pt.summary, /^ptp0 is taken by a passthru macvlan, fpt0 \(in the host namespace\)/);
    assert.equal(foreign.code, 1);
  } finally {
    await h.docker('rm', '-f', 'ptc');
    await h.docker('network', 'rm', 'pt');
    await run('ip', ['-n', h.ns.name, 'link', 'del', 'fpt0']);
    await run('ip', ['-n', h.ns.name, 'link', 'del', 'ptp0']);
  }
});
