// Power cuts during bursts of allocations (issue 14): the IPAM's state on an ext4 file system on a virtual disk in
// a VM (stock kernel, test/lab/vm.ts), qemu killed with SIGKILL while allocations are in flight, the VM booted
// again on the same disk. No address the IPAM had answered may be free in the reopened state, nor handed out
// again. Each boot runs test/vm/power-cut-guest.ts: it reports the state it found, then allocates and prints
// each answer on the serial console; the host counts the answers and kills qemu after a random number of them.
// The last boot allocates what is left of the pool, so every address is accounted for exactly once.
//
// What the cut models: SIGKILL ends the guest with its memory (page cache, dirty buffers, requests not yet handed
// to the virtual disk); the disk image keeps what the guest had written to it (qemu's cache=writeback writes it
// to the host file, which outlives qemu). That is a power cut for a disk without a volatile cache, or one whose
// cache honours flushes.
//
//   MACNET_POWER_CUT_ROUNDS=5            more cuts (default 2)
//   MACNET_POWER_CUT_DURABILITY=none     the control: the store as it was before sync() (synchronous=NORMAL,
//                                        no group commit), which should lose answered allocations
//   MACNET_POWER_CUT_KEEP=DIR            on a failure, the disk image is copied there
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DISK_MODULES, runInVm, vmAvailable, type VmResult } from '../lab/vm';
import { MARK, SUBNET, USABLE, type GuestReport } from './power-cut-guest';

const ROUNDS = Number(process.env.MACNET_POWER_CUT_ROUNDS ?? 2);
const DURABILITY = process.env.MACNET_POWER_CUT_DURABILITY === 'none' ? 'none' : 'group';
/** Answers seen before the cut: random in this range, so the cut falls at a different point of each burst. */
const KILL_AFTER = [150, 600] as const;
const IMAGE_MIB = 64;
/** Not /tmp or /run: the guest has tmpfs there, and the image must be the host's file. */
const BASE = '/var/tmp';
const GUEST = path.join(__dirname, 'power-cut-guest.js');

/**
 * The answered addresses in the console text, in order: whole lines only. The cut can fall in the middle of a
 * line, and "answered 198.18.1.1" cut from "answered 198.18.1.17" names another address (this test once
 * reported such a line as a lost allocation).
 */
function answers(console: string): string[] {
  return [...console.matchAll(new RegExp(`^${MARK} answered (\\S+)\\r?\\n`, 'gm'))].map((m) => m[1]!);
}

function reports(r: VmResult): GuestReport {
  const out: GuestReport = {};
  for (const line of r.stdout.split('\n')) if (line.trim()) Object.assign(out, JSON.parse(line) as GuestReport);
  return out;
}

function boot(image: string, phase: 'burst' | 'final', killAfter?: number): Promise<VmResult> {
  let seen = 0;
  let scanned = 0;
  return runInVm({
    command: [process.execPath, GUEST, phase],
    env: { MACNET_POWER_CUT_DURABILITY: DURABILITY },
    disks: [image],
    modules: DISK_MODULES,
    timeoutMs: 3 * 60_000,
    ...(killAfter !== undefined && {
      killWhen: (text: string) => {
        // From where the last call stopped, up to the last complete line.
        const end = text.lastIndexOf('\n') + 1;
        seen += answers(text.slice(scanned, end)).length;
        scanned = Math.max(scanned, end);
        return seen >= killAfter;
      },
    }),
  });
}

const failure = (r: VmResult) => `exit ${r.exitCode}\nstderr:\n${r.stderr}\nconsole tail:\n${r.console.slice(-3000)}`;

test(`no answered allocation is lost or handed out twice across ${ROUNDS} power cuts (durability ${DURABILITY})`, async (t) => {
  const avail = vmAvailable();
  if (!avail.ok) {
    t.skip(avail.reason);
    return;
  }
  const dir = fs.mkdtempSync(path.join(BASE, `macnet-power-cut-${process.pid}-`));
  const cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
  process.once('exit', cleanup); // a failed assertion or a signal must not leave the image behind
  try {
    const image = path.join(dir, 'disk.img');
    fs.writeFileSync(image, '');
    fs.truncateSync(image, IMAGE_MIB * 2 ** 20);
    execFileSync('mkfs.ext4', ['-F', '-q', image], { stdio: ['ignore', 'ignore', 'pipe'] });

    /** Each answered address → the boot that answered it and its place among that boot's answers. */
    const answered = new Map<string, string>();
    let lost: string[] = [];
    let twice: string[] = [];
    for (let round = 1; round <= ROUNDS + 1; round++) {
      const final = round > ROUNDS;
      const killAfter = KILL_AFTER[0] + Math.floor(Math.random() * (KILL_AFTER[1] - KILL_AFTER[0]));
      const r = await boot(image, final ? 'final' : 'burst', final ? undefined : killAfter);
      const found = reports(r).allocated;
      assert.ok(found, `boot ${round} reported no state: ${failure(r)}`);
      const held = new Set(found);
      lost = [...answered.keys()].filter((a) => !held.has(a));
      const now = answers(r.console);
      twice = now.filter((a) => answered.has(a));
      t.diagnostic(
        `boot ${round}: reopened state holds ${held.size} addresses; ${lost.length} of the ${answered.size} answered ` +
          `before are missing` +
          (final ? '' : `; ${now.length} answered in this burst before the cut (target ${killAfter})`) +
          (twice.length ? `, ${twice.length} of them answered before the last cut too` : '') +
          ` (${(r.timing.totalMs / 1000).toFixed(1)} s)`,
      );
      const where = (a: string) => `${a} (${answered.get(a)})`;
      assert.deepEqual(lost.map(where), [], `answered before a power cut, free after it (${lost.length})`);
      assert.deepEqual(twice.map(where), [], `handed out again after a power cut (${twice.length})`);
      assert.equal(new Set(now).size, now.length, 'one burst answered an address twice');
      if (!final) {
        assert.ok(r.killed, `the burst ended before the cut: ${failure(r)}`);
        assert.ok(!r.console.includes(`${MARK} exhausted`), 'the pool ran out before the cut: lower KILL_AFTER');
        now.forEach((a, i) => answered.set(a, `boot ${round}, answer ${i + 1} of ${now.length}`));
        continue;
      }
      assert.equal(r.exitCode, 0, failure(r));
      const fresh = reports(r).fresh ?? [];
      twice = fresh.filter((a) => answered.has(a) || held.has(a));
      assert.deepEqual(twice, [], 'the last burst handed out an address already allocated');
      assert.equal(held.size + fresh.length, USABLE, `${SUBNET}: every usable address allocated exactly once`);
    }
  } catch (e) {
    // For a post-mortem: e2fsck -fy on a copy replays the journal, debugfs -R 'dump /state/state.db-wal f' reads.
    const keep = process.env.MACNET_POWER_CUT_KEEP;
    if (keep) fs.copyFileSync(path.join(dir, 'disk.img'), path.join(keep, `power-cut-${process.pid}.img`));
    throw e;
  } finally {
    cleanup();
    process.off('exit', cleanup);
  }
});
