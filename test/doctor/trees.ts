// Trees made by hand for the doctor's unit tests: a temporary root with sys, proc, etc, run and usr below it,
// files written from a path-to-text map, and the DoctorContext that points at them.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DoctorContext, DoctorNetwork } from '../../src/doctor';
import { environmentOf } from '../../src/doctor/environment';

export class Tree {
  private constructor(readonly root: string) {}

  static make(files: Record<string, string> = {}): Tree {
    const t = new Tree(fs.mkdtempSync(path.join(os.tmpdir(), 'macnet-doctor-')));
    t.write(files);
    return t;
  }

  /** Writes each file (a trailing '/' makes a directory; a value starting with '->' makes a symlink). */
  write(files: Record<string, string>): this {
    for (const [rel, text] of Object.entries(files)) {
      const p = path.join(this.root, rel);
      if (rel.endsWith('/')) {
        fs.mkdirSync(p, { recursive: true });
        continue;
      }
      fs.mkdirSync(path.dirname(p), { recursive: true });
      if (text.startsWith('->')) fs.symlinkSync(text.slice(2), p);
      else fs.writeFileSync(p, text);
    }
    return this;
  }

  ctx(o: { parent?: string; network?: Partial<DoctorNetwork>; environment?: string } = {}): DoctorContext {
    const at = (d: string) => path.join(this.root, d);
    return {
      sysRoot: at('sys'),
      procRoot: at('proc'),
      etcRoot: at('etc'),
      runRoot: at('run'),
      usrRoot: at('usr'),
      environment: environmentOf(o.environment ?? 'bare-metal'),
      ...(o.parent !== undefined ? { parent: o.parent } : {}),
      ...(o.network
        ? { network: { name: 'lan', id: 'a'.repeat(64), kind: 'macvlan', ownMacs: true, ipv6: false, ...o.network } }
        : {}),
    };
  }

  remove(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/** A sysfs link directory as the kernel lays it out: the files doctor reads, and the extras given. */
export function netDevice(
  name: string,
  o: {
    type?: number;
    mtu?: number;
    ifindex?: number;
    iflink?: number;
    uevent?: string;
    extra?: Record<string, string>;
  },
): Record<string, string> {
  const dir = `sys/class/net/${name}`;
  const ifindex = o.ifindex ?? 2;
  const files: Record<string, string> = {
    [`${dir}/type`]: `${o.type ?? 1}\n`,
    [`${dir}/mtu`]: `${o.mtu ?? 1500}\n`,
    [`${dir}/ifindex`]: `${ifindex}\n`,
    [`${dir}/iflink`]: `${o.iflink ?? ifindex}\n`,
    [`${dir}/uevent`]: `${o.uevent ?? ''}INTERFACE=${name}\nIFINDEX=${ifindex}\n`,
  };
  for (const [k, v] of Object.entries(o.extra ?? {})) files[`${dir}/${k}`] = v;
  return files;
}
