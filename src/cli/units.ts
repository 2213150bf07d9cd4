// `macnet install-units`: writes the package's systemd units (systemd/macnet.socket, systemd/macnet.service) into
// a unit directory, with ExecStart naming this Node and this package's bin/macnet by absolute path: systemd's
// PATH may not reach a Node installed elsewhere (nvm, /opt), and `#!/usr/bin/env node` would then fail at boot.
// It enables nothing by itself: the operator runs systemctl (printed), so that nothing starts unasked.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MacnetError } from '../errors';
import { directoryOption, parseCommandArgs } from './args';

export const UNITS = ['macnet.socket', 'macnet.service'] as const;
const PACKAGE_ROOT = path.join(__dirname, '..', '..', '..');

export const INSTALL_UNITS_HELP = `Usage: macnet install-units [--prefix DIR] [--force]

Writes macnet.socket and macnet.service into DIR (default /etc/systemd/system), with ExecStart naming this
Node (${process.execPath}) and this package's bin/macnet. Then, as root:
  systemctl daemon-reload && systemctl enable --now macnet.socket macnet.service

Options:
  --prefix DIR   the unit directory (default /etc/systemd/system)
  --force        replace units that differ from these (an older package's, or edited by hand)
`;

/** The service unit as shipped, with ExecStart naming `node` and `bin` (absolute paths). */
export function serviceUnit(node = process.execPath, bin = path.join(PACKAGE_ROOT, 'bin', 'macnet')): string {
  const text = fs.readFileSync(path.join(PACKAGE_ROOT, 'systemd', 'macnet.service'), 'utf8');
  const quote = (p: string) => (/[\s"\\]/.test(p) ? JSON.stringify(p) : p);
  return text.replace(/^ExecStart=.*$/m, `ExecStart=${quote(node)} ${quote(fs.realpathSync(bin))} daemon`);
}

export function parseInstallUnitsArgs(argv: string[]): { dir: string; force: boolean } {
  const { values } = parseCommandArgs('install-units', argv, {
    prefix: { type: 'string' },
    force: { type: 'boolean' },
  });
  return { dir: directoryOption('prefix', values.prefix ?? '/etc/systemd/system'), force: values.force ?? false };
}

export function installUnits(o: { dir: string; force: boolean }): number {
  const dir = o.dir;
  const texts: Record<(typeof UNITS)[number], string> = {
    'macnet.socket': fs.readFileSync(path.join(PACKAGE_ROOT, 'systemd', 'macnet.socket'), 'utf8'),
    'macnet.service': serviceUnit(),
  };
  const changed = UNITS.filter((u) => {
    try {
      return fs.readFileSync(path.join(dir, u), 'utf8') !== texts[u];
    } catch {
      return false;
    }
  });
  if (changed.length && !o.force) {
    throw new MacnetError(
      'OPTION_INVALID',
      `${changed.map((u) => path.join(dir, u)).join(' and ')} ` +
        `exist${changed.length === 1 ? 's' : ''} with other content: give --force to replace (for local changes use ` +
        'a drop-in, systemctl edit macnet.service)',
      { option: 'force', value: changed.join(',') },
    );
  }
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    for (const u of UNITS) fs.writeFileSync(path.join(dir, u), texts[u], { mode: 0o644 });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new MacnetError(
      'OPTION_INVALID',
      `--prefix ${JSON.stringify(dir)}: cannot write the units there ` +
        `(${err.code ?? err.message}): run as root, or give a writable unit directory`,
      { option: 'prefix', value: dir },
    );
  }
  for (const u of UNITS) process.stdout.write(`wrote ${path.join(dir, u)}\n`);
  process.stdout.write(
    'next, as root: systemctl daemon-reload && systemctl enable --now macnet.socket macnet.service\n',
  );
  return 0;
}
