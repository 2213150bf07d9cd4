// `macnet doctor`'s checks in the order they run and print, and the run itself. Each check is independent
// (finding.ts): it reads the context and returns its findings; one that throws becomes a warning of its own, so
// that one broken check never hides the others' findings.
import { checkEnvironment, detectEnvironment } from './environment';
import type { Check, DoctorContext, Finding } from './finding';
import { checkLinkKinds } from './link-kinds';
import { checkNetworkd, checkNetworkManager } from './managers';
import { checkNewMac } from './new-mac';
export { defaultGateway } from './new-mac';
import { checkParentLive } from './parent-live';
import { checkParentSysfs } from './parent-sysfs';
import { checkSysctls } from './sysctls';

export type { Check, DoctorContext, DoctorNetwork, Environment, Finding, Severity } from './finding';
export { worst } from './finding';
export { detectEnvironment };
export { buildReport, exitStatus, renderJson, renderText, type Report } from './report';

/** The checks, in the order they run and print. */
export const CHECKS: readonly Check[] = [
  // The kernel first (a missing macvlan blocks everything after it), then the environment (the new-MAC check's fix
  // names its switch setting), the parent's state before its kind, the host's settings, and last the LAN itself.
  checkLinkKinds,
  checkEnvironment,
  checkParentLive,
  checkParentSysfs,
  checkSysctls,
  checkNetworkManager,
  checkNetworkd,
  checkNewMac,
];

/** Runs each check in turn (the live ones make namespaces and links: one at a time keeps them apart). */
export async function runChecks(ctx: DoctorContext, checks: readonly Check[] = CHECKS): Promise<Finding[]> {
  const out: Finding[] = [];
  for (const check of checks) {
    try {
      out.push(...(await check(ctx)));
    } catch (e) {
      out.push({
        check: 'doctor.check-failed',
        severity: 'warn',
        summary: `the check ${check.name || '(anonymous)'} failed: ${(e as Error).message}`,
        fix: 'report this with the output of macnet doctor --json',
        detail: { check: check.name || null },
      });
    }
  }
  return out;
}
