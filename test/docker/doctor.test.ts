// `macnet doctor --network` against a real dockerd: a macnet network gives its parent, kind and gateway (the
// parent's kind read from the lab host's own sysfs); a name Docker does not know is NETWORK_NOT_FOUND, a network
// of another driver is refused naming the driver; both exit 1.
import { after, before } from 'node:test';
import { test } from '../lab/engine-test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { Report } from '../../src/doctor';
import { Daemon } from '../lab/daemon';
import { Lab, type LabHost } from '../lab/lab';
import { run } from '../lab/sh';
import { createMacnetNetwork } from '../lab/networks';

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
