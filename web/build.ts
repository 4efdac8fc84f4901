// Builds the web console into dist/web: pages, and assets named by content hash.
// `node --import tsx web/build.ts` (part of `npm run build`) prints what a browser downloads.
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type Metafile } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const WEB_OUT = join(ROOT, 'dist', 'web');

export interface ConsoleSizes {
  /** Gzipped bytes of what the first page load fetches: HTML, script, styles. */
  page: number;
  /** Gzipped bytes the terminal adds on first use (xterm, mostly). */
  terminal: number;
}

const ENTRIES = { app: 'web/src/main.ts', style: 'web/src/style.css' };

const gzipped = async (file: string) => gzipSync(await readFile(file), { level: 9 }).length;

/** Bundles the front end and writes the pages; returns the gzipped sizes. */
export async function buildConsole(outdir = WEB_OUT): Promise<ConsoleSizes> {
  await rm(outdir, { recursive: true, force: true });
  const assets = join(outdir, 'assets');
  const { metafile } = await build({
    absWorkingDir: ROOT,
    entryPoints: ENTRIES,
    bundle: true,
    splitting: true,
    format: 'esm',
    minify: true,
    target: ['chrome111', 'firefox115', 'safari16.4'],
    outdir: assets,
    entryNames: '[name]-[hash]',
    chunkNames: '[name]-[hash]',
    metafile: true,
    logLevel: 'warning',
  });
  const names = outputNames(metafile);
  await mkdir(outdir, { recursive: true });
  for (const page of await readdir(join(ROOT, 'web', 'pages'))) {
    const html = await readFile(join(ROOT, 'web', 'pages', page), 'utf8');
    await writeFile(
      join(outdir, page),
      html.replace(/\{\{(\w+\.\w+)\}\}/g, (_, key: string) => {
        const name = names.get(key);
        if (!name) throw new Error(`${page}: no built asset ${key}`);
        return name;
      }),
    );
  }
  return measure(metafile, outdir);
}

/** app.js → app-HASH.js, style.css → style-HASH.css */
function outputNames(metafile: Metafile): Map<string, string> {
  const names = new Map<string, string>();
  for (const [output, info] of Object.entries(metafile.outputs)) {
    if (!info.entryPoint) continue;
    const file = output.slice(output.lastIndexOf('/') + 1);
    names.set(file.replace(/-[A-Z0-9]+(\.\w+)$/, '$1'), file);
  }
  return names;
}

async function measure(metafile: Metafile, outdir: string): Promise<ConsoleSizes> {
  const outputs = metafile.outputs;
  // What the page loads at once: the entry points and what they import statically (esbuild
  // counts the targets of dynamic imports as entry points too: those are loaded later).
  const pages: string[] = Object.values(ENTRIES);
  const eager = new Set<string>();
  const visit = (output: string) => {
    if (eager.has(output)) return;
    eager.add(output);
    for (const edge of outputs[output]?.imports ?? []) if (edge.kind === 'import-statement') visit(edge.path);
  };
  for (const [output, info] of Object.entries(outputs)) {
    if (info.entryPoint && pages.includes(info.entryPoint)) visit(output);
  }
  let page = await gzipped(join(outdir, 'index.html'));
  let terminal = 0;
  for (const output of Object.keys(outputs)) {
    const size = await gzipped(join(ROOT, output));
    if (eager.has(output)) page += size;
    else terminal += size;
  }
  return { page, terminal };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { page, terminal } = await buildConsole();
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
  console.log(`console: page ${kib(page)} gzipped; the terminal adds ${kib(terminal)} on first use`);
}
