// Runs doctor's live checks the way the CLI will: in this process's own network namespace, which the tests pick
// by starting it under `nsenter --net=<lab namespace>` (live.ts). Prints the findings as one JSON line.
// argv: a JSON object { checks: ['kinds' | 'parent' | 'sysctls' | 'new-mac'], ctx: Partial<DoctorContext>,
// newMac?: NewMacOptions }.
import type { DoctorContext, Finding } from '../../src/doctor/finding';
import { checkLinkKinds } from '../../src/doctor/link-kinds';
import { checkNewMac, type NewMacOptions } from '../../src/doctor/new-mac';
import { checkParentLive } from '../../src/doctor/parent-live';
import { checkSysctls } from '../../src/doctor/sysctls';

interface Args {
  checks: ('kinds' | 'parent' | 'sysctls' | 'new-mac')[];
  ctx: Partial<DoctorContext>;
  newMac?: NewMacOptions;
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as Args;
  const ctx: DoctorContext = {
    sysRoot: '/sys',
    procRoot: '/proc',
    etcRoot: '/etc',
    runRoot: '/run',
    environment: { name: 'bare-metal' },
    ...args.ctx,
  };
  const out: Finding[] = [];
  for (const c of args.checks) {
    if (c === 'kinds') out.push(...(await checkLinkKinds(ctx)));
    else if (c === 'parent') out.push(...(await checkParentLive(ctx)));
    else if (c === 'sysctls') out.push(...(await checkSysctls(ctx)));
    else out.push(...(await checkNewMac(ctx, args.newMac)));
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
