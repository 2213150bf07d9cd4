// host.network-manager and host.systemd-networkd: a network manager on the host that takes the links macnet makes
// (probe, host-access and endpoint links) as its own sets addresses, routes or DHCP on them, or takes them down:
// host access and LAN probes then break in ways macnet cannot see. Each check reads the daemon's configuration as
// the daemon does (file order, shadowing, first match) and names the file to write to leave the links alone.
import * as path from 'node:path';
import {
  findProcess,
  glob,
  layered,
  MACNET_GLOB,
  MACNET_LINK_KINDS,
  MACNET_LINKS,
  parseKeyFile,
  readText,
} from './conf';
import type { KeyFileEntry } from './conf';
import type { Check, DoctorContext, Finding } from './finding';

interface Sample {
  readonly family: string;
  readonly name: string;
  readonly kind: string;
}

function samples(ctx: DoctorContext): Sample[] {
  const kinds = ctx.network ? [ctx.network.kind] : MACNET_LINK_KINDS;
  return MACNET_LINKS.flatMap((l) => kinds.map((kind) => ({ ...l, kind })));
}

const families = (list: readonly Sample[]) => [...new Set(list.map((s) => `${s.family} (${s.name.slice(0, 3)}…)`))];

// ---- NetworkManager (NetworkManager.conf(5): "Device List Format", [keyfile] unmanaged-devices, [device]) ----

/** NetworkManager's reading order: /usr/lib conf.d, /run conf.d, NetworkManager.conf, /etc conf.d; /etc shadows. */
export function nmConfFiles(ctx: DoctorContext): string[] {
  const usr = path.join(ctx.usrRoot ?? '/usr', 'lib', 'NetworkManager', 'conf.d');
  const run = path.join(ctx.runRoot, 'NetworkManager', 'conf.d');
  const etc = path.join(ctx.etcRoot, 'NetworkManager');
  const etcD = layered([path.join(etc, 'conf.d')], '.conf');
  const runD = layered([run], '.conf').filter((f) => !etcD.some((e) => e.name === f.name));
  const usrD = layered([usr], '.conf').filter((f) => ![...etcD, ...runD].some((e) => e.name === f.name));
  return [
    ...usrD.map((f) => f.file),
    ...runD.map((f) => f.file),
    path.join(etc, 'NetworkManager.conf'),
    ...etcD.map((f) => f.file),
  ];
}

const NM_KNOWN_TAGS = /^(mac|s390-subchannels|dhcp-plugin|id|path):/;

/** One device spec against a link (interface-name, driver, type; MACs are random, so `mac:` never covers). */
function nmSpecMatches(spec: string, s: Sample): boolean {
  if (spec === '*') return true;
  const name = /^interface-name:([=~]?)(.*)$/.exec(spec);
  if (name) {
    if (name[1] === '=') return name[2] === s.name;
    return name[1] === '~' ? glob(name[2]!.toLowerCase(), s.name.toLowerCase()) : glob(name[2]!, s.name);
  }
  if (spec.startsWith('driver:')) return glob(spec.slice('driver:'.length).split('/')[0]!, s.kind);
  if (spec.startsWith('type:')) return spec.slice('type:'.length) === s.kind;
  if (NM_KNOWN_TAGS.test(spec) || /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(spec)) return false;
  return glob(spec, s.name); // a bare name is an interface name
}

/** A device list: any positive spec matches and no `except:` does (only excepts: as if `*` were there too). */
export function nmSpecsMatch(specs: readonly string[], s: Sample): boolean {
  const positive = specs.filter((x) => !x.startsWith('except:'));
  if (specs.some((x) => x.startsWith('except:') && nmSpecMatches(x.slice('except:'.length), s))) return false;
  return positive.length === 0 ? specs.length > 0 : positive.some((x) => nmSpecMatches(x, s));
}

const splitList = (v: string) =>
  v
    .split(/[,;]/)
    .map((x) => x.trim())
    .filter((x) => x !== '');
const falsy = (v: string | undefined) => v !== undefined && /^(0|false|no|off)$/i.test(v);

/**
 * Whether NetworkManager leaves the link unmanaged: [keyfile] unmanaged-devices, or a [device*] section with
 * managed=0. `files` are the configuration files' entries in reading order.
 */
