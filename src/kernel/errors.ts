// Turns the kernel's answers into MacnetErrors that say what was attempted.
import { MacnetError } from '../errors';
import { addon } from './addon';

/** A netlink request the kernel refused. `errno` is the name (ENODEV), `extack` the kernel's own text. */
export class KernelError extends MacnetError {
  readonly errno: string;
  readonly extack: string | undefined;
  constructor(
    code: 'KERNEL_ERROR' | 'KERNEL_FEATURE_MISSING' | 'NETNS_NOT_FOUND',
    message: string,
    errno: string,
    extack?: string,
    cause?: unknown,
  ) {
    super(code, message, { errno, ...(extack && { extack }) }, cause);
    this.name = 'KernelError';
    this.errno = errno;
    this.extack = extack;
  }
}

/** "ENODEV: no such device" or, with extended ack, "EINVAL: Invalid MTU" (the kernel's words). */
export function describeErrno(errno: number, extack?: string): { name: string; text: string } {
  const [name, message] = addon.errnoName(errno);
  return { name, text: `${name}: ${extack ?? message.charAt(0).toLowerCase() + message.slice(1)}` };
}

export function kernelError(operation: string, errno: number, extack?: string): KernelError {
  const { name, text } = describeErrno(errno, extack);
  return new KernelError('KERNEL_ERROR', `${operation}: ${text}`, name, extack);
}

/**
 * Creating a link of a kind the kernel does not know gives EOPNOTSUPP ("Unknown device type"); callers need to
 * tell that apart from every other refusal to explain it (load 8021q, use ipvlan on another host...).
 */
export function featureMissing(operation: string, kind: string, errno: number, extack?: string): KernelError {
  const { name, text } = describeErrno(errno, extack);
  return new KernelError(
    'KERNEL_FEATURE_MISSING',
    `${operation}: KERNEL_FEATURE_MISSING: ${kind} (this kernel has no "${kind}" link type; ${text})`,
    name,
    extack,
  );
}

/** Wraps an error thrown by the addon itself (socket, setns, timeout). */
export function fromAddon(operation: string, e: unknown): KernelError {
  const err = e as { code?: string; errno?: number; message?: string };
  if (typeof err.errno === 'number') {
    const k = kernelError(operation, err.errno);
    return new KernelError('KERNEL_ERROR', k.message, k.errno, undefined, e);
  }
  return new KernelError(
    'KERNEL_ERROR',
    `${operation}: ${err.message ?? String(e)}`,
    err.code ?? 'EUNKNOWN',
    undefined,
    e,
  );
}
