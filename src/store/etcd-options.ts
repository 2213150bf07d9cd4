// What the cluster store (etcd.ts) is opened with, apart from the client library, so that the command line can
// check and describe its options without loading etcd3 and gRPC (a fifth of a second at every command's start).

export interface EtcdOptions {
  /** Client URLs of the members: http://198.18.0.1:2379, or https:// with `tls`. */
  readonly endpoints: readonly string[];
  /** PEM files: the CA that signed the members' certificates, and this client's certificate and key. */
  readonly tls?: { readonly ca: string; readonly cert?: string; readonly key?: string };
  readonly auth?: { readonly user: string; readonly password: string };
  /** Every key is stored under this prefix. Default "macnet/". */
  readonly prefix?: string;
  /** The most one operation may take before it fails with STORE_UNAVAILABLE. Default 2000 ms. */
  readonly requestTimeoutMs?: number;
}

export const DEFAULT_PREFIX = 'macnet/';
export const DEFAULT_REQUEST_TIMEOUT_MS = 2000;

/**
 * An attempt of an operation that may be sent again (a read, or a write whose creates can be verified,
 * etcd-verify.ts) gets this part of the deadline. A member cut off from the
 * network drops packets rather than refusing them: a call sent there (its connection still dialling, or a stream
 * not yet found dead by the keepalive) waits until its deadline. With the whole deadline for one attempt, every call
 * the member's breaker let through failed (seen in CI after a host with a member was cut off); with a third, it
 * costs a third, the breaker opens, and the next attempt goes to another member.
 */
export const ATTEMPT_PARTS = 3;
