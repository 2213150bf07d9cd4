// The IPAM scenarios of scenarios-ipam.test.ts (Docker's TestMacvlanIPAM, TestMacvlanIPAMOverlap, TestPointToPoint,
// TestMACVlanDNS) with the daemon on a one-member etcd (--store etcd) instead of SQLite: what dockerd sees of the
// IPAM must not depend on the store (issue 19). The member runs in the lab host's namespace (./fixture.ts).
import './store-etcd';
import './fixture';
import './scenarios-ipam.test';
