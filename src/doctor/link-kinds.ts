// kernel.*: the kernel's version and the link kinds macnet uses, found by creating one of each in a throwaway
// namespace. Reading the kernel's config (moby's check-config.sh) says what was built, not what loads now: a
// module missing from /lib/modules, blacklisted, or refused by a lockdown looks present there and fails at
// `docker network create`. The namespace is held by an fd only (ScratchNetns): when the check ends, fails or
// the process is interrupted, the kernel removes it and every link made in it.
import * as os from 'node:os';
import { isMacnetError } from '../errors';
import { type CreateLinkSpec, Kernel, ScratchNetns } from '../kernel';
import type { DoctorContext, Finding, Severity } from './finding';

export type LinkKindName = 'macvlan' | 'ipvlan' | 'vlan' | 'dummy';

interface KindInfo {
  readonly check: string;
  /** What macnet needs the kind for: the consequence when it is missing. */
  readonly neededFor: string;
  readonly missing: Severity;
  /** The fix when it is missing; none for a kind macnet does without (missing is then ok). */
  readonly fix?: string;
  /** A link of the kind, on the lower links `lowers` of the namespace. */
  readonly spec: (lowers: readonly [string, string]) => CreateLinkSpec;
}

export const KIND_CHECKS: Readonly<Record<LinkKindName, KindInfo>> = {
  macvlan: {
    check: 'kernel.macvlan',
    neededFor: 'every macvlan network (the default kind), probe links and host access',
    missing: 'blocking',
    fix: 'modprobe macvlan (kernel option CONFIG_MACVLAN), or use a kernel built with it',
    spec: ([a]) => ({ kind: 'macvlan', name: 'dr-mv', parent: a, mode: 'bridge' }),
  },
  ipvlan: {
    check: 'kernel.ipvlan',
    neededFor:
      'networks with -o kind=ipvlan: the way out where the LAN accepts no extra MACs (Wi-Fi parents, Azure, a ' +
      'virtual switch without forged transmits)',
    missing: 'warn',
    fix: 'modprobe ipvlan (kernel option CONFIG_IPVLAN)',
    // On the other lower link: the kernel refuses ipvlan and macvlan children on one parent (EBUSY).
    spec: ([, b]) => ({ kind: 'ipvlan', name: 'dr-ipv', parent: b, mode: 'l2' }),
  },
  vlan: {
    check: 'kernel.vlan',
    neededFor: 'parents written name.vid (-o parent=eth0.50), the 802.1q sub-interfaces macnet creates',
    missing: 'warn',
    fix: 'modprobe 8021q (kernel option CONFIG_VLAN_8021Q)',
    spec: ([a]) => ({ kind: 'vlan', name: 'dr-vlan', parent: a, id: 42 }),
  },
  dummy: {
    check: 'kernel.dummy',
    // src/drivers/network.ts createParent: the only dummy macnet makes is an internal network's parent, and on
    // KERNEL_FEATURE_MISSING it makes an empty bridge there instead (this machine's kernel has no dummy; the
    // internal-network tests run on that bridge). So a missing dummy changes nothing a user sees.
    neededFor:
      'only as the parent of an internal network (no -o parent), and there it makes an empty bridge instead, ' +
      'which works the same',
    missing: 'ok',
    spec: () => ({ kind: 'dummy', name: 'dr-dummy' }),
  },
};

export const KIND_ORDER: readonly LinkKindName[] = ['macvlan', 'ipvlan', 'vlan', 'dummy'];

/** kernel.version: the running kernel's release (uname), for the report and for bug reports. */
function versionFinding(): Finding {
  return {
    check: 'kernel.version',
    severity: 'ok',
    summary: `kernel ${os.release()}`,
    detail: { release: os.release(), version: os.version() },
  };
}

/**
 * Two lower links for the children: a veth pair (Ethernet, like a real parent), or, on a kernel without veth, two
 * empty bridges (also Ethernet devices that take macvlan, ipvlan and vlan children).
 */
async function makeLowers(k: Kernel): Promise<readonly [string, string]> {
  try {
    await k.links.create({ kind: 'veth', name: 'dr-lo0', peer: { name: 'dr-lo1' } });
  } catch (e) {
    if (!isMacnetError(e, 'KERNEL_FEATURE_MISSING')) throw e;
    await k.links.create({ kind: 'bridge', name: 'dr-lo0' });
    await k.links.create({ kind: 'bridge', name: 'dr-lo1' });
  }
  return ['dr-lo0', 'dr-lo1'];
}

function kindFinding(name: LinkKindName, outcome: 'works' | 'missing' | Error): Finding {
  const info = KIND_CHECKS[name];
  const label = name === 'vlan' ? '802.1q vlan' : name;
  if (outcome === 'works') {
    return { check: info.check, severity: 'ok', summary: `${label} links work`, detail: { kind: name, works: true } };
  }
  if (outcome === 'missing') {
    return {
      check: info.check,
      severity: info.missing,
      summary:
        info.missing === 'ok'
          ? `this kernel has no ${label} links, and macnet does without: it would use one ${info.neededFor}`
          : `this kernel has no ${label} links: needed for ${info.neededFor}`,
      ...(info.fix !== undefined && info.missing !== 'ok' ? { fix: info.fix } : {}),
      detail: { kind: name, works: false },
    };
  }
  // Refused for another reason than an unknown kind (a policy, a resource limit): we cannot tell that it works.
  return {
    check: info.check,
    severity: 'warn',
    summary:
      `no ${label} link could be made in a throwaway namespace, so it is unknown whether it works: ` + outcome.message,
    fix: `run macnet doctor as root; if it was, make one by hand to see why: ip link add ... type ${name}`,
    detail: { kind: name, works: false, error: outcome.message },
  };
}

/**
 * The check: kernel.version, then kernel.macvlan, kernel.ipvlan, kernel.vlan, kernel.dummy (in that order).
 * `kinds` narrows the kinds tried (tests).
 */
export async function checkLinkKinds(
  _ctx: DoctorContext,
  kinds: readonly LinkKindName[] = KIND_ORDER,
): Promise<Finding[]> {
  const findings: Finding[] = [versionFinding()];
  let ns: ScratchNetns | undefined;
  try {
    ns = ScratchNetns.open();
    await Kernel.with(ns.path, async (k) => {
      const lowers = await makeLowers(k);
      for (const name of kinds) {
        // Left in place: the namespace's end removes them all (deleting each would wait an RCU grace period).
        const made = await k.links.create(KIND_CHECKS[name].spec(lowers)).then(
          () => 'works' as const,
          (e: unknown) => (isMacnetError(e, 'KERNEL_FEATURE_MISSING') ? ('missing' as const) : (e as Error)),
        );
        findings.push(kindFinding(name, made));
      }
    });
  } catch (e) {
    // No namespace or no lower link (no CAP_SYS_ADMIN, a seccomp profile): nothing could be tried.
    const tried = new Set(findings.map((f) => f.check));
    for (const name of kinds) if (!tried.has(KIND_CHECKS[name].check)) findings.push(kindFinding(name, e as Error));
  } finally {
    ns?.close();
  }
  return findings;
}
