// The program test/vm/power-cut.test.ts boots in the VM, once per boot: the IPAM on the SQLite store as the
// daemon runs them, on an ext4 file system on the VM's virtio disk (/dev/vda). Each boot first reports which
// addresses the reopened state holds (stdout, which reaches the host through the VM harness's results share);
// then
//   burst: allocates with CONCURRENCY requests in flight, printing each address on the serial console the
//          moment its RequestAddress answered, until the host kills qemu (or the pool runs out);
//   final: allocates every address left and reports them (stdout).
// The answer lines go to the serial console, not stdout: the host sees them as they are written and kills qemu
// while allocations are in flight; a line it saw was an answer given.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { isMacnetError } from '../../src/errors';
import { Ipam } from '../../src/ipam';
import { SqliteStore } from '../../src/store/sqlite';

export const SUBNET = '198.18.0.0/20';
/** Usable addresses of SUBNET: all but the network and broadcast addresses. */
export const USABLE = 4094;
/** Every line this program prints on the console starts with it. */
export const MARK = 'macnet-power-cut';
const MOUNT = '/tmp/disk'; // the guest's /tmp is its own tmpfs (test/lab/vm.ts)
const CONCURRENCY = Number(process.env.MACNET_POWER_CUT_CONCURRENCY ?? 32);

/** What a boot reports on stdout, one JSON object per line. */
export interface GuestReport {
  /** The addresses the state held when this boot opened it. */
  allocated?: string[];
  /** final: the addresses allocated after that, until the pool was exhausted. */
  fresh?: string[];
}

const report = (r: GuestReport) => process.stdout.write(`${JSON.stringify(r)}\n`);

async function main(phase: string): Promise<void> {
  if (phase !== 'burst' && phase !== 'final') throw new Error(`usage: power-cut-guest burst|final, not ${phase}`);
  const durability = process.env.MACNET_POWER_CUT_DURABILITY === 'none' ? 'none' : 'group';
  fs.mkdirSync(MOUNT, { recursive: true });
  // Mounting replays ext4's journal: the file system as the power cut left it.
  execFileSync('mount', ['-t', 'ext4', '/dev/vda', MOUNT]);
  const store = SqliteStore.open(`${MOUNT}/state/state.db`, { durability });
  const ipam = new Ipam(store);
  await ipam.load();
  let poolId = `LocalDefault/${SUBNET}`;
  let allocated: string[] = [];
  try {
    allocated = (await ipam.allocations(poolId)).map((a) => a.address);
  } catch (e) {
    if (!isMacnetError(e, 'IPAM_POOL_NOT_FOUND')) throw e;
    poolId = (await ipam.requestPool({ addressSpace: 'LocalDefault', pool: SUBNET, v6: false })).poolId;
  }
  report({ allocated });

  const fresh: string[] = [];
  const tty = fs.openSync('/dev/ttyS0', fs.constants.O_WRONLY | fs.constants.O_NOCTTY);
  const say = (line: string) => fs.writeSync(tty, `${MARK} ${line}\n`);
  say(`${phase} ${durability}`);
  let exhausted = false;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (!exhausted) {
        try {
          const ip = (await ipam.requestAddress({ poolId })).address.split('/')[0]!;
          if (phase === 'burst') say(`answered ${ip}`);
          else fresh.push(ip);
        } catch (e) {
          if (!isMacnetError(e, 'IPAM_POOL_EXHAUSTED')) throw e;
          exhausted = true;
        }
      }
    }),
  );
  say('exhausted');
  if (phase === 'final') report({ fresh });
  await store.close();
  execFileSync('umount', [MOUNT]);
}

if (require.main === module) {
  main(process.argv[2] ?? '').catch((e: unknown) => {
    console.error('power-cut-guest:', e);
    process.exitCode = 1;
  });
}
