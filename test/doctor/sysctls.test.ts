// The sysctl checks on /proc/sys/net trees made by hand: which values of rp_filter, arp_ignore, arp_filter and
// arp_announce (in all, default and the parent) give which finding. What each value does to host access was
// measured in the lab (docs/doctor.md, "sysctl.*"); these tests pin the reading and the combining (the larger of all
// and the link's own for rp_filter, arp_ignore and arp_announce; either for arp_filter, as the kernel does).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DoctorContext, Finding } from '../../src/doctor/finding';
import { checkSysctls, readConf } from '../../src/doctor/sysctls';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

type Tree = Record<string, Partial<Record<'rp_filter' | 'arp_ignore' | 'arp_filter' | 'arp_announce', number>>>;

/** A <procRoot>/sys/net/ipv4/conf tree with the given values; every key a kernel has defaults to 0. */
function procTree(values: Tree): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'macnet-doctor-proc-'));
  dirs.push(root);
  for (const dev of new Set(['all', 'default', ...Object.keys(values)])) {
    const d = path.join(root, 'sys/net/ipv4/conf', dev);
    fs.mkdirSync(d, { recursive: true });
    for (const key of ['rp_filter', 'arp_ignore', 'arp_filter', 'arp_announce'] as const)
      fs.writeFileSync(path.join(d, key), `${values[dev]?.[key] ?? 0}\n`);
  }
  return root;
}

const ctx = (procRoot: string, parent = 'eth0'): DoctorContext => ({
  parent,
  sysRoot: '/nonexistent',
  procRoot,
  etcRoot: '/nonexistent',
  runRoot: '/nonexistent',
  environment: { name: 'bare-metal' },
});

const by = (fs: Finding[], check: string) => fs.find((f) => f.check === check)!;

test('a kernel default tree (all 0): four findings, all ok', async () => {
  const fs = await checkSysctls(ctx(procTree({ eth0: {} })));
  assert.deepEqual(
    fs.map((f) => [f.check, f.severity]),
    [
      ['sysctl.rp_filter', 'ok'],
      ['sysctl.arp_ignore', 'ok'],
      ['sysctl.arp_filter', 'ok'],
      ['sysctl.arp_announce', 'ok'],
    ],
  );
  assert.equal(by(fs, 'sysctl.arp_ignore').detail?.hostAccessLinkEffective, 0);
});

test('rp_filter strict (1) in all: ok, because host access routes each container /32 through its link', async () => {
  const f = by(
    await checkSysctls(ctx(procTree({ all: { rp_filter: 1 }, eth0: { rp_filter: 2 } }))),
    'sysctl.rp_filter',
  );
  assert.equal(f.severity, 'ok');
  assert.match(f.summary, /^reverse-path filter strict for the host-access link, loose on the parent/);
  assert.equal(f.detail?.parentValue, 2);
  assert.equal(f.detail?.parentEffective, 2, 'the larger of all (1) and the parent (2): loose');
});

test('arp_ignore 1 in default (what the host-access link will get): warn, the host only at its host-access address', async () => {
  const f = by(await checkSysctls(ctx(procTree({ default: { arp_ignore: 1 }, eth0: {} }))), 'sysctl.arp_ignore');
  assert.equal(f.severity, 'warn');
  assert.match(f.summary, /containers reach the host only at its host-access address/);
  assert.match(String(f.fix), /net\.ipv4\.conf\.all\.arp_ignore=0 net\.ipv4\.conf\.default\.arp_ignore=0/);
});

test('arp_ignore 2 in all: warn, host access fails (the /32 has no asker in its subnet)', async () => {
  const f = by(await checkSysctls(ctx(procTree({ all: { arp_ignore: 2 }, eth0: {} }))), 'sysctl.arp_ignore');
  assert.equal(f.severity, 'warn');
  assert.match(f.summary, /^arp_ignore 2 for the host-access link: host access \(-o host_access=true\) fails/);
  assert.match(
    f.summary,
    /on the parent \(2\) LAN machines asking for the host-access address get no ARP answer/,
    'all applies to the parent too',
  );
});

test('arp_ignore on the parent alone: ok for containers, noted for the LAN', async () => {
  const f = by(await checkSysctls(ctx(procTree({ eth0: { arp_ignore: 1 } }))), 'sysctl.arp_ignore');
  assert.equal(f.severity, 'ok');
  assert.match(f.summary, /on the parent \(1\) LAN machines asking for the host-access address get no ARP answer/);
});

test('arp_filter combines by or, arp_announce by max; both ok', async () => {
  const fs = await checkSysctls(ctx(procTree({ all: { arp_announce: 1 }, eth0: { arp_filter: 1, arp_announce: 2 } })));
  const filter = by(fs, 'sysctl.arp_filter');
  assert.equal(filter.severity, 'ok');
  assert.equal(filter.detail?.parentEffective, 1);
  assert.equal(filter.detail?.hostAccessLinkEffective, 0);
  const announce = by(fs, 'sysctl.arp_announce');
  assert.equal(announce.detail?.parentEffective, 2);
  assert.equal(announce.detail?.hostAccessLinkEffective, 1);
});

test('no parent, or a parent without IPv4 conf: all and default still decide the host-access link', async () => {
  const root = procTree({ all: { arp_ignore: 1 } });
  const none = await checkSysctls({ ...ctx(root), parent: undefined });
  assert.equal(by(none, 'sysctl.arp_ignore').severity, 'warn');
  assert.equal(by(none, 'sysctl.arp_ignore').detail?.parentValue, null);
  const missing = await checkSysctls(ctx(root, 'nosuch0'));
  assert.equal(by(missing, 'sysctl.arp_ignore').detail?.parentEffective, 1, 'all alone');
  // A parent name that is a path is no link: it must not read another file.
  assert.equal(readConf(root, '../conf/all', 'arp_ignore'), 1, 'readConf itself takes what it is given');
  const sneaky = await checkSysctls(ctx(root, '../conf/all'));
  assert.equal(by(sneaky, 'sysctl.arp_ignore').detail?.parentValue, null);
});

test('an unreadable tree (IPv4 disabled, a wrong --proc root): warn naming the path', async () => {
  const fs = await checkSysctls(ctx('/nonexistent-proc'));
  assert.equal(fs.length, 4);
  for (const f of fs) {
    assert.equal(f.severity, 'warn');
    assert.match(f.summary, /cannot be read under \/nonexistent-proc\/sys\/net/);
  }
});
