// The expectations of the VM Docker suite (issue 17), one guest test each. Both sides use this list: the guest
// names its tests "<id>: <title>" (test/vm/docker-guest/*.ts), the host mirrors each as a test of its own
// (test/vm/docker-in-vm.test.ts), so a guest test that failed, skipped or never ran fails by name on the host.
export const EXPECTATIONS = {
  'ipvlan-l2': "ipvlan l2: containers reach the gateway, each other on one host, and another host's containers",
  'ipvlan-l3':
    'ipvlan l3: containers of two subnets on one parent reach each other through the parent; no default gateway ' +
    'but a device route; the LAN reaches them only through a route to the host',
  'ipvlan-l3s':
    'ipvlan l3s: containers of two subnets on one parent reach each other through the parent; no default gateway ' +
    'but a device route; the LAN reaches them only through a route to the host',
  'ipvlan-private': 'ipvlan_flag private: two containers on one parent cannot reach each other, the gateway still can',
  'ipvlan-vepa': "ipvlan_flag vepa: two containers reach each other only when the LAN switch's port hairpins",
  'ipvlan-host-access': 'host access on ipvlan l2, IPv4 and IPv6: host and container reach each other',
  'vlan-lifecycle':
    'parent=eth0.50 is created with the first network and removed with the last; kept when it existed before',
  'vlan-isolation': 'two VLANs on one trunk are isolated from each other, each reaches its own side of the LAN',
  'vlan-mtu': "MTU on a VLAN parent: the container gets the network's mtu; above the VLAN's MTU is refused",
  'ipvlan-dhcp': "DHCP mode on ipvlan: containers sharing the parent's MAC get leases of their own (client-id)",
  'ipvlan-scan': '`macnet scan` on an ipvlan network lists containers, host, gateway and LAN device, no conflict',
  'error-ipvlan-twice': 'error table: a second ipvlan network on the parent of an ipvlan network is refused',
  'error-macvlan-beside-ipvlan': 'error table: a macvlan network on the parent of an ipvlan network is refused',
  'error-vlan-0': 'error table: vlan id 0 (parent=eth0.0) is refused',
  'error-vlan-4095': 'error table: vlan id 4095 (parent=eth0.4095) is refused',
} as const;

export type ExpectationId = keyof typeof EXPECTATIONS;

/** The guest test's name for an expectation. */
export const guestTestName = (id: ExpectationId): string => `${id}: ${EXPECTATIONS[id]}`;
