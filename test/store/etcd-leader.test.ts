// EtcdStore's route to the leader (src/store/etcd-leader.ts) against three real etcd members: key-value calls go to
// the leader, as each member's own counters of the calls it handled show; a leader cut off from this host is left
// at once and not taken back while cut (no call fails); a new leader is followed after it moves. Runs in a network
// namespace of its own, as test/store/etcd.test.ts (see there).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { EtcdStore } from '../../src/store/etcd';
import { LEADER_RECHECK_MS } from '../../src/store/etcd-leader';
import { EtcdCluster, MACNET_USER } from '../lab/etcd';
import { inOwnNetns } from '../lab/etcd-netns';
import { which } from '../lab/lab';
import { run } from '../lab/sh';

const ADDRS = ['198.18.19.31', '198.18.19.32', '198.18.19.33'];
const TIMEOUT_MS = 1000;

if (inOwnNetns('EtcdStore leader route tests', __filename, ADDRS)) inner();

/** The key-value calls (Txn and Range) each member has answered so far, from its own /metrics. */
async function handled(cluster: EtcdCluster): Promise<number[]> {
  return Promise.all(
    cluster.endpoints.map(async (e) => {
      const text = await (await fetch(`${e}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
      let n = 0;
      const re = /^grpc_server_handled_total\{([^}]*)\} (\S+)$/gm;
      for (let m = re.exec(text); m; m = re.exec(text))
        if (/grpc_method="(Txn|Range)"/.test(m[1]!) && /grpc_service="etcdserverpb.KV"/.test(m[1]!)) n += Number(m[2]);
      return n;
    }),
  );
}

/** The change of each member's count while `fn` runs. */
async function callsDuring(cluster: EtcdCluster, fn: () => Promise<void>): Promise<number[]> {
  const before = await handled(cluster);
  await fn();
  const after = await handled(cluster);
  return after.map((a, i) => a - before[i]!);
}

function inner(): void {
  describe('EtcdStore on three members: key-value calls to the leader', () => {
    let cluster: EtcdCluster;
    let s: EtcdStore;
    const work = async (n: number, tag: string) => {
      for (let i = 0; i < n; i++) {
        assert.equal(await s.create(`${tag}/${i}`, 'x'), true);
        assert.equal((await s.get(`${tag}/${i}`))?.value, 'x');
      }
    };
    before(async () => {
      cluster = await EtcdCluster.start({ members: 3 });
      s = await EtcdStore.open({ endpoints: cluster.endpoints, prefix: 'leader/', requestTimeoutMs: TIMEOUT_MS });
    });
    after(async () => {
      await s?.close();
      await cluster?.close();
    });

    test('creates and reads go to the leader alone; the followers answer none of them', async (t) => {
      const leader = await cluster.leader();
      const calls = await callsDuring(cluster, () => work(50, 'a'));
      t.diagnostic(`calls answered per member (leader m${leader + 1}): ${calls.join(', ')}`);
      assert.ok(calls[leader]! >= 100, `the leader answered ${calls[leader]} of 100 calls`);
      calls.forEach((c, i) => i !== leader && assert.equal(c, 0, `follower m${i + 1} answered ${c} calls`));
    });

    test('a leader cut off from this host: no call fails, the followers answer meanwhile; back: the leader again', async (t) => {
      assert.ok(which('nft'), 'nft is not installed (apt-get install nftables; .ci/run installs it)');
      const leader = await cluster.leader();
      const [host, port] = cluster.endpoints[leader]!.replace(/^https?:\/\//, '').split(':') as [string, string];
      const rules = `table ip macnet_cut_leader {
  chain out { type filter hook output priority 0; policy accept; ip daddr ${host} tcp dport ${port} drop; }
}
`;
      let failed = 0;
      let calls = 0;
      // Counted before the cut and after it (the leader's /metrics cannot be read while it is cut).
      const before = await handled(cluster);
      try {
        const r = await run('nft', ['-f', '-'], { input: rules });
        assert.equal(r.code, 0, `nft: ${r.stderr}`);
        // Longer than two rechecks: the cut leader is asked for again, and must not be taken back.
        const t0 = Date.now();
        for (let i = 0; Date.now() - t0 < 2 * LEADER_RECHECK_MS + 2000; i++) {
          calls += 2;
          await Promise.all([s.create(`cut/${i}`, 'x'), s.get('a/0')]).catch((e: unknown) => {
            failed++;
            t.diagnostic(`call failed: ${String(e).slice(0, 200)}`);
          });
        }
      } finally {
        await run('nft', ['delete', 'table', 'ip', 'macnet_cut_leader']);
      }
      const during = (await handled(cluster)).map((a, i) => a - before[i]!);
      t.diagnostic(
        `cut: ${calls} calls, answered per member (leader m${leader + 1}): ${during.join(', ')}; ${failed} failed`,
      );
      assert.equal(failed, 0);
      const followers = during.filter((_, i) => i !== leader).reduce((a, b) => a + b, 0);
      assert.ok(followers >= calls, `the followers answered ${followers} of ${calls} calls`);
      // Taken back at the next recheck once it answers again.
      await sleep(LEADER_RECHECK_MS + 1500);
      const back = await callsDuring(cluster, () => work(20, 'back'));
      t.diagnostic(`back: calls answered per member: ${back.join(', ')}`);
      assert.ok(back[leader]! >= 40, `the leader answered ${back[leader]} of 40 calls`);
    });

    test('the leader moves (etcdctl move-leader): calls follow the new one within a recheck', async (t) => {
      const old = await cluster.leader();
      const next = (old + 1) % 3;
      const status = await cluster.etcdctl(['endpoint', 'status', '-w', 'json'], {
        endpoints: [cluster.endpoints[next]!],
      });
      // A 64-bit ID: read as text (JSON.parse would round it to a double).
      const id = /"member_id":(\d+)/.exec(status.stdout)?.[1];
      assert.ok(id, `no member_id in ${status.stdout}`);
      const hex = BigInt(id).toString(16);
      const moved = await cluster.etcdctl(['move-leader', hex], { endpoints: [cluster.endpoints[old]!] });
      assert.equal(moved.code, 0, `move-leader: ${moved.stderr}`);
      assert.equal(await cluster.leader(), next);
      await sleep(LEADER_RECHECK_MS + 1500);
      const calls = await callsDuring(cluster, () => work(20, 'moved'));
      t.diagnostic(`after the move (m${old + 1} to m${next + 1}): calls answered per member: ${calls.join(', ')}`);
      assert.ok(calls[next]! >= 40, `the new leader answered ${calls[next]} of 40 calls`);
      assert.equal(calls[old], 0, 'the old leader answered calls after the recheck');
    });
  });

  // With auth, the route asks Maintenance.Status and Cluster.MemberList as the macnet user (a role on its prefix
  // alone, no root): etcd must answer those to it, or every call would go on through the pool.
  describe('with auth, as a user with a role on its prefix alone: still the leader', () => {
    let cluster: EtcdCluster;
    let s: EtcdStore;
    before(async () => {
      cluster = await EtcdCluster.start({ members: 3, auth: true });
      s = await EtcdStore.open({
        endpoints: cluster.endpoints,
        prefix: 'macnet/leader/',
        auth: MACNET_USER,
        requestTimeoutMs: TIMEOUT_MS,
      });
    });
    after(async () => {
      await s?.close();
      await cluster?.close();
    });

    test('creates and reads go to the leader alone', async (t) => {
      const leader = await cluster.leader();
      // The route is looked for in the background when the store opens: a recheck's time at most.
      const deadline = Date.now() + LEADER_RECHECK_MS + 2000;
      let calls: number[] = [];
      for (let round = 0; Date.now() < deadline; round++) {
        calls = await callsDuring(cluster, async () => {
          for (let i = 0; i < 20; i++) {
            assert.equal(await s.create(`auth/${round}/${i}`, 'x'), true);
            assert.equal((await s.get(`auth/${round}/${i}`))?.value, 'x');
          }
        });
        if (calls.every((c, i) => i === leader || c === 0)) break;
        await sleep(500);
      }
      t.diagnostic(`calls answered per member (leader m${leader + 1}): ${calls.join(', ')}`);
      assert.ok(calls[leader]! >= 40, `the leader answered ${calls[leader]} of 40 calls`);
      calls.forEach((c, i) => i !== leader && assert.equal(c, 0, `follower m${i + 1} answered ${c} calls`));
    });
  });
}
