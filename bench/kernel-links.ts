// Figure "kernel-links": what creating and deleting a macvlan link costs through the kernel layer (one
// in-process netlink socket) versus spawning `ip` per operation, the way a shell-out implementation would.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Kernel } from '../src/kernel';
import { TestNetns } from '../test/lab/netns';
import type { Figure, FigureResult, Series } from './stats';

const execFileP = promisify(execFile);

/** Operations per method before switching: small enough that drift (other load, thermal) hits both alike. */
const BLOCK = 50;
/** Untimed create/delete pairs per method first: JIT, the addon's thread pool and the page cache for `ip`. */
const WARMUP = 10;
const PARENT = 'p0';

type Method = 'kernel' | 'ip';
type Op = 'create' | 'delete';

interface LinkOps {
  create(name: string): Promise<unknown>;
  delete(name: string): Promise<unknown>;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function countMacvlans(k: Kernel): Promise<number> {
  return (await k.links.list()).filter((l) => l.kind === 'macvlan').length;
}

async function measure(rounds: number, log: (msg: string) => void): Promise<Series[]> {
  const ns = await TestNetns.create('bench');
  try {
    const k = Kernel.open(ns.path);
    try {
      await k.links.create({ kind: 'veth', name: PARENT, peer: { name: 'p1' } });
      await k.links.setUp(PARENT);

      const ops: Record<Method, LinkOps> = {
        // As callers get it: create resolves the parent by name and reads the new link back, so one create
        // is three netlink round trips (GETLINK parent, NEWLINK, GETLINK); delete is one (DELLINK by name).
        kernel: {
          create: (name) => k.links.create({ kind: 'macvlan', name, parent: PARENT, mode: 'bridge' }),
          delete: (name) => k.links.delete(name),
        },
        ip: {
          create: (name) =>
            execFileP('ip', ['-n', ns.name, 'link', 'add', name, 'link', PARENT, 'type', 'macvlan', 'mode', 'bridge']),
          delete: (name) => execFileP('ip', ['-n', ns.name, 'link', 'del', name]),
        },
      };

      // Unique names across the whole run, so a link left by a failed step can never be mistaken for a new one.
      let seq = 0;
      const nextNames = (n: number) => Array.from({ length: n }, () => `mv${seq++}`);

      for (const m of ['kernel', 'ip'] as const) {
        for (const name of nextNames(WARMUP)) {
          await ops[m].create(name);
          await ops[m].delete(name);
        }
      }

      const samples: Record<Method, Record<Op, number[]>> = {
        kernel: { create: [], delete: [] },
        ip: { create: [], delete: [] },
      };
      const started = Date.now();
      let done = 0;
      for (let block = 0; done < rounds; block++) {
        const n = Math.min(BLOCK, rounds - done);
        // ABBA order: neither method always runs right after the other's deletes (which leave RCU work behind).
        const order: Method[] = block % 2 ? ['ip', 'kernel'] : ['kernel', 'ip'];
        for (const m of order) {
          // Create the block's links, then delete them: the namespace holds 0 to BLOCK macvlans for both methods.
          const names = nextNames(n);
          for (const name of names) samples[m].create.push(await timed(() => ops[m].create(name)));
          for (const name of names) samples[m].delete.push(await timed(() => ops[m].delete(name)));
        }
        done += n;
        if (block % 4 === 3 || done === rounds)
          log(`kernel-links: ${done}/${rounds} rounds, ${((Date.now() - started) / 1000).toFixed(1)} s`);
      }

      // Every delete above succeeded, but check the kernel's own view: a figure for deletes that did not
      // delete would be worthless.
      const left = await countMacvlans(k);
      if (left !== 0) throw new Error(`kernel-links: ${left} macvlan link(s) left in ${ns.name} after the run`);

      return (['create', 'delete'] as const).flatMap((op) =>
        (['kernel', 'ip'] as const).map((method) => ({ op, method, samplesMs: samples[method][op] })),
      );
    } finally {
      await k.close();
    }
  } finally {
    // Links inside go with the namespace; netns.ts also deletes it at exit (SIGINT, SIGTERM, crash).
    await ns.delete();
  }
}

export const kernelLinks: Figure = {
  id: 'kernel-links',
  title: 'Create and delete a macvlan link: src/kernel vs. a spawned `ip` per operation',
  defaultRounds: 1000,
  quickRounds: 100,
  async run({ rounds, log }): Promise<FigureResult> {
    const series = await measure(rounds, log);
    return {
      what:
        `In a throwaway network namespace, a veth pair (${PARENT}, p1) is the parent. Each method creates macvlan links ` +
        `(mode bridge) on ${PARENT} and deletes them again, ${rounds} of each per method, in blocks of ${BLOCK}: ` +
        `${BLOCK} creates then ${BLOCK} deletes by one method, then the same by the other, the order alternating ` +
        `between blocks (ABBA) so that machine drift falls on both alike. Each create and each delete is timed on ` +
        `its own (process.hrtime.bigint around the awaited call). ${WARMUP} untimed create/delete pairs per method ` +
        `come first. Afterwards the namespace is checked to hold no macvlan and is deleted.`,
      methods: {
        kernel: `src/kernel, one Kernel handle for the whole run: \`k.links.create({kind:'macvlan', name, parent:'${PARENT}', mode:'bridge'})\`, \`k.links.delete(name)\``,
        ip: `child_process.execFile per operation, awaited: \`ip -n <ns> link add NAME link ${PARENT} type macvlan mode bridge\`, \`ip -n <ns> link del NAME\``,
      },
      baseline: 'kernel',
      roundUnit: 'create + delete of one macvlan link, per method',
      rounds,
      series,
      notes: [
        '`k.links.create` is measured as callers get it: it resolves the parent by name (one RTM_GETLINK) and reads ' +
          'the new link back (another RTM_GETLINK), so one create is three netlink round trips; `ip link add` sends ' +
          'one RTM_NEWLINK after its own name lookup and prints nothing back.',
        "Delete time is mostly the kernel's own: the kernel-layer delete is a single netlink request and still " +
          'takes about as long as a dozen creates. So the spawn is a much smaller share of a delete than of a create.',
        'The `ip` delete costs more than kernel delete + one spawn. In a one-off side experiment (not part of this ' +
          'suite, 120 samples each) a kernel-layer delete issued right after spawning `true` took about 3 ms longer ' +
          "than one without (median 18.4 vs 15.2 ms): a process exiting just before seems to slow the kernel's own " +
          'delete. The cause was not investigated further.',
        "The spawned `ip` includes fork/exec of `ip`, its own setns into the namespace (`-n`) and Node's child " +
          'process bookkeeping: what a Node program that shells out pays per call.',
      ],
    };
  },
};
