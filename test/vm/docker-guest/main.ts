// The guest side of test/vm/docker-in-vm.test.ts, run inside the VM with node's TAP reporter: one process, one
// lab (fixture.ts), the scenarios of each module in turn. Not a *.test.ts file: test/run.js must not run it on
// the host, whose kernel has no ipvlan or vlan links.
import './fixture';
import './ipvlan';
import './vlan';
import './lan';
import './dhcp';
import './errors';
