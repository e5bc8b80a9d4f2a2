/**
 * Bundles the Lambda functions with esbuild into infra-cfn/lambda/dist/{ingest,provisioning-hook}/index.mjs —
 * the directories `aws cloudformation package` zips and uploads (Code: ../lambda/dist/<fn> in the templates).
 * The AWS SDK is bundled too, so the deployed code runs exactly the versions the tests ran.
 *
 *   npx tsx infra-cfn/build.ts [outDir]
 */
import { build, type BuildResult } from 'esbuild';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export const FUNCTIONS = {
  ingest: 'ingest-entry.ts',
  'provisioning-hook': 'provisioning-hook-entry.ts',
} as const;
export type FunctionName = keyof typeof FUNCTIONS;

export interface BuiltFunction {
  readonly name: FunctionName;
  readonly file: string;
  readonly bytes: number;
}

export async function buildLambdas(outDir = join(here, 'lambda', 'dist')): Promise<BuiltFunction[]> {
  const built: BuiltFunction[] = [];
  for (const [name, entry] of Object.entries(FUNCTIONS) as [FunctionName, string][]) {
    const dir = join(outDir, name);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const file = join(dir, 'index.mjs');
    const result: BuildResult<{ metafile: true }> = await build({
      entryPoints: [join(here, 'lambda', entry)],
      outfile: file,
      bundle: true,
      platform: 'node',
      target: 'node22',
      format: 'esm',
      minify: true,
      sourcemap: 'linked',
      metafile: true,
      legalComments: 'none',
      // Some bundled CommonJS (the AWS SDK's dependencies) calls require(); give ESM output one.
      banner: {
        js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
      },
      logLevel: 'warning',
    });
    const out =
      result.metafile.outputs[
        Object.keys(result.metafile.outputs).find((k) => k.endsWith('index.mjs')) ?? ''
      ];
    built.push({ name, file, bytes: out?.bytes ?? 0 });
  }
  return built;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outDir = process.argv[2] ? resolve(process.argv[2]) : undefined;
  for (const f of await buildLambdas(outDir))
    console.log(`${f.name}: ${f.file} (${(f.bytes / 1024).toFixed(0)} KiB)`);
}
