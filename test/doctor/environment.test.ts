// env.hypervisor from DMI trees made by hand with each vendor's documented values (docs/doctor.md lists them):
// the environment named, the switch setting it needs, and the severity for a network with and without its
// containers' own MACs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AZURE_ASSET_TAG, checkEnvironment, detectEnvironment } from '../../src/doctor/environment';
import { Tree } from './trees';

type Dmi = Partial<
  Record<'sys_vendor' | 'product_name' | 'board_vendor' | 'bios_vendor' | 'bios_version' | 'chassis_asset_tag', string>
>;

const dmiTree = (d: Dmi) =>
  Tree.make(Object.fromEntries(Object.entries(d).map(([k, v]) => [`sys/class/dmi/id/${k}`, `${v}\n`])));

const CASES: [string, Dmi, string][] = [
  [
    'VMware',
    { sys_vendor: 'VMware, Inc.', product_name: 'VMware Virtual Platform', bios_vendor: 'Phoenix Technologies LTD' },
    'vmware',
  ],
  ['VMware (EFI)', { sys_vendor: 'VMware, Inc.', product_name: 'VMware20,1', bios_vendor: 'VMware, Inc.' }, 'vmware'],
  [
    'Hyper-V',
    {
      sys_vendor: 'Microsoft Corporation',
      product_name: 'Virtual Machine',
      chassis_asset_tag: '0000-0000-0000-0000-0000-0000-00',
    },
    'hyper-v',
  ],
  [
    'Azure',
    { sys_vendor: 'Microsoft Corporation', product_name: 'Virtual Machine', chassis_asset_tag: AZURE_ASSET_TAG },
    'azure',
  ],
  ['KVM/QEMU', { sys_vendor: 'QEMU', product_name: 'Standard PC (Q35 + ICH9, 2009)', bios_vendor: 'SeaBIOS' }, 'kvm'],
  ['OpenStack', { sys_vendor: 'OpenStack Foundation', product_name: 'OpenStack Nova', bios_vendor: 'SeaBIOS' }, 'kvm'],
  [
    'VirtualBox',
    { sys_vendor: 'innotek GmbH', product_name: 'VirtualBox', board_vendor: 'Oracle Corporation' },
    'virtualbox',
  ],
  ['Xen', { sys_vendor: 'Xen', product_name: 'HVM domU', bios_vendor: 'Xen', bios_version: '4.17.3' }, 'xen'],
  [
    'AWS Nitro',
    { sys_vendor: 'Amazon EC2', product_name: 'm6i.large', bios_vendor: 'Amazon EC2', board_vendor: 'Amazon EC2' },
    'aws',
  ],
  [
    'AWS on Xen',
    { sys_vendor: 'Xen', product_name: 'HVM domU', bios_vendor: 'Xen', bios_version: '4.11.amazon' },
    'aws',
  ],
  ['GCP', { sys_vendor: 'Google', product_name: 'Google Compute Engine', bios_vendor: 'Google' }, 'gcp'],
  ['bare metal', { sys_vendor: 'Dell Inc.', product_name: 'PowerEdge R640', bios_vendor: 'Dell Inc.' }, 'bare-metal'],
];

test("each vendor's DMI values name its environment; no DMI directory is 'unknown'", () => {
  for (const [label, dmi, name] of CASES) {
    const t = dmiTree(dmi);
    try {
      assert.equal(detectEnvironment(`${t.root}/sys`).name, name, label);
    } finally {
      t.remove();
    }
  }
  const none = Tree.make();
  try {
    assert.deepEqual(detectEnvironment(`${none.root}/sys`), { name: 'unknown' });
  } finally {
    none.remove();
  }
});

test('the switch setting each environment needs, and which cannot pass extra MACs at all', () => {
  const env = (name: string) => {
    const t = dmiTree(CASES.find((c) => c[2] === name)![1]);
    try {
      return detectEnvironment(`${t.root}/sys`);
    } finally {
      t.remove();
    }
  };
  assert.match(env('vmware').switchFix!, /Promiscuous mode, MAC address changes and Forged transmits.*MAC learning/);
  assert.match(env('hyper-v').switchFix!, /Set-VMNetworkAdapter -VMName <vm> -MacAddressSpoofing On/);
  assert.match(env('virtualbox').switchFix!, /Allow All/);
  assert.match(env('kvm').switchFix!, /trustGuestRxFilters='yes'/);
  assert.match(env('xen').switchFix!, /vif/);
  for (const cloud of ['aws', 'gcp', 'azure']) {
    assert.equal(env(cloud).dropsExtraMacs, true, cloud);
    assert.match(env(cloud).switchFix!, /-o kind=ipvlan/, cloud);
  }
  assert.equal(env('vmware').dropsExtraMacs, undefined);
  assert.deepEqual(env('bare-metal'), { name: 'bare-metal' });
});

test('env.hypervisor: a cloud blocks own MACs, a hypervisor warns with its setting, ipvlan and bare metal are ok', async () => {
  const t = Tree.make();
  try {
    const sev = async (environment: string, ownMacs?: boolean) => {
      const [f] = await checkEnvironment(
        t.ctx({ environment, ...(ownMacs !== undefined ? { network: { ownMacs } } : {}) }),
      );
      return [f!.severity, f!.fix !== undefined];
    };
    assert.deepEqual(await sev('azure'), ['blocking', true]);
    assert.deepEqual(await sev('aws', true), ['blocking', true]);
    assert.deepEqual(await sev('aws', false), ['ok', false]);
    assert.deepEqual(await sev('vmware'), ['warn', true]);
    assert.deepEqual(await sev('hyper-v', false), ['ok', false]);
    assert.deepEqual(await sev('bare-metal'), ['ok', false]);
    assert.deepEqual(await sev('unknown'), ['ok', false]);
    const [vm] = await checkEnvironment(t.ctx({ environment: 'vmware' }));
    assert.equal(vm!.check, 'env.hypervisor');
    assert.match(vm!.summary, /^VMware: its virtual switch passes containers' own MACs only when set to/);
  } finally {
    t.remove();
  }
});
