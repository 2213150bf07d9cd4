// The one error catalogue. Codes are stable: users script against them and docs/errors.md lists them
// (test/errors/catalogue.test.ts keeps the two in sync). A message says what was attempted, the value,
// and what would be valid; call sites pass that context, the catalogue only gives the code its meaning.

export interface CatalogueEntry {
  /** What the code means, for docs/errors.md. */
  readonly summary: string;
  /** What the user can do about it. */
  readonly fix: string;
}

export const CATALOGUE = {
  KERNEL_ERROR: {
    summary: 'The kernel refused a netlink request; the message names the operation, the errno and the kernel\'s own text.',
    fix: 'Read the errno and the kernel text; ENODEV means the named link does not exist, EEXIST that the name is taken.',
  },
  KERNEL_FEATURE_MISSING: {
    summary: 'The running kernel has no support for a link kind (for example dummy, vlan or ipvlan).',
    fix: 'Load the module (modprobe 8021q, dummy, ipvlan) or use a kernel built with it.',
  },
  NETNS_NOT_FOUND: {
    summary: 'A network namespace given as a path or a pid cannot be opened.',
    fix: 'Check that the path (/run/netns/NAME, /proc/PID/ns/net, a Docker SandboxKey) or the process exists.',
  },
  INVALID_ARGUMENT: {
    summary: 'A value given to macnet is malformed or out of range; the message names the option and what is valid.',
    fix: 'Correct the named option.',
  },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof CATALOGUE;
