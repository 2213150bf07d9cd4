// ESLint for the whole checkout: JavaScript's and typescript-eslint's recommended rules, lines of at most 120
// columns, and the layer rules of src/ (README, "Design"). Prettier does the formatting (.prettierrc.json);
// `npm run lint` runs both, `npm run format` rewrites files with Prettier.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import stylistic from '@stylistic/eslint-plugin';
import tseslint from 'typescript-eslint';

// Which layers of src/ each layer may import. A layer is a directory of src/; a file may import its own layer
// freely. cli is the composition root (the daemon command makes each service once and hands it to those that use
// it); docker is the plugin front end; drivers and ipam sit side by side and import nothing of each other; lan (the
// LAN behind each parent: probes, claims, DHCP sockets and leases) is below both; kernel, probe (ARP/NDP frames),
// dhcp (the DHCP client protocol), dns (the names' DNS server) and store are below lan, and take what they need as
// parameters.
const LOW = ['errors', 'types', 'log'];
const BASE = ['kernel', 'probe', 'dhcp', 'dns', 'store', ...LOW];
const LAYERS = {
  cli: ['docker', 'drivers', 'ipam', 'lan', 'names', 'doctor', ...BASE],
  docker: ['drivers', 'ipam', 'lan', 'names', ...BASE],
  drivers: ['lan', ...BASE],
  ipam: ['lan', ...BASE],
  lan: BASE,
  names: BASE,
  doctor: ['lan', ...BASE],
  kernel: LOW,
  probe: LOW,
  dhcp: LOW,
  dns: LOW,
  store: LOW,
  errors: [],
  types: [],
  log: [],
};

// Imports that break the rules above today, each by file and module (relative to src/). Add none: a new one needs
// a reason in review.
const EXCEPTIONS = {};

// The shape of src/ (issue 18, docs/architecture.md): files of one topic, at most 350 lines; what differs between
// link kinds only in src/drivers/kinds (the rest asks kindOf(config)); and the composition root hands the driver and
// the IPAM services as objects, never closures that reach from one into the other.
const MAX_LINES = 350;
const LINK_KIND = '/^(macvlan|ipvlan)$/';
const KIND_BRANCHES = [
  {
    selector: `BinaryExpression[operator=/^[!=]==?$/]:matches([left.value=${LINK_KIND}], [right.value=${LINK_KIND}])`,
    message: 'A branch on a link kind belongs in src/drivers/kinds (ask kindOf(config); docs/architecture.md).',
  },
  {
    selector: `SwitchCase[test.value=${LINK_KIND}]`,
    message: 'A branch on a link kind belongs in src/drivers/kinds (ask kindOf(config); docs/architecture.md).',
  },
];
const NO_CLOSURES_BETWEEN_SERVICES = [
  {
    selector:
      'NewExpression[callee.name=/^(NetworkDriver|Ipam|Lan|DhcpLeases)$/] ' +
      ':matches(ArrowFunctionExpression, FunctionExpression, CallExpression[callee.property.name="bind"])',
    message:
      'The daemon makes each service once and hands it over as an object; no closures between driver and IPAM ' +
      '(docs/architecture.md).',
  },
];

const structureConfigs = [
  {
    name: 'macnet/structure',
    files: ['src/**/*.ts'],
    rules: {
      'max-lines': ['error', { max: MAX_LINES }],
      'no-restricted-syntax': ['error', ...KIND_BRANCHES],
    },
  },
  {
    // The kinds themselves, and the kernel's netlink codec, which maps link kind names to attributes.
    name: 'macnet/structure/kinds',
    files: ['src/drivers/kinds/**/*.ts', 'src/kernel/**/*.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    name: 'macnet/structure/composition-root',
    files: ['src/cli/daemon.ts'],
    rules: { 'no-restricted-syntax': ['error', ...KIND_BRANCHES, ...NO_CLOSURES_BETWEEN_SERVICES] },
  },
];

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The no-restricted-imports setting for files of `layer`, with `allowed` modules (relative to src/) let through. */
function layerRule(layer, allowed = []) {
  const forbidden = Object.keys(LAYERS).filter((l) => l !== layer && !LAYERS[layer].includes(l));
  // A relative path that climbs out of the file's directory and names another layer's directory: '../drivers',
  // '../../ipam/cidr'. Imports of the layer's own files never climb to a layer name.
  const except = allowed.map((m) => `(?!(\\.\\./)+${escape(m)}$)`).join('');
  const may = LAYERS[layer].length ? LAYERS[layer].join(', ') : 'nothing';
  return [
    'error',
    {
      patterns: [
        {
          regex: `^${except}(\\.\\./)+(${forbidden.join('|')})(/|$)`,
          message: `Layer rule: src/${layer} may import ${may} of src/ (eslint.config.mjs, README "Design").`,
        },
      ],
    },
  ];
}

const layerConfigs = [
  ...Object.keys(LAYERS).map((layer) => ({
    name: `macnet/layer/${layer}`,
    files: [`src/${layer}/**/*.ts`],
    rules: { 'no-restricted-imports': layerRule(layer) },
  })),
  ...Object.entries(EXCEPTIONS).map(([file, allowed]) => ({
    name: `macnet/layer-exception/${file}`,
    files: [file],
    rules: { 'no-restricted-imports': layerRule(file.split('/')[1], allowed) },
  })),
];

export default defineConfig(
  { ignores: ['dist/', 'build/', 'bench/results/'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    name: 'macnet/all',
    files: ['**/*.ts', '**/*.js', '**/*.mjs', 'bin/macnet'],
    plugins: { '@stylistic': stylistic },
    languageOptions: {
      globals: {
        __dirname: 'readonly',
        Buffer: 'readonly',
        clearImmediate: 'readonly',
        clearInterval: 'readonly',
        clearTimeout: 'readonly',
        console: 'readonly',
        module: 'writable',
        process: 'readonly',
        require: 'readonly',
        setImmediate: 'readonly',
        setInterval: 'readonly',
        setTimeout: 'readonly',
      },
    },
    rules: {
      // Prettier wraps code at 120; this catches what it leaves long: comments (and in src/ strings, below).
      '@stylistic/max-len': ['error', { code: 120, ignoreUrls: true, ignoreRegExpLiterals: true }],
      // A CommonJS project: require() loads the native addon and package.json at run time, on purpose.
      '@typescript-eslint/no-require-imports': 'off',
      // `cond ? a() : b()` as a statement is used on purpose (test/lab/vm.ts).
      '@typescript-eslint/no-unused-expressions': ['error', { allowTernary: true }],
      // `const { dropped: _, ...rest } = o` leaves a property out; `_x` marks a parameter kept for its position.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { ignoreRestSiblings: true, varsIgnorePattern: '^_', argsIgnorePattern: '^_' },
      ],
    },
  },
  {
    name: 'macnet/src',
    files: ['src/**'],
    // Every line of src/ at most 120 columns: strings, URLs and regular expressions included.
    rules: { '@stylistic/max-len': ['error', { code: 120 }] },
  },
  {
    name: 'macnet/tests-and-bench',
    files: ['test/**', 'bench/**', 'bin/macnet', '*.mjs'],
    rules: {
      // Expected messages and test names read best on one line; comments still wrap at 120.
      '@stylistic/max-len': [
        'error',
        { code: 120, ignoreUrls: true, ignoreRegExpLiterals: true, ignoreStrings: true, ignoreTemplateLiterals: true },
      ],
    },
  },
  ...layerConfigs,
  ...structureConfigs,
);
