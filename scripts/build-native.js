#!/usr/bin/env node
// The package's install step: builds the native addon (native/macnet_sock.c) with node-gyp against the headers of
// the Node that runs the install, never headers downloaded from elsewhere. node-gyp fetches headers from the
// internet unless it is given a --nodedir; npm passes its `nodedir` setting as npm_config_nodedir, and without
// one the headers are looked for beside this Node (<prefix>/include/node, where the official builds, NodeSource
// and Debian's libnode-dev put them).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

function nodeDir() {
  const configured = process.env.npm_config_nodedir;
  if (configured) return configured;
  const prefix = path.dirname(path.dirname(fs.realpathSync(process.execPath)));
  return fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined;
}

const dir = nodeDir();
if (!dir) {
  process.stderr.write(
    `macnet: the headers of this Node (${process.version}, ${process.execPath}) are not installed: ` +
      'expected <prefix>/include/node/node_api.h. Install them (Debian: libnode-dev for its nodejs; NodeSource ' +
      'and the official builds ship them) or point npm at them with --nodedir=DIR, then install again.\n',
  );
  process.exit(1);
}
// npm gives scripts its bundled node-gyp as npm_config_node_gyp; PATH has it too (npm's node-gyp-bin).
const gyp = process.env.npm_config_node_gyp;
const [cmd, args] = gyp ? [process.execPath, [gyp]] : ['node-gyp', []];
const r = spawnSync(cmd, [...args, 'rebuild', `--nodedir=${dir}`], { stdio: 'inherit' });
if (r.error) {
  process.stderr.write(`macnet: cannot run node-gyp (${r.error.message}): install npm's node-gyp\n`);
  process.exit(1);
}
process.exit(r.status ?? 1);
