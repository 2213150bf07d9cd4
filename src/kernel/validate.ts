// Checks done before any request reaches the kernel, so a bad value gets a message that names it and what
// would be valid instead of a bare EINVAL.
import { MacnetError } from '../errors';

/** IFNAMSIZ is 16 including the terminating NUL. */
export const IFNAME_MAX = 15;

export function checkIfname(option: string, name: string): void {
  // Bytes, as the kernel counts them (IFNAMSIZ 16 with the NUL).
  if (
    typeof name !== 'string' ||
    name.length === 0 ||
    Buffer.byteLength(name) > IFNAME_MAX ||
    /[\s/:\0]/.test(name) ||
    name === '.' ||
    name === '..'
  ) {
    throw new MacnetError(
      'INVALID_ARGUMENT',
      `${option} ${JSON.stringify(name).slice(0, 100)} is not a valid interface name: ` +
        `use 1 to ${IFNAME_MAX} bytes without spaces, NUL, '/' or ':'`,
      { option, value: name },
    );
  }
}

export function checkVlanId(option: string, id: number): void {
  if (!Number.isInteger(id) || id < 1 || id > 4094) {
    throw new MacnetError('INVALID_ARGUMENT', `${option} ${id} is not a valid vlan id: use 1 to 4094`, {
      option,
      value: id,
    });
  }
}

export function checkMtu(option: string, mtu: number): void {
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) {
    throw new MacnetError(
      'INVALID_ARGUMENT',
      `${option} ${mtu} is not a valid MTU: use an integer from 68 to 65535 (at most the parent's)`,
      { option, value: mtu },
    );
  }
}
