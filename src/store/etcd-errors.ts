// What a failed etcd call means for the caller. The decisive question for a write is whether it may have been
// applied: a request that never left this process (no connection to any member, every member's circuit open)
// can be sent again, to another member; one that was sent and timed out, or lost its connection, may have been
// committed (a leader that lost its quorum can still commit the entry once its peers are back), so sending it
// again could report a create that succeeded as "already taken". Reads can always be retried.
import {
  EtcdAuthenticationFailedError,
  EtcdPermissionDeniedError,
  EtcdUserNotFoundError,
  GRPCUnauthenticatedError,
  GRPCUnavailableError,
  isRecoverableError,
} from 'etcd3';
import { isBrokenCircuitError } from 'cockatiel';

export type Failure = 'unsent' | 'ambiguous' | 'auth' | 'other';

/**
 * grpc-js fails a call at once, without sending it, when the channel has no connection ("No connection
 * established", or the connect error itself: refused, unreachable, a TLS handshake the server or we refused).
 */
const NOT_SENT = /No connection established|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|Failed to connect|handshake/i;

export function classify(e: unknown): Failure {
  if (
    e instanceof EtcdAuthenticationFailedError ||
    e instanceof EtcdPermissionDeniedError ||
    e instanceof EtcdUserNotFoundError ||
    e instanceof GRPCUnauthenticatedError
  )
    return 'auth';
  // etcd's answers to a request without a (valid) user, checked before anything is proposed.
  if (e instanceof Error && /etcdserver: (user name is empty|user name not found|permission denied)/.test(e.message))
    return 'auth';
  if (isBrokenCircuitError(e)) return 'unsent';
  if (e instanceof GRPCUnavailableError && NOT_SENT.test(e.message)) return 'unsent';
  if (e instanceof Error && isRecoverableError(e)) return 'ambiguous';
  // etcd's own refusals of a request that never reached a proposal.
  if (e instanceof Error && /etcdserver: (no leader|not capable|too many requests)/.test(e.message)) return 'unsent';
  return 'other';
}

export function describe(e: unknown): string {
  const text = e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e);
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}
