// The hypervisor or cloud under this host, from DMI (/sys/class/dmi/id), and what its virtual switch needs before
// frames from a container's own MAC reach the LAN. Linux's macvlan does not care about the parent's promiscuous
// flag; the virtual switch does, and doctor cannot see its setting from inside the guest: lan.new-mac tests it,
// and this check names the setting to change. The DMI values are the vendors' (the table in docs/doctor.md).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Check, DoctorContext, Environment, Finding } from './finding';

/** The DMI fields read: world-readable ones only (product_uuid and the serials are root's). */
const FIELDS = [
  'sys_vendor',
  'product_name',
  'product_version',
  'board_vendor',
  'bios_vendor',
  'bios_version',
  'chassis_asset_tag',
] as const;
export type Dmi = Readonly<Record<(typeof FIELDS)[number], string>>;

/** Azure's chassis asset tag: every Azure VM has it, a Hyper-V guest elsewhere does not ("MSFT AZURE VM"). */
export const AZURE_ASSET_TAG = '7783-7084-3265-9085-8269-3286-77';

const SWITCH_FIX: Readonly<Record<string, string>> = {
  vmware:
    'on the vSwitch or port group of this VM: Promiscuous mode, MAC address changes and Forged transmits set to ' +
    'Accept (or, on a vSphere Distributed Switch 6.7+, MAC learning on the port group)',
  'hyper-v':
    "enable MAC address spoofing on the VM's network adapter: " +
    'Set-VMNetworkAdapter -VMName <vm> -MacAddressSpoofing On (Hyper-V Manager: Network Adapter, Advanced Features)',
  kvm:
    "let the host's bridge or macvtap pass the guest's extra MACs: libvirt, no MAC filter (no nwfilter " +
    "clean-traffic/no-mac-spoofing) and for a macvtap (type='direct') interface trustGuestRxFilters='yes'; " +
    'Proxmox, the MAC filter of the VM firewall off',
  virtualbox:
    "set the VM's network adapter to Promiscuous Mode: Allow All " +
    '(VBoxManage modifyvm <vm> --nic-promisc1 allow-all), attached to a bridged adapter',
  xen: "let the host's bridge pass the guest's extra MACs: no MAC anti-spoofing rules on the VM's vif",
  aws:
    'an EC2 ENI delivers only its own MAC: use -o kind=ipvlan (containers share the parent MAC), with the ' +
    "containers' addresses assigned to the ENI as secondary private IPs",
  gcp:
    "a Compute Engine NIC delivers only its own MAC: use -o kind=ipvlan, with the containers' addresses as the " +
    "NIC's alias IP ranges",
  azure:
    "an Azure NIC delivers only its own MAC: use -o kind=ipvlan, with the containers' addresses as the NIC's " +
    'secondary IP configurations',
};

/** What the user reads for each environment (the name itself is the stable id in --json). */
const LABEL: Readonly<Record<string, string>> = {
  vmware: 'VMware',
  'hyper-v': 'Hyper-V',
  kvm: 'KVM/QEMU',
  virtualbox: 'VirtualBox',
  xen: 'Xen',
  aws: 'AWS EC2',
  gcp: 'Google Compute Engine',
  azure: 'Microsoft Azure',
  'bare-metal': 'bare metal (no hypervisor named in DMI)',
  unknown: 'unknown (DMI not readable)',
};

/** The clouds whose virtual NIC drops frames from any MAC but its own, whatever the guest sets. */
const DROPS_EXTRA_MACS = new Set(['aws', 'gcp', 'azure']);

function readField(dir: string, field: string): string {
  try {
    return fs.readFileSync(path.join(dir, field), 'utf8').trim();
  } catch {
    return '';
  }
}

/** The DMI fields under sysRoot, or undefined when the directory is absent (no SMBIOS: Firecracker, ARM boards). */
export function readDmi(sysRoot: string): Dmi | undefined {
  const dir = path.join(sysRoot, 'class', 'dmi', 'id');
  if (!fs.existsSync(dir)) return undefined;
  return Object.fromEntries(FIELDS.map((f) => [f, readField(dir, f)])) as Dmi;
}

