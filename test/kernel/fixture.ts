// Shared set-up for kernel tests: a throwaway namespace with a Kernel handle on it, and the rule for link
// kinds this kernel may lack (dummy, vlan, ipvlan are missing on the development machine's kernel; the VM
// run sets MACNET_REQUIRE_KINDS so that there a missing kind fails instead of skipping).
import type { TestContext } from 'node:test';
import { kernelLacks } from '../skip-policy';
import { Kernel } from '../../src/kernel';
import { isMacnetError } from '../../src/errors';
import { TestNetns } from '../lab/netns';

export interface NsFixture {
  ns: TestNetns;
  k: Kernel;
  close(): Promise<void>;
}

export async function nsFixture(label: string): Promise<NsFixture> {
  const ns = await TestNetns.create(label);
  const k = Kernel.open(ns.path);
  return {
    ns,
    k,
    async close() {
      await k.close();
      await ns.delete();
    },
  };
}

const required = new Set((process.env.MACNET_REQUIRE_KINDS ?? '').split(',').filter(Boolean));

/**
 * Probes whether the kernel has link kind `kind` by creating one (a throwaway dummy or, for vlan/ipvlan, a
 * child of `parent`). Returns true if it exists; otherwise skips the test with the reason, or fails it
 * when the kind is required here.
 */
export async function requireKind(
  t: TestContext,
  k: Kernel,
  kind: 'dummy' | 'vlan' | 'ipvlan',
  parent: string,
): Promise<boolean> {
  const name = `probe-${kind}`;
  try {
    if (kind === 'dummy') await k.links.create({ kind: 'dummy', name });
    else if (kind === 'vlan') await k.links.create({ kind: 'vlan', name, parent, id: 4094 });
    else await k.links.create({ kind: 'ipvlan', name, parent });
    await k.links.delete(name);
    return true;
  } catch (e) {
    if (!isMacnetError(e, 'KERNEL_FEATURE_MISSING') || required.has(kind)) throw e;
    t.skip(kernelLacks(kind, `link kind (${(e as Error).message}); test/vm runs this under a stock kernel`));
    return false;
  }
}
