/**
 * The worker thread of `loadConfigIsolated` (isolated.ts): loads and checks one config file and posts the
 * outcome back, then ends. Everything the check needs (the YAML parser, Ajv and the compiled schema, the
 * checks) lives and dies in this thread's own V8 isolate.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isConfigError } from './errors.js';
import { loadConfig } from './load.js';
import type { WorkerInput, WorkerOutcome } from './isolated.js';

const { file, requireCloud } = workerData as WorkerInput;
let outcome: WorkerOutcome;
try {
  outcome = { ok: true, config: await loadConfig(file, { requireCloud }) };
} catch (err) {
  outcome = isConfigError(err)
    ? { ok: false, problems: err.problems }
    : { ok: false, error: { message: (err as Error)?.message ?? String(err), stack: (err as Error)?.stack } };
}
parentPort?.postMessage(outcome);
