/**
 * `loadConfigIsolated(file)`: `loadConfig` run in a short-lived worker thread, for the daemon.
 *
 * Why: a Node process never unloads an ES module. Loaded in the daemon itself, the YAML parser, Ajv with the
 * compiled config schema, the checks and the schema's TypeBox definitions stay in its V8 heap for the weeks it
 * runs, though they are used once, at start. In a worker they live in the worker's own isolate, which is
 * thrown away, pages and all, when the worker ends; the daemon receives the checked config as plain data (a
 * structured clone) and freezes it again. Same result, same `ConfigError` (every problem, with its line),
 * as `loadConfig` in-process; `meterlink config check` and the other short-lived commands keep calling
 * `loadConfig` directly.
 *
 * Run from the TypeScript sources (tests, `npm run meterlink`), the worker registers tsx's loader itself:
 * Node 20 does not run the process's `--import` preloads in worker threads.
 */
import { Worker } from 'node:worker_threads';
import { deepFreeze } from './decode.js';
import { ConfigError, type ConfigProblem } from './errors.js';
import type { Config } from './schema.js';

/** What the worker is given. */
export interface WorkerInput {
  readonly file: string;
  readonly requireCloud: boolean;
}

/** What the worker posts back: the config, the config's problems, or an unexpected error. */
export type WorkerOutcome =
  | { readonly ok: true; readonly config: Config }
  | { readonly ok: false; readonly problems: readonly ConfigProblem[] }
  | { readonly ok: false; readonly error: { readonly message: string; readonly stack?: string } };

const fromSource = import.meta.url.endsWith('.ts');

/**
 * The worker's entry module: beside this file (tsc's output, the sources), and in the bundle an entry of its
 * own beside the chunks (scripts/bundle.mjs).
 */
export const configWorkerUrl = new URL(
  fromSource ? './config-worker.ts' : './config-worker.js',
  import.meta.url,
);

// An eval worker's script (run as CommonJS, or as an ES module under --input-type=module, which the worker
// inherits): registers tsx when asked, then imports the entry module.
const BOOTSTRAP = `(async () => {
  const { workerData } = await import('node:worker_threads');
  if (workerData.tsx) (await import('tsx/esm/api')).register();
  await import(workerData.entry);
})();`;

/**
 * From the sources (tests, `npm run meterlink`) the worker compiles TypeScript with tsx, whatever loader the
 * process runs. Hooks that NODE_OPTIONS gives the process, which a worker thread runs too (a test runner's
 * coverage recorder), would record tsx's output under the same file URLs as the process's own compiled code,
 * at other offsets, and corrupt its coverage; so that worker gets neither NODE_OPTIONS nor NODE_V8_COVERAGE.
 */
function sourceWorkerEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  delete copy.NODE_OPTIONS;
  delete copy.NODE_V8_COVERAGE;
  return copy;
}

/**
 * Reads and checks `file` in a worker thread. Resolves to the frozen, fully defaulted config; rejects with a
 * `ConfigError` (the same problems `loadConfig` finds), or with an `Error` if the worker itself failed.
 * `entry` is the worker's module (tests give another to make it fail).
 */
export function loadConfigIsolated(
  file: string,
  opts: { requireCloud?: boolean } = {},
  entry: URL = configWorkerUrl,
): Promise<Config> {
  const input: WorkerInput = { file, requireCloud: opts.requireCloud ?? false };
  return new Promise<Config>((resolve, reject) => {
    let outcome: WorkerOutcome | undefined;
    const tsx = entry.pathname.endsWith('.ts');
    const worker = new Worker(BOOTSTRAP, {
      eval: true,
      workerData: { ...input, entry: entry.href, tsx },
      ...(tsx ? { env: sourceWorkerEnv(process.env) } : {}),
    });
    worker.once('message', (m: WorkerOutcome) => (outcome = m));
    worker.once('error', (err) => {
      outcome ??= { ok: false, error: { message: err.message, stack: err.stack } };
    });
    worker.once('exit', (code) => {
      if (outcome === undefined)
        reject(new Error(`the config loader's worker thread exited (code ${code}) without an answer`));
      else if (outcome.ok) resolve(deepFreeze(outcome.config));
      else if ('problems' in outcome) reject(new ConfigError(file, outcome.problems));
      else {
        const err = new Error(`loading the config ${file} failed: ${outcome.error.message}`);
        if (outcome.error.stack) err.stack = `${err.message}\n(in the worker) ${outcome.error.stack}`;
        reject(err);
      }
    });
  });
}