export function nmUnmanaged(files: readonly (readonly KeyFileEntry[])[], s: Sample): boolean {
  let unmanaged: string[] = [];
  for (const e of files.flat()) {
    if (e.section !== 'keyfile' || e.key !== 'unmanaged-devices') continue;
    const items = splitList(e.value);
    if (e.op === '=') unmanaged = items;
    else if (e.op === '+=') unmanaged = [...unmanaged, ...items];
    else unmanaged = unmanaged.filter((x) => !items.includes(x));
  }
  if (nmSpecsMatch(unmanaged, s)) return true;
  // [device] sections: the first one that matches the device and sets `managed` decides.
  const sections = new Map<string, Map<string, string>>();
  files.forEach((entries, i) => {
    for (const e of entries) {
      if (!/^device(-|$)/.test(e.section)) continue;
      const id = `${i}:${e.block}`;
      if (!sections.has(id)) sections.set(id, new Map());
      sections.get(id)!.set(e.key, e.value);
    }
  });
  for (const keys of sections.values()) {
    if (!keys.has('managed')) continue;
    const match = keys.get('match-device');
    if (match === undefined || nmSpecsMatch(splitList(match), s)) return falsy(keys.get('managed'));
  }
  return false;
}

export const checkNetworkManager: Check = (ctx: DoctorContext): Promise<Finding[]> => {
  const pid = findProcess(
    ctx.procRoot,
    'NetworkManager',
    path.join(ctx.runRoot, 'NetworkManager', 'NetworkManager.pid'),
  );
  if (pid === undefined)
    return Promise.resolve([
      {
        check: 'host.network-manager',
        severity: 'ok',
        summary: 'NetworkManager does not run',
        detail: { running: false },
      },
    ]);
  const files = nmConfFiles(ctx).filter((f) => readText(f) !== undefined);
  const parsed = files.map((f) => parseKeyFile(readText(f)!));
  const managed = samples(ctx).filter((s) => !nmUnmanaged(parsed, s));
  const detail = { running: true, pid, files: files.join(' ') };
  if (managed.length === 0)
    return Promise.resolve([
      {
        check: 'host.network-manager',
        severity: 'ok',
        summary: "NetworkManager runs and leaves macnet's links unmanaged",
        detail,
      },
    ]);
  return Promise.resolve([
    {
      check: 'host.network-manager',
      severity: 'warn',
      summary:
        `NetworkManager runs and would manage macnet's ${families(managed).join(', ')} links: ` +
        'no unmanaged-devices entry covers them',
      fix:
        `printf '[keyfile]\\nunmanaged-devices+=interface-name:${MACNET_GLOB}\\n' > ` +
        `${path.join('/etc', 'NetworkManager', 'conf.d', '90-macnet.conf')} && systemctl reload NetworkManager`,
      detail: { ...detail, managed: managed.map((s) => `${s.name}/${s.kind}`).join(' ') },
    },
  ]);
};

// ---- systemd-networkd (systemd.network(5): [Match], first matching file wins, [Link] Unmanaged=) ----

/** networkd's directories in rising priority; a name in a later one shadows it in the earlier ones. */
function networkdDirs(ctx: DoctorContext): string[] {
  const usr = ctx.usrRoot ?? '/usr';
  return [
    path.join(usr, 'lib', 'systemd', 'network'),
    path.join(usr, 'local', 'lib', 'systemd', 'network'),
    path.join(ctx.runRoot, 'systemd', 'network'),
    path.join(ctx.etcRoot, 'systemd', 'network'),
  ];
}

/** A .network file's [Match] lists and [Link] Unmanaged, drop-ins (NAME.network.d/*.conf) applied. */
interface NetworkFile {
  readonly name: string;
  readonly file: string;
  readonly match: ReadonlyMap<string, string[]>;
  readonly unmanaged: boolean;
}

export function readNetworkFiles(ctx: DoctorContext): NetworkFile[] {
  const dirs = networkdDirs(ctx);
  const out: NetworkFile[] = [];
  for (const { name, file } of layered(dirs, '.network')) {
    const text = readText(file);
    if (text === undefined || text.trim() === '') continue; // masked (a link to /dev/null) or empty
    const dropIns = layered(
      dirs.map((d) => path.join(d, `${name}.d`)),
      '.conf',
    ).map((d) => readText(d.file) ?? '');
    const entries = [text, ...dropIns].flatMap((t) => parseKeyFile(t));
    const match = new Map<string, string[]>();
    let unmanaged = false;
    for (const e of entries) {
      if (e.section === 'Match') {
        // A list key given again extends the list; an empty assignment resets it.
        const words = e.value.split(/\s+/).filter((w) => w !== '');
        match.set(e.key, words.length === 0 ? [] : [...(match.get(e.key) ?? []), ...words]);
      } else if (e.section === 'Link' && e.key === 'Unmanaged') unmanaged = /^(1|yes|true|on)$/i.test(e.value);
    }
    out.push({ name, file, match, unmanaged });
  }
  return out;
}

