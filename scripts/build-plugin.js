#!/usr/bin/env node
// Builds macnet as a Docker managed plugin from this checkout and installs it: `docker plugin create`, the
// settings, `docker plugin enable` (docs/plugin.md). No image registry is needed: the rootfs is made of this
// machine's own files, namely this Node (process.execPath), the compiled CLI (dist/), the production
// node_modules (better-sqlite3 and what it loads) and the shared libraries these binaries need (from ldd).
//
// All or nothing: a failure after `docker plugin create` removes the plugin again, and the build directory is
// removed unless --dir names one to keep.
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

const HELP = `Usage: node scripts/build-plugin.js [options]

Builds the managed plugin from this checkout (run \`npm ci\` first) and installs it in the dockerd that the
docker CLI talks to (DOCKER_HOST): docker plugin create, docker plugin set, docker plugin enable.
Run it as root on the host whose dockerd gets the plugin.

Options:
  --name NAME        the plugin's name; with its tag (:latest if none is given) it is the driver name
                     networks use (default macnet-plugin: docker network create -d macnet-plugin:latest
                     --ipam-driver macnet-plugin:latest); printed on stdout
  --set KEY=VALUE    a setting, as \`docker plugin set\` takes it, applied before enabling (repeatable):
                       args="--log-level debug --probe-window 500"   options of \`macnet daemon\`
                       exec_root.source=DIR    dockerd's --exec-root (default /var/run/docker)
                       docker_sock.source=PATH Docker's API socket (default /var/run/docker.sock)
  --no-enable        create the plugin (and apply the settings) but do not enable it
  --dir DIR          build in DIR (config.json and rootfs/) and keep it; default: a temporary directory
  -h, --help         this text

Exit status: 0 installed; 1 refused or failed (the reason on stderr); 2 the command line is wrong.
`;

const ROOT = path.join(__dirname, '..');
const APP = '/opt/macnet';
/** Where the plugin keeps its state: the plugin's own mount (propagatedMount), kept across upgrades. */
const STATE = '/var/lib/macnet';
/**
 * Where the plugin sees dockerd's exec-root, and in it the containers' network namespaces (SandboxKey files, found
 * by file name). The exec-root rather than its netns/ directory: that one is made only with the first container,
 * so after a reboot it is missing when dockerd starts its plugins, and a bind mount of a missing path fails.
 */
const EXEC_ROOT = '/run/docker-exec-root';
/** The host's /proc/sys/net, writable: Docker mounts /proc/sys read-only in every plugin (runc's readonlyPaths). */
const PROC_SYS_NET = '/run/proc-sys-net';
const INSTANCE_SOCKET = '\0macnet/daemon'; // src/kernel/instance.ts

class Refusal extends Error {
  constructor(message, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

function parse(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        name: { type: 'string', default: 'macnet-plugin' },
        set: { type: 'string', multiple: true, default: [] },
        'no-enable': { type: 'boolean' },
        dir: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (e) {
    throw new Refusal(`${e.message.split(/\.\s/)[0]} (node scripts/build-plugin.js --help)`, 2);
  }
  // Docker's plugin names are image references: lower case, digits, separators, an optional registry and tag.
  if (!/^[a-z0-9]([a-z0-9._:/-]*[a-z0-9])?$/.test(values.name) || values.name.length > 200) {
    throw new Refusal(
      `--name ${JSON.stringify(values.name)} is not valid: give a plugin name such as macnet-plugin or ` +
        'registry.example:5000/macnet-plugin:0.2 (lower case letters, digits, . _ - / :)',
      2,
    );
  }
  for (const s of values.set) {
    if (!/^[A-Za-z_][\w.]*=/.test(s)) {
      throw new Refusal(
        `--set ${JSON.stringify(s)} is not valid: give KEY=VALUE, e.g. args="--log-level debug" or ` +
          'exec_root.source=/var/run/docker',
        2,
      );
    }
  }
  if (values.dir !== undefined && !path.isAbsolute(values.dir)) {
    throw new Refusal(`--dir ${JSON.stringify(values.dir)} is not valid: give an absolute path`, 2);
  }
  return values;
}

/** The checkout's built files the plugin runs, or a refusal saying what to run first. */
function checkBuilt() {
  const need = [
    'dist/src/cli/main.js',
    'build/Release/macnet_sock.node',
    'node_modules/better-sqlite3/build/Release/better_sqlite3.node',
  ];
  const missing = need.filter((f) => !fs.existsSync(path.join(ROOT, f)));
  if (missing.length) throw new Refusal(`the checkout is not built (${missing.join(', ')} missing): run npm ci`);
}

/** The production dependencies as npm resolved them (npm ls), as directories of node_modules/. */
function productionModules() {
  const out = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, encoding: 'utf8' });
  return out
    .trim()
    .split('\n')
    .filter((p) => p !== ROOT && p.startsWith(path.join(ROOT, 'node_modules')));
}

