#!/usr/bin/env node
/**
 * Bundles the `meterlink` CLI into dist/bundle/: what /usr/bin/meterlink runs on the box.
 *
 *   node scripts/bundle.mjs [OUTDIR]        (default dist/bundle; `npm run build` runs it)
 *
 * Why: V8 keeps the source text, scope data and a module record of every module it loads for as long as the
 * process lives. As one entry plus code-split chunks (each command's code still loads only when that command
 * runs), with comments and whitespace gone and dead code dropped, `meterlink run` opens ~150 files as it
 * starts instead of ~700 (.js, .json, .node; strace), and in the same bench:footprint run its V8 heap peak is
 * 2.8 MiB smaller and its steady anonymous RSS 3.6 MiB smaller (docs/memory.md).
 *
 * What stays outside the bundle and loads from node_modules as before:
 * - the native modules and what locates its binary relative to its own files: aws-crt, classic-level,
 *   serialport and @serialport/*;
 * - the AWS SDK for JavaScript and aws-iot-device-sdk-v2, used by `meterlink provision` only (not on the run
 *   path): unchanged code where a bundler could get dynamic loading wrong.
 *
 * Identifiers are kept (no identifier minification), so stack traces in the journal still name our
 * functions; `.map` files lie next to the chunks for `NODE_OPTIONS=--enable-source-maps` (off by default: a
 * loaded source map costs memory).
 *
 * A second entry, `config-worker.js`, is the worker thread `meterlink run` checks its config in
 * (agent/config/isolated.ts): the YAML parser and Ajv load there, in an isolate thrown away after the check,
 * and never in the daemon's own heap.
 *
 * Files found relative to the module's own URL (the config JSON schema, the dashboard's static files) are
 * copied next to the chunks, which all lie in OUTDIR, so `new URL('./x', import.meta.url)` finds them.
 */
import { build } from 'esbuild';
import { cp, mkdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = resolve(process.argv[2] ?? join(root, 'dist/bundle'));

const EXTERNAL = [
  'aws-crt',
  'classic-level',
  'serialport',
  '@serialport/*',
  '@aws-sdk/*',
  '@smithy/*',
  'aws-iot-device-sdk-v2',
];

await rm(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { meterlink: 'agent/bin.ts', 'config-worker': 'agent/config/config-worker.ts' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: EXTERNAL,
  minifyWhitespace: true,
  minifySyntax: true,
  keepNames: false,
  sourcemap: 'linked',
  sourcesContent: false,
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
  // Bundled CommonJS dependencies call require() for Node's built-ins; in an ES module it comes from here.
  banner: {
    js: "import { createRequire as __meterlinkCreateRequire } from 'node:module'; const require = __meterlinkCreateRequire(import.meta.url);",
  },
});

// Assets the code finds next to itself.
await cp(join(root, 'agent/config/meterlink.schema.json'), join(outdir, 'meterlink.schema.json'));
await mkdir(join(outdir, 'static/vendor'), { recursive: true });
for (const f of ['index.html', 'app.js', 'style.css'])
  await cp(join(root, 'agent/dashboard/static', f), join(outdir, 'static', f));
const uplot = dirname(createRequire(join(root, 'package.json')).resolve('uplot/package.json'));
for (const f of ['dist/uPlot.iife.min.js', 'dist/uPlot.min.css', 'LICENSE'])
  await cp(join(uplot, f), join(outdir, 'static/vendor', f.split('/').pop()));

const js = Object.entries(result.metafile.outputs).filter(([f]) => f.endsWith('.js'));
const bytes = js.reduce((a, [, o]) => a + o.bytes, 0);
console.log(
  `bundle: ${join(outdir, 'meterlink.js')} + ${js.length - 1} chunks, ${(bytes / 1024).toFixed(0)} KiB of JS`,
);