/** Conditions on the host, not the link: taken as true (doctor runs on that host). */
const HOST_CONDITIONS = new Set([
  'Host',
  'Virtualization',
  'KernelCommandLine',
  'KernelVersion',
  'Credential',
  'Architecture',
  'Firmware',
]);

/** A [Match] list: any glob matches; "!" before the first word inverts the whole list. */
function listMatches(words: readonly string[], value: string | undefined): boolean {
  const invert = words[0]?.startsWith('!') ?? false;
  const globs = invert ? [words[0]!.slice(1), ...words.slice(1)].filter((w) => w !== '') : words;
  const any = value !== undefined && globs.some((g) => glob(g, value));
  return invert ? !any : any;
}

/** Whether a .network's [Match] covers the link. No link condition at all matches every link. */
export function networkMatches(f: Pick<NetworkFile, 'match'>, s: Sample): boolean {
  // What networkd knows of a macvlan/ipvlan link: its name, Type "ether" (ARPHRD_ETHER, no DEVTYPE), Kind and
  // Driver the kind; it has no hardware path, no permanent MAC, a random MAC, no Wi-Fi.
  const facts: Readonly<Record<string, string>> = {
    Name: s.name,
    OriginalName: s.name,
    Type: 'ether',
    Kind: s.kind,
    Driver: s.kind,
  };
  for (const [key, words] of f.match) {
    if (words.length === 0 || HOST_CONDITIONS.has(key)) continue;
    if (!listMatches(words, facts[key])) return false;
  }
  return true;
}

/** A file name that sorts before `than` (bytewise, as networkd sorts), for the fix's Unmanaged=yes file. */
function nameBefore(than: string): string {
  return ['00-macnet.network', '0-macnet.network', '-macnet.network'].find((n) => n < than) ?? '00-macnet.network';
}

export const checkNetworkd: Check = (ctx: DoctorContext): Promise<Finding[]> => {
  const pid = findProcess(ctx.procRoot, 'systemd-networkd');
  if (pid === undefined)
    return Promise.resolve([
      {
        check: 'host.systemd-networkd',
        severity: 'ok',
        summary: 'systemd-networkd does not run',
        detail: { running: false },
      },
    ]);
  const files = readNetworkFiles(ctx);
  const taken: { sample: Sample; file: NetworkFile }[] = [];
  for (const s of samples(ctx)) {
    const first = files.find((f) => networkMatches(f, s));
    if (first && !first.unmanaged) taken.push({ sample: s, file: first });
  }
  if (taken.length === 0)
    return Promise.resolve([
      {
        check: 'host.systemd-networkd',
        severity: 'ok',
        summary: "systemd-networkd runs; no .network file takes macnet's links",
        detail: { running: true, pid, files: files.map((f) => f.file).join(' ') },
      },
    ]);
  const first = taken.map((t) => t.file).sort((a, b) => (a.name < b.name ? -1 : 1))[0]!;
  const match = [...first.match].map(([k, v]) => `${k}=${v.join(' ')}`).join(' ') || '(empty: every link)';
  const fixFile = path.join('/etc', 'systemd', 'network', nameBefore(first.name));
  return Promise.resolve([
    {
      check: 'host.systemd-networkd',
      severity: 'warn',
      summary:
        `systemd-networkd runs and ${first.file} ([Match] ${match}) would configure macnet's ` +
        `${families(taken.map((t) => t.sample)).join(', ')} links`,
      fix: `printf '[Match]\\nName=${MACNET_GLOB}\\n\\n[Link]\\nUnmanaged=yes\\n' > ${fixFile} && networkctl reload`,
      detail: {
        running: true,
        pid,
        file: first.file,
        taken: taken.map((t) => `${t.sample.name}/${t.sample.kind}:${t.file.name}`).join(' '),
      },
    },
  ]);
};