/** The environment's name from DMI; clouds first, since each runs on a hypervisor that DMI may also name. */
export function nameFromDmi(d: Dmi): string {
  const vendors = [d.sys_vendor, d.board_vendor, d.bios_vendor];
  const any = (re: RegExp) => vendors.some((v) => re.test(v));
  if (d.chassis_asset_tag === AZURE_ASSET_TAG) return 'azure';
  // Nitro: "Amazon EC2" in sys_vendor, board_vendor and bios_vendor; the older Xen instances: "Xen" with an
  // "amazon" BIOS version (4.11.amazon).
  if (any(/^Amazon EC2$/) || /amazon/i.test(d.bios_version)) return 'aws';
  if (d.product_name === 'Google Compute Engine' || any(/^Google$/)) return 'gcp';
  if (any(/^VMware/) || /^VMware/.test(d.product_name)) return 'vmware';
  if (d.sys_vendor === 'Microsoft Corporation' && d.product_name === 'Virtual Machine') return 'hyper-v';
  if (any(/^innotek GmbH$/) || d.product_name === 'VirtualBox') return 'virtualbox';
  if (any(/^Xen$/) || d.product_name === 'HVM domU') return 'xen';
  // QEMU with or without KVM, libvirt's "KVM" product, OpenStack Nova and KubeVirt guests (all QEMU underneath).
  if (any(/^(QEMU|Red Hat|OpenStack Foundation|KubeVirt)$/) || /^(KVM|OpenStack Nova|KubeVirt)/.test(d.product_name))
    return 'kvm';
  return 'bare-metal';
}

export function environmentOf(name: string): Environment {
  const switchFix = SWITCH_FIX[name];
  return {
    name,
    ...(switchFix !== undefined ? { switchFix } : {}),
    ...(DROPS_EXTRA_MACS.has(name) ? { dropsExtraMacs: true } : {}),
  };
}

/** The environment the host runs in: 'unknown' when DMI cannot be read. */
export function detectEnvironment(sysRoot: string): Environment {
  const dmi = readDmi(sysRoot);
  return environmentOf(dmi === undefined ? 'unknown' : nameFromDmi(dmi));
}

export const labelOf = (e: Environment): string => LABEL[e.name] ?? e.name;

/**
 * env.hypervisor. A cloud that drops extra MACs blocks a network whose containers have MACs of their own; a
 * hypervisor whose switch setting doctor cannot see is a warning naming the setting (lan.new-mac settles it);
 * bare metal, an unreadable DMI, or a network on the parent's MAC (ipvlan) is ok.
 */
export const checkEnvironment: Check = (ctx: DoctorContext): Promise<Finding[]> => {
  const e = ctx.environment;
  const ownMacs = ctx.network?.ownMacs ?? true;
  const detail = { environment: e.name, dmi: path.join(ctx.sysRoot, 'class', 'dmi', 'id') };
  const label = labelOf(e);
  const which = ctx.network ? `network ${ctx.network.name}` : 'a macvlan network (the default kind)';
  let f: Finding;
  if (e.switchFix === undefined || !ownMacs) {
    const note = e.switchFix === undefined ? '' : `; ${which} uses the parent's MAC, which it passes`;
    f = { check: 'env.hypervisor', severity: 'ok', summary: `${label}${note}`, detail };
  } else if (e.dropsExtraMacs) {
    f = {
      check: 'env.hypervisor',
      severity: 'blocking',
      summary: `${label} drops frames from MACs other than the NIC's own: ${which} cannot reach the LAN`,
      fix: e.switchFix,
      detail,
    };
  } else {
    f = {
      check: 'env.hypervisor',
      severity: 'warn',
      summary: `${label}: its virtual switch passes containers' own MACs only when set to (lan.new-mac tests it)`,
      fix: e.switchFix,
      detail,
    };
  }
  return Promise.resolve([f]);
};
