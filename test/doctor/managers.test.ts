// host.network-manager and host.systemd-networkd on configuration trees made by hand: a daemon that runs (its
// /proc/PID/comm), its files in their directories, matching and not matching macnet's links, and the fix each
// finding gives written into the tree and read again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { glob, MACNET_GLOB, MACNET_LINKS, parseKeyFile } from '../../src/doctor/conf';
import { checkNetworkd, checkNetworkManager } from '../../src/doctor/managers';
import { endpointLinkName } from '../../src/drivers/endpoint';
import { HOST_LINK_PATTERN } from '../../src/drivers/host-access';
import { PROBE_LINK_PATTERN } from '../../src/lan/probe-links';
import { Tree } from './trees';

const NM_RUNS = { 'proc/4242/comm': 'NetworkManager\n', 'run/NetworkManager/NetworkManager.pid': '4242\n' };
const NETWORKD_RUNS = { 'proc/77/comm': 'systemd-network\n' };
const NM_CONF = 'etc/NetworkManager/NetworkManager.conf';
// Debian's NetworkManager.conf as installed.
const DEBIAN_NM = '[main]\nplugins=ifupdown,keyfile\n\n[ifupdown]\nmanaged=false\n';

/** Writes the fix's file into the tree (its /etc is the tree's), without the reload after &&. */
function applyFix(t: Tree, fix: string): void {
  const write = fix.split(' && ')[0]!.replace(/> \/etc\//, `> ${t.root}/etc/`);
  execFileSync('sh', ['-c', `mkdir -p "$(dirname "${write.split('> ')[1]}")" && ${write}`]);
}

const one = async (check: typeof checkNetworkManager, t: Tree, o: Parameters<Tree['ctx']>[0] = {}) => {
  const fs = await check(t.ctx(o));
  assert.equal(fs.length, 1);
  return fs[0]!;
};

test("the sample names are macnet's: probe, host-access and endpoint links, all under the fixes' glob", () => {
  const [probe, host, endpoint] = MACNET_LINKS.map((l) => l.name);
  assert.match(probe!, PROBE_LINK_PATTERN);
  assert.match(host!, HOST_LINK_PATTERN);
  assert.equal(endpoint, endpointLinkName(`${endpoint!.slice(2)}${'0'.repeat(53)}`));
  for (const l of MACNET_LINKS) assert.ok(glob(MACNET_GLOB, l.name), l.name);
  assert.ok(glob('mn[hp]*', 'mnh0123456789') && !glob('mn[!hp]*', 'mnp0123456789') && glob('m?p*', 'mnp1'));
  assert.deepEqual(
    parseKeyFile('# c\n[keyfile]\nunmanaged-devices+=interface-name:mn*\n[device]\nmanaged = 0\n').map((e) => [
      e.section,
      e.key,
      e.op,
      e.value,
      e.block,
    ]),
    [
      ['keyfile', 'unmanaged-devices', '+=', 'interface-name:mn*', 0],
      ['device', 'managed', '=', '0', 1],
    ],
  );
});

test('NetworkManager: not running is ok; running with a stock config warns, and its fix makes it ok', async () => {
  const t = Tree.make({ [NM_CONF]: DEBIAN_NM, 'proc/4242/comm': 'bash\n' });
  try {
    const idle = await one(checkNetworkManager, t);
    assert.deepEqual(
      [idle.check, idle.severity, idle.summary],
      ['host.network-manager', 'ok', 'NetworkManager does not run'],
    );
    t.write(NM_RUNS);
    const w = await one(checkNetworkManager, t);
    assert.equal(w.severity, 'warn');
    assert.match(w.summary, /would manage macnet's probe \(mnp…\), host-access \(mnh…\), endpoint \(mn0…\) links/);
    assert.equal(
      w.fix,
      "printf '[keyfile]\\nunmanaged-devices+=interface-name:mn*\\n' > /etc/NetworkManager/conf.d/90-macnet.conf" +
        ' && systemctl reload NetworkManager',
    );
    assert.equal(w.detail?.pid, 4242);
    applyFix(t, w.fix!);
    assert.equal((await one(checkNetworkManager, t)).severity, 'ok');
  } finally {
    t.remove();
  }
});

test('NetworkManager device lists: globs, driver and type, except, =, +=, -=, shadowing, [device] managed=0', async () => {
  const cases: [string, Record<string, string>, 'ok' | 'warn', Parameters<Tree['ctx']>[0]?][] = [
    ['probe links only', { [NM_CONF]: '[keyfile]\nunmanaged-devices=interface-name:mnp*\n' }, 'warn'],
    ['all of mn*', { [NM_CONF]: '[keyfile]\nunmanaged-devices=interface-name:eth9;interface-name:mn*\n' }, 'ok'],
    ['exact name is not a glob', { [NM_CONF]: '[keyfile]\nunmanaged-devices=interface-name:=mn*\n' }, 'warn'],
    ['a bare name is an interface name', { [NM_CONF]: '[keyfile]\nunmanaged-devices=mn*\n' }, 'ok'],
    ['driver:macvlan leaves ipvlan links', { [NM_CONF]: '[keyfile]\nunmanaged-devices=driver:macvlan\n' }, 'warn'],
    [
      'driver:macvlan on a macvlan network',
      { [NM_CONF]: '[keyfile]\nunmanaged-devices=driver:macvlan\n' },
      'ok',
      { network: { kind: 'macvlan' } },
    ],
    [
      'type:ipvlan on a macvlan network',
      { [NM_CONF]: '[keyfile]\nunmanaged-devices=type:ipvlan\n' },
      'warn',
      { network: { kind: 'macvlan' } },
    ],
    ['only excepts: everything else', { [NM_CONF]: '[keyfile]\nunmanaged-devices=except:interface-name:eth0\n' }, 'ok'],
    ['* except host access', { [NM_CONF]: '[keyfile]\nunmanaged-devices=*,except:interface-name:mnh*\n' }, 'warn'],
    [
      'a mac never covers',
      { [NM_CONF]: '[keyfile]\nunmanaged-devices=mac:02:00:00:00:00:01;02:00:00:00:00:02\n' },
      'warn',
    ],
    [
      'a later = replaces',
      {
        [NM_CONF]: '[keyfile]\nunmanaged-devices=interface-name:mn*\n',
        'etc/NetworkManager/conf.d/50-veth.conf': '[keyfile]\nunmanaged-devices=interface-name:veth*\n',
      },
      'warn',
    ],
    [
      'a later += appends',
      {
        'usr/lib/NetworkManager/conf.d/10-veth.conf': '[keyfile]\nunmanaged-devices=interface-name:veth*\n',
        'etc/NetworkManager/conf.d/50-mn.conf': '[keyfile]\nunmanaged-devices+=interface-name:mn*\n',
      },
      'ok',
    ],
    [
      '-= removes',
      {
        [NM_CONF]: '[keyfile]\nunmanaged-devices=interface-name:mn*\n',
        'etc/NetworkManager/conf.d/50-x.conf': '[keyfile]\nunmanaged-devices-=interface-name:mn*\n',
      },
      'warn',
    ],
    [
      '/etc conf.d shadows /usr/lib conf.d of the same name',
      {
        'usr/lib/NetworkManager/conf.d/20-mn.conf': '[keyfile]\nunmanaged-devices=interface-name:mn*\n',
        'etc/NetworkManager/conf.d/20-mn.conf': '# emptied by the admin\n',
      },
      'warn',
    ],
    [
      '[device] managed=0',
      { 'run/NetworkManager/conf.d/30-mn.conf': '[device-macnet]\nmatch-device=interface-name:mn*\nmanaged=0\n' },
      'ok',
    ],
    [
      'the first matching [device] decides',
      {
        [NM_CONF]:
          '[device-a]\nmatch-device=interface-name:mn*\nmanaged=1\n[device-b]\nmatch-device=interface-name:mn*\nmanaged=0\n',
      },
      'warn',
    ],
  ];
  for (const [label, files, severity, o] of cases) {
    const t = Tree.make({ ...NM_RUNS, ...files });
    try {
      assert.equal((await one(checkNetworkManager, t, o)).severity, severity, label);
    } finally {
      t.remove();
    }
  }
});

test('systemd-networkd: not running is ok; an empty [Match] in /etc warns naming it, and its fix makes it ok', async () => {
  const host0 = '[Match]\nVirtualization=container\nName=host0\n\n[Network]\nDHCP=yes\n';
  const t = Tree.make({
    'usr/lib/systemd/network/80-container-host0.network': host0,
    'etc/systemd/network/10-all.network': '[Match]\n\n[Network]\nDHCP=yes\n',
  });
  try {
    assert.equal((await one(checkNetworkd, t)).summary, 'systemd-networkd does not run');
    t.write(NETWORKD_RUNS);
    const w = await one(checkNetworkd, t);
    assert.equal(w.check, 'host.systemd-networkd');
    assert.equal(w.severity, 'warn');
    assert.match(
      w.summary,
      /\/etc\/systemd\/network\/10-all\.network \(\[Match\] \(empty: every link\)\) would configure/,
    );
    assert.equal(
      w.fix,
      "printf '[Match]\\nName=mn*\\n\\n[Link]\\nUnmanaged=yes\\n' > /etc/systemd/network/00-macnet.network && networkctl reload",
    );
    applyFix(t, w.fix!);
    assert.equal((await one(checkNetworkd, t)).severity, 'ok');
  } finally {
    t.remove();
  }
});

test('systemd-networkd [Match]: names, inversion, Type, Kind, hardware keys, drop-ins, masks, first file wins', async () => {
  const net = (match: string) => `[Match]\n${match}\n[Network]\nDHCP=yes\n`;
  const cases: [string, Record<string, string>, 'ok' | 'warn', Parameters<Tree['ctx']>[0]?][] = [
    ['Name=*', { 'etc/systemd/network/50.network': net('Name=*') }, 'warn'],
    ['Name=en* eth*', { 'etc/systemd/network/50.network': net('Name=en* eth*') }, 'ok'],
    ['Name=!eth0', { 'etc/systemd/network/50.network': net('Name=!eth0') }, 'warn'],
    ['Name=!mn*', { 'etc/systemd/network/50.network': net('Name=!mn*') }, 'ok'],
    ['Type=ether', { 'etc/systemd/network/50.network': net('Type=ether') }, 'warn'],
    ['Type=wlan', { 'etc/systemd/network/50.network': net('Type=wlan') }, 'ok'],
    [
      'Kind=macvlan, ipvlan network',
      { 'etc/systemd/network/50.network': net('Kind=macvlan') },
      'ok',
      { network: { kind: 'ipvlan' } },
    ],
    ['Driver=macvlan', { 'etc/systemd/network/50.network': net('Driver=macvlan') }, 'warn'],
    ['MACAddress', { 'etc/systemd/network/50.network': net('MACAddress=02:00:00:00:00:01') }, 'ok'],
    ['Path', { 'etc/systemd/network/50.network': net('Path=pci-0000:00:03.0') }, 'ok'],
    ['Host= only: every link', { 'etc/systemd/network/50.network': net('Host=vm') }, 'warn'],
    ['empty Name= resets', { 'etc/systemd/network/50.network': net('Name=en*\nName=') }, 'warn'],
    [
      'a drop-in sets Unmanaged=yes',
      {
        'usr/lib/systemd/network/50.network': net('Name=*'),
        'etc/systemd/network/50.network.d/macnet.conf': '[Link]\nUnmanaged=yes\n',
      },
      'ok',
    ],
    [
      'masked in /etc',
      { 'usr/lib/systemd/network/50.network': net('Name=*'), 'etc/systemd/network/50.network': '->/dev/null' },
      'ok',
    ],
    [
      'an earlier Unmanaged file wins',
      {
        'run/systemd/network/10-mn.network': '[Match]\nName=mn*\n[Link]\nUnmanaged=yes\n',
        'etc/systemd/network/50.network': net('Name=*'),
      },
      'ok',
    ],
  ];
  for (const [label, files, severity, o] of cases) {
    const t = Tree.make({ ...NETWORKD_RUNS, ...files });
    try {
      assert.equal((await one(checkNetworkd, t, o)).severity, severity, label);
    } finally {
      t.remove();
    }
  }
  // The fix's file sorts before the one that takes the links.
  const t = Tree.make({ ...NETWORKD_RUNS, 'etc/systemd/network/00-all.network': net('Name=*') });
  try {
    const w = await one(checkNetworkd, t);
    assert.match(w.fix!, /> \/etc\/systemd\/network\/0-macnet\.network /);
    applyFix(t, w.fix!);
    assert.equal((await one(checkNetworkd, t)).severity, 'ok');
  } finally {
    t.remove();
  }
});
