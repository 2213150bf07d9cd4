// What `macnet doctor` reports: findings, each from one check, and the context every check reads. The checks are
// independent functions (check: DoctorContext -> Finding[]); the CLI runs them, prints the findings and exits
// non-zero when one blocks use. docs/doctor.md documents the --json schema built from these types.

/** ok: nothing to do; warn: works, but something will bite (say what); blocking: macnet cannot work as configured. */
export type Severity = 'ok' | 'warn' | 'blocking';

export interface Finding {
  /** Stable id of the check, dotted: `kernel.macvlan`, `parent.carrier`, `env.hypervisor`, `lan.new-mac`. */
  readonly check: string;
  readonly severity: Severity;
  /** One line: what was found. */
  readonly summary: string;
  /** A concrete fix (a command, a setting); absent when the severity is ok. */
  readonly fix?: string;
  /** The facts behind the summary, for --json (values found, paths read). */
  readonly detail?: Readonly<Record<string, string | number | boolean | null>>;
}

/** The hypervisor or cloud the host runs on, from DMI, and what its virtual switch needs for extra MACs. */
export interface Environment {
  /** 'bare-metal' when DMI names no known hypervisor or cloud; 'unknown' when DMI cannot be read. */
  readonly name: string;
  /** The setting extra MACs need on its virtual switch (the fix of lan.new-mac); absent for bare metal. */
  readonly switchFix?: string;
  /** The environment cannot pass frames from extra MACs at all (Azure): macvlan is blocking, ipvlan is the way. */
  readonly dropsExtraMacs?: boolean;
}

export interface DoctorContext {
  /** The parent interface to check (--parent, or the --network's parent); absent: kernel and environment only. */
  readonly parent?: string;
  /** Roots of the trees read (tests point them at trees made by hand): '/sys', '/proc', '/etc', '/run'. */
  readonly sysRoot: string;
  readonly procRoot: string;
  readonly etcRoot: string;
  readonly runRoot: string;
  /** Detected before the checks that need it (lan.new-mac names its fix). */
  readonly environment: Environment;
  /** The network's subnet gateway to ask (--network gives it; else the parent's default route's gateway). */
  readonly gateway?: string;
  /** Added for the tree checks: the /usr tree (/usr/lib/systemd/network, NetworkManager's conf.d); default '/usr'. */
  readonly usrRoot?: string;
  /** --network's facts the checks weigh (absent with --parent alone: the default kind, macvlan, is assumed). */
  readonly network?: DoctorNetwork;
}

/** What --network tells of the network (src/cli/doctor-network.ts reads it through the Docker Engine API). */
export interface DoctorNetwork {
  readonly name: string;
  readonly id: string;
  /** The link kind (-o kind): for messages, and as data to match configuration against (NetworkManager's
   * driver:, networkd's Kind=); severities weigh ownMacs, never the kind's name. */
  readonly kind: string;
  /** Containers send from MACs of their own (macvlan but passthru), so the LAN sees extra MACs. */
  readonly ownMacs: boolean;
  /** The network has an IPv6 subnet (an MTU under 1280 then blocks). */
  readonly ipv6: boolean;
  /** -o mtu, when given. */
  readonly mtu?: number;
  /**
   * What ties a link to this network, so that its own links do not count against it (parent.passthru): the
   * network namespaces of its containers (inode numbers of their sandboxes, from the Docker Engine API) and the
   * names of its endpoint links in the host's namespace (`mn` + 11 hex, before Docker moves them).
   */
  readonly own?: { readonly netns: readonly number[]; readonly links: readonly string[] };
}

export type Check = (ctx: DoctorContext) => Promise<Finding[]>;

const ORDER: Record<Severity, number> = { ok: 0, warn: 1, blocking: 2 };

/** The worst severity of a list (ok for none): the CLI exits non-zero on blocking. */
export function worst(findings: readonly Finding[]): Severity {
  return findings.reduce<Severity>((w, f) => (ORDER[f.severity] > ORDER[w] ? f.severity : w), 'ok');
}
