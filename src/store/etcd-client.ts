// The etcd3 client as EtcdStore uses it (etcd.ts): its TLS files and credentials, no retries of the library's own
// (EtcdStore's run() decides what may be sent twice), a breaker per member, and gRPC's reconnect and keepalive
// tuned for members that die or are cut off. One for all the endpoints; one more for the leader alone
// (etcd-leader.ts), with the same options.
import * as fs from 'node:fs';
import { Etcd3, GRPCCancelledError, isRecoverableError, type IOptions } from 'etcd3';
import { ConsecutiveBreaker, circuitBreaker, handleWhen, noop } from 'cockatiel';
import { MacnetError } from '../errors';
import { describe } from './etcd-errors';
import type { EtcdOptions } from './etcd-options';

/** How long a member that failed is skipped before one call may try it again. */
export const MEMBER_BACKOFF_MS = 1000;

const memberFailed = (e: Error) => isRecoverableError(e) && !(e instanceof GRPCCancelledError);

/** A client of `hosts` (some or all of opts.endpoints) with opts' TLS and credentials. */
export function connect(opts: EtcdOptions, hosts: readonly string[]): Etcd3 {
  let credentials: IOptions['credentials'];
  if (opts.tls) {
    try {
      credentials = {
        rootCertificate: fs.readFileSync(opts.tls.ca),
        ...(opts.tls.cert ? { certChain: fs.readFileSync(opts.tls.cert) } : {}),
        ...(opts.tls.key ? { privateKey: fs.readFileSync(opts.tls.key) } : {}),
      };
    } catch (e) {
      throw new MacnetError('INVALID_ARGUMENT', `etcd store: cannot read a TLS file: ${describe(e)}`, {}, e);
    }
  }
  return new Etcd3({
    hosts: [...hosts],
    ...(credentials ? { credentials } : {}),
    ...(opts.auth ? { auth: { username: opts.auth.user, password: opts.auth.password } } : {}),
    faultHandling: {
      // Retries are ours (run()), because only we know whether an operation may be sent twice.
      global: noop,
      host: () =>
        // A stream we cancel ourselves (a watch closed) ends with CANCELLED, which etcd3 counts as recoverable:
        // it is no sign of a failing member, and would block every call to the only member for a second.
        circuitBreaker(handleWhen(memberFailed), {
          halfOpenAfter: MEMBER_BACKOFF_MS,
          breaker: new ConsecutiveBreaker(1),
        }),
    },
    grpcOptions: {
      // A member that comes back is dialled again within a second, not after gRPC's default of up to 2 min.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': MEMBER_BACKOFF_MS,
      // A member cut off from the network drops packets rather than closing the connection: without pings, a
      // stream on it (the lease's keepalives) would wait for TCP to give up, and the lease would expire meanwhile
      // (seen in the cluster test: a host that was not cut lost its presence). A ping every 5 s (etcd's minimum,
      // --grpc-keepalive-min-time) unanswered for 2 s ends the connection; the keepalives go to another member.
      'grpc.keepalive_time_ms': 5000,
      'grpc.keepalive_timeout_ms': 2000,
      'grpc.keepalive_permit_without_calls': 1,
    },
  });
}
