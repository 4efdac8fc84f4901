// Builds dist/: the daemon and CLI bundled by esbuild into dist/cli.js and the chunks it loads on
// first use (dist/*-HASH.js), and the web console into dist/web; then dist/.stamp, which
// scripts/stale.mjs compares with the sources. `npm run build` runs this (through tsx).
//
// One bundle rather than tsc's file per module: Node resolves, reads and compiles each ESM file
// of its own, and at ~170 files of ours and ~200 of the dependencies that was most of start-up.
// The native addons stay outside (their .node files are found next to their own JavaScript), so
// they are the package's only dependencies at run time.
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { buildConsole } from '../web/build.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);

/** Imported at run time from node_modules, never bundled. */
export const EXTERNAL = [
  '@lydell/node-pty',
  'koffi',
  '@napi-rs/xattr',
  // ws's optional speed-ups: it tries to require them and goes on without.
  'bufferutil',
  'utf-8-validate',
];

/**
 * The CommonJS dependencies (commander, ws, busboy, http-proxy-3…) call require() for Node's own
 * modules, which ESM output lacks: each output file gets a require of its own.
 */
const BANNER = [
  "import { createRequire as __sandboxdCreateRequire } from 'node:module';",
  'const require = __sandboxdCreateRequire(import.meta.url);',
].join('\n');

/**
 * Node's own modules by require(), not import. Node makes a module's ESM namespace by reading
 * every export, which sets off the lazy ones: on Node 24, `import 'node:http'` loads undici,
 * TLS and HTTP/2 for http's WebSocket and friends, 60 ms and 13 MiB where require() takes 15 ms.
 * Each `node:` module imported becomes a module of the bundle that requires it once and exports
 * its plain values (a lazy export is left out: using one fails the build, not the daemon).
 * Not esbuild's own CommonJS interop, which gives every importing module a copy of all the
 * exports as getters: 8,000 closures. A require() stays what it is.
 */
// Plain values on the Node that builds, deprecated getters on a newer one (Node 24 warns on
// every read, DEP0176): reading them all at load would print that warning from every command.
const DEPRECATED_GETTERS = new Set(['node:fs.F_OK', 'node:fs.R_OK', 'node:fs.W_OK', 'node:fs.X_OK']);

const builtinsByRequire: Plugin = {
  name: 'builtins-by-require',
  setup(plugin) {
    plugin.onResolve({ filter: /^node:/ }, ({ path, kind }) =>
      kind === 'import-statement' || kind === 'dynamic-import'
        ? { path, namespace: 'builtin' }
        : { path, external: true },
    );
    plugin.onLoad({ filter: /.*/, namespace: 'builtin' }, ({ path }) => {
      const exports = require(path) as Record<string, unknown>;
      const plain = Object.keys(exports).filter(
        (name) =>
          /^[A-Za-z_$][\w$]*$/.test(name) &&
          name !== 'default' &&
          !DEPRECATED_GETTERS.has(`${path}.${name}`) &&
          'value' in (Object.getOwnPropertyDescriptor(exports, name) ?? {}),
      );
      const contents = [
        `const m = require(${JSON.stringify(path)});`,
        'export default m;',
        plain.length > 0 ? `export const { ${plain.join(', ')} } = m;` : '',
      ].join('\n');
      return { contents, loader: 'js' };
    });
  },
};

/** Bundles src/cli.ts into `outdir` (dist/ unless given); returns the bytes of each output file. */
export async function bundleDaemon(outdir = join(ROOT, 'dist')): Promise<Record<string, number>> {
  const { metafile } = await build({
    absWorkingDir: ROOT,
    entryPoints: { cli: 'src/cli.ts' },
    bundle: true,
    // What the code loads with import() stays out of cli.js, in a chunk of its own.
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20.19',
    // Every file directly in outdir: src/version.ts and src/ui/assets.ts find package.json and
    // dist/web relative to their own file, which is then any of them.
    outdir,
    entryNames: '[name]',
    chunkNames: '[name]-[hash]',
    external: EXTERNAL,
    plugins: [builtinsByRequire],
    banner: { js: BANNER },
    // The bundled code's `Headers` (Connect-RPC's) is ours, not the global: see plain-headers.ts.
    inject: [join(ROOT, 'scripts', 'headers-inject.ts')],
    // V8 keeps every module's source in the heap for as long as the daemon runs, and holds it in
    // two bytes a character once one character is not Latin-1 (an arrow in a comment did that
    // to 800 KiB of it). Without comments or spaces, the source is ASCII and a third smaller.
    // Names stay as they are: stack traces still say which function, and the maps say where.
    minifyWhitespace: true,
    minifySyntax: true,
    // Only for `node --enable-source-maps`: Node reads no map unless asked to.
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'warning',
  });
  await chmod(join(outdir, 'cli.js'), 0o755);
  return Object.fromEntries(
    Object.entries(metafile.outputs)
      .filter(([file]) => file.endsWith('.js'))
      .map(([file, { bytes }]) => [file, bytes]),
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const dist = join(ROOT, 'dist');
  // Nothing of an earlier build may linger: a stale chunk would never be loaded, but tsc's old
  // tree beside the bundle would be packed.
  await rm(dist, { recursive: true, force: true });
  const [outputs, { page, terminal }] = await Promise.all([bundleDaemon(dist), buildConsole()]);
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
  const sizes = Object.entries(outputs).sort((a, b) => b[1] - a[1]);
  console.log(
    `daemon: ${sizes.map(([file, bytes]) => `${file.replace(/^.*\//, '')} ${kib(bytes)}`).join(', ')}`,
  );
  console.log(`console: page ${kib(page)} gzipped; the terminal adds ${kib(terminal)} on first use`);
  // Last, so that a build that failed halfway is stale.
  const version = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')).version as string;
  await writeFile(join(dist, '.stamp'), `sandboxd ${version}\n`);
}
