// Helpers for the live doctor tests: run checks inside a namespace (run-check.ts under nsenter, as the CLI would
// run there), and find one finding by id.
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import type { DoctorContext, Finding } from '../../src/doctor/finding';
import type { NewMacOptions } from '../../src/doctor/new-mac';
import { run } from '../lab/sh';

export type CheckName = 'kinds' | 'parent' | 'sysctls' | 'new-mac';

const RUNNER = path.join(__dirname, 'run-check.js');

function argv(nsPath: string, checks: CheckName[], ctx: Partial<DoctorContext>, newMac?: NewMacOptions): string[] {
  return [`--net=${nsPath}`, process.execPath, RUNNER, JSON.stringify({ checks, ctx, newMac })];
}

/** Runs `checks` in the namespace at nsPath and returns their findings. */
export async function checksIn(
  nsPath: string,
  checks: CheckName[],
  ctx: Partial<DoctorContext> = {},
  newMac?: NewMacOptions,
): Promise<Finding[]> {
  const r = await run('nsenter', argv(nsPath, checks, ctx, newMac), { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`doctor checks in ${nsPath} exited ${r.code}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as Finding[];
}

/** Starts the checks without waiting (the interrupt tests signal it). */
export function startChecksIn(
  nsPath: string,
  checks: CheckName[],
  ctx: Partial<DoctorContext> = {},
  newMac?: NewMacOptions,
): ChildProcess {
  return spawn('nsenter', argv(nsPath, checks, ctx, newMac), { stdio: ['ignore', 'pipe', 'pipe'] });
}

export function finding(fs: readonly Finding[], check: string): Finding {
  const f = fs.find((x) => x.check === check);
  if (!f) throw new Error(`no finding ${check} in ${JSON.stringify(fs.map((x) => x.check))}`);
  return f;
}
