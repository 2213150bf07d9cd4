// What `macnet doctor` prints: one line per finding (severity, check, summary) with its fix indented below, or
// the --json document. The document's shape is stable (docs/doctor.md, "--json"): `version` changes when a field
// changes meaning or goes away; new fields and new check ids may appear without a new version.
import type { DoctorContext, Environment, Finding, Severity } from './finding';
import { worst } from './finding';

export interface Report {
  readonly version: 1;
  readonly host: { readonly name: string; readonly kernel: string };
  readonly parent?: string;
  readonly network?: { readonly name: string; readonly id: string; readonly kind: string };
  /** The gateway the LAN checks ask: the network's, else the parent's default route's. */
  readonly gateway?: string;
  readonly environment: Environment;
  readonly findings: readonly Finding[];
  readonly worst: Severity;
}

export function buildReport(
  ctx: DoctorContext,
  findings: readonly Finding[],
  host: { name: string; kernel: string },
): Report {
  const n = ctx.network;
  return {
    version: 1,
    host,
    ...(ctx.parent !== undefined ? { parent: ctx.parent } : {}),
    ...(n ? { network: { name: n.name, id: n.id, kind: n.kind } } : {}),
    ...(ctx.gateway !== undefined ? { gateway: ctx.gateway } : {}),
    environment: ctx.environment,
    findings,
    worst: worst(findings),
  };
}

/** 0 when nothing blocks (ok or warn), 1 when something does; 2 (a wrong command line) is main()'s. */
export const exitStatus = (r: Pick<Report, 'worst'>): number => (r.worst === 'blocking' ? 1 : 0);

export function renderText(r: Report): string {
  const width = Math.max(0, ...r.findings.map((f) => f.check.length));
  const lines = r.findings.flatMap((f) => [
    `${f.severity.padEnd(8)} ${f.check.padEnd(width)}  ${f.summary}`,
    ...(f.fix !== undefined ? [`${' '.repeat(9 + width + 2)}fix: ${f.fix}`] : []),
  ]);
  const counts = (['blocking', 'warn', 'ok'] as const)
    .map((s) => `${r.findings.filter((f) => f.severity === s).length} ${s}`)
    .join(', ');
  const what = r.network ? `network ${r.network.name} (parent ${r.parent})` : r.parent ? `parent ${r.parent}` : 'host';
  return `${lines.join('\n')}\n${what} on ${r.host.name}: ${counts}; worst ${r.worst}\n`;
}

export const renderJson = (r: Report): string => `${JSON.stringify(r, null, 2)}\n`;