/** Shared libraries an ELF file loads, with the dynamic loader, as absolute paths (ldd's view). */
function sharedLibraries(file) {
  const out = execFileSync('ldd', [file], { encoding: 'utf8' });
  const libs = [];
  for (const line of out.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]);
  }
  return libs;
}

function copy(from, to) {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.cpSync(from, to, { recursive: true, dereference: true });
}

/**
 * Sources and build outputs better-sqlite3 does not load at run time (the SQLite sources alone are 9 MB). For
 * better-sqlite3 only: other packages load code from directories of these names (@grpc/grpc-js from build/src).
 */
const NOT_AT_RUNTIME = new Set(['deps', 'src', 'docs', 'obj', 'obj.target', '.deps', 'test']);

function buildRootfs(rootfs) {
  const node = fs.realpathSync(process.execPath);
  copy(node, path.join(rootfs, 'usr/bin/node'));
  const app = path.join(rootfs, APP.slice(1));
  for (const f of ['package.json', 'bin/macnet', 'build/Release/macnet_sock.node']) {
    copy(path.join(ROOT, f), path.join(app, f));
  }
  // Only the compiled sources: the tests and benchmarks in dist/ are not part of the program.
  copy(path.join(ROOT, 'dist/src'), path.join(app, 'dist/src'));
  for (const dir of productionModules()) {
    const rel = path.relative(ROOT, dir);
    fs.cpSync(dir, path.join(app, rel), {
      recursive: true,
      dereference: true,
      // The package's own node_modules are listed by npm ls separately.
      filter: (src) =>
        path.relative(dir, src) !== 'node_modules' &&
        !(path.basename(dir) === 'better-sqlite3' && NOT_AT_RUNTIME.has(path.basename(src))),
    });
  }
  const elves = [
    node,
    path.join(ROOT, 'build/Release/macnet_sock.node'),
    path.join(ROOT, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'),
  ];
  const libs = new Set(elves.flatMap(sharedLibraries));
  // At the path the binaries ask for (DT_NEEDED through the loader's default directories, PT_INTERP for the
  // loader itself); the file itself, not the symlink chain behind it.
  for (const lib of libs) copy(fs.realpathSync(lib), path.join(rootfs, lib.slice(1)));
  // Mount points Docker and runc fill in, and the state mount; /var/run as on a Debian host (a link to /run).
  const dirs = ['proc', 'sys', 'dev', 'etc', 'tmp', 'run/docker/plugins', EXEC_ROOT, PROC_SYS_NET, STATE];
  for (const d of dirs.map((x) => x.replace(/^\//, ''))) {
    fs.mkdirSync(path.join(rootfs, d), { recursive: true });
  }
  fs.chmodSync(path.join(rootfs, 'tmp'), 0o1777);
  fs.symlinkSync('../run', path.join(rootfs, 'var/run'));
  for (const f of ['etc/hosts', 'etc/resolv.conf']) fs.writeFileSync(path.join(rootfs, f), '');
  return [...libs];
}

function pluginConfig() {
  const version = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
  return {
    description: `macnet ${version}: containers on the LAN with their own MAC and IP (macvlan, ipvlan, 802.1q)`,
    documentation: 'docs/plugin.md in the macnet repository',
    entrypoint: [
      '/usr/bin/node',
      `${APP}/bin/macnet`,
      'daemon',
      '--state-dir',
      STATE,
      '--netns-dir',
      `${EXEC_ROOT}/netns`,
      '--proc-sys-net',
      PROC_SYS_NET,
    ],
    workdir: '/',
    // The links are made in the host's namespace, as the service daemon makes them.
    network: { type: 'host' },
    // The pids in the one-daemon refusals (src/kernel/instance.ts) are then the host's.
    pidhost: true,
    interface: { types: ['docker.networkdriver/1.0', 'docker.ipamdriver/1.0'], socket: 'macnet.sock' },
    linux: { capabilities: ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN', 'CAP_NET_RAW'] },
    // The plugin's own directory (<data-root>/plugins/<id>/propagated-mount): it survives disable, enable,
    // dockerd restarts and `docker plugin upgrade`, and goes with `docker plugin rm`.
    propagatedmount: STATE,
    mounts: [
      {
        name: 'exec_root',
        description: "dockerd's --exec-root, whose netns/ holds the containers' network namespaces (SandboxKey)",
        source: '/var/run/docker',
        destination: EXEC_ROOT,
        type: 'bind',
        // rslave: namespaces dockerd mounts after the plugin started appear here, and go when dockerd unmounts
        // them (the plugin must not keep a container's namespace alive).
        options: ['rbind', 'rslave'],
        settable: ['source'],
      },
      {
        // Host access sets sysctls of the link it makes (arp_filter, accept_ra, autoconf). The files show the
        // namespace of the task that opens them: with host networking, the host's.
        name: 'proc_sys_net',
        description: "the host's /proc/sys/net, writable",
        source: '/proc/sys/net',
        destination: PROC_SYS_NET,
        type: 'bind',
        options: ['rbind'],
      },
      {
        name: 'docker_sock',
        description: "Docker's API socket",
        source: '/var/run/docker.sock',
        destination: '/run/docker.sock',
        type: 'bind',
        options: ['bind'],
        settable: ['source'],
      },
    ],
    env: [
      // Names this form in the one-daemon refusals (src/kernel/instance.ts).
      { name: 'MACNET_FORM', description: 'how this daemon runs', value: 'managed-plugin' },
    ],
    args: {
      name: 'args',
      description: 'options of macnet daemon (macnet daemon --help), e.g. --log-level debug --no-probe',
      settable: ['value'],
      value: [],
    },
  };
}

/** Who holds this network namespace's macnet instance socket (src/kernel/instance.ts), or undefined. */
function runningDaemon() {
  return new Promise((resolve) => {
    const s = net.connect({ path: INSTANCE_SOCKET });
    let text = '';
    const done = (v) => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(1000, () => done({}));
    s.on('data', (b) => (text += b.toString()));
    s.on('end', () => {
      try {
        done(JSON.parse(text.split('\n')[0]));
      } catch {
        done({});
      }
    });
    s.on('error', () => done(undefined));
  });
}

function docker(args) {
  const r = spawnSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 });
  if (r.error) throw new Refusal(`cannot run docker ${args[0]} ${args[1] ?? ''}: ${r.error.message}`);
  if (r.status !== 0) throw new Refusal(`docker ${args.join(' ')}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout.trim();
}

async function main(argv) {
  const o = parse(argv);
  if (o.help) {
    process.stdout.write(HELP);
    return 0;
  }
  checkBuilt();
  // One daemon per network namespace: refuse here, before anything is made, rather than let `docker plugin
  // enable` fail after ten seconds with a socket error (the plugin's own refusal goes to dockerd's log). A plugin
  // that is only created (--no-enable: to be pushed, or enabled later) runs nothing.
  const other = o['no-enable'] ? undefined : await runningDaemon();
  if (other) {
    const who =
      other.form === 'managed-plugin'
        ? `a macnet managed plugin (pid ${other.pid ?? 'unknown'}; docker plugin ls shows it)`
        : `a macnet service daemon (pid ${other.pid ?? 'unknown'}, state dir ${other.stateDir ?? 'unknown'})`;
    throw new Refusal(
      `DAEMON_ALREADY_RUNNING: ${who} runs in this network namespace: one macnet daemon per host, whatever ` +
        'its form; stop it first (a service: systemctl disable --now macnet.socket macnet.service; a plugin: ' +
        'docker plugin disable NAME), nothing was created',
    );
  }
  const dir = o.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'macnet-plugin-'));
  let created = false;
  try {
    fs.rmSync(path.join(dir, 'rootfs'), { recursive: true, force: true });
    const libs = buildRootfs(path.join(dir, 'rootfs'));
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(pluginConfig(), null, 2) + '\n');
    process.stderr.write(`built ${dir} (node ${process.version}, ${libs.length} shared libraries)\n`);
    docker(['plugin', 'create', o.name, dir]);
    created = true;
    if (o.set.length) docker(['plugin', 'set', o.name, ...o.set]);
    if (!o['no-enable']) docker(['plugin', 'enable', o.name]);
    // Docker 20.10 finds a managed plugin's driver only by its full name, tag included (Docker's plugin store
    // adds :latest to a name without one when it installs the plugin, and the network lookup does not).
    const driver = /:[\w.-]+$/.test(o.name.split('/').pop()) ? o.name : `${o.name}:latest`;
    process.stdout.write(`${driver}\n`);
    process.stderr.write(
      `${o['no-enable'] ? 'created' : 'enabled'}: docker network create -d ${driver} --ipam-driver ${driver} ...\n`,
    );
    return 0;
  } catch (e) {
    if (created) {
      spawnSync('docker', ['plugin', 'rm', '-f', o.name], { stdio: 'ignore' });
      if (e instanceof Refusal) {
        e.message += `; the plugin was removed again (its own log, if it started, is in dockerd's log)`;
      }
    }
    throw e;
  } finally {
    if (!o.dir) fs.rmSync(dir, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (e) => {
    process.stderr.write(`build-plugin: ${e instanceof Refusal ? e.message : (e.stack ?? e)}\n`);
    process.exitCode = e instanceof Refusal ? e.exitCode : 1;
  },
);
