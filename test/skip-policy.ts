// The one list of reasons a test may skip for in CI (CI=true): test/run.js fails the run on a skip whose reason
// matches none of these, and prints every skip grouped by reason. A reason is allowed here only when the skipped
// behaviour runs elsewhere in the same CI run; say where in `coveredBy`. Tests build their reasons with the
// functions below, so that the text and the rule cannot drift apart.

export interface SkipReason {
  readonly id: string;
  readonly pattern: RegExp;
  readonly coveredBy: string;
}

export const ALLOWED_SKIPS: readonly SkipReason[] = [
  {
    id: 'kernel-lacks-kind',
    pattern: /^this kernel has no (dummy|vlan|802\.1q vlan|ipvlan)\b/,
    coveredBy:
      'test/vm, under a stock Debian kernel in a VM where a skip fails the run: the kernel and driver tests ' +
      "(kernel-in-vm.test.ts, with doctor's link-kind checks), and the Docker-level ipvlan and vlan " +
      'expectations with a real dockerd of each engine (docker-in-vm.test.ts)',
  },
  {
    id: 'engine-lacks-feature',
    pattern: /^docker \d+\.\d+\.\d+ lacks .+ \(Docker \d+\+\)/,
    coveredBy: 'the same test on the other engine (test/run.js runs every Docker test on both)',
  },
];

/** The id of the allowed reason `reason` matches, or undefined for a skip CI must refuse. */
export function allowedSkip(reason: string): string | undefined {
  return ALLOWED_SKIPS.find((r) => r.pattern.test(reason))?.id;
}

/** This kernel lacks a link kind (vlan, ipvlan, dummy). */
export function kernelLacks(kind: 'dummy' | 'vlan' | '802.1q vlan' | 'ipvlan', detail: string): string {
  return `this kernel has no ${kind} ${detail}`;
}

/** The engine under test lacks a feature that a newer engine has. */
export function engineLacks(version: string, feature: string, since: number, detail: string): string {
  // Debian's version carries a packaging suffix (20.10.24+dfsg1): the engine's own version is the part before it.
  return `docker ${version.split('+')[0]} lacks ${feature} (Docker ${since}+): ${detail}`;
}
