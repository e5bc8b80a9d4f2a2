/**
 * The daemon's config loader (agent/config/isolated.ts): `loadConfig` in a worker thread, so the YAML
 * parser, Ajv and the compiled schema never stay in the long-running agent's heap. It must give exactly what
 * `loadConfig` gives (the config, frozen; or every problem with its line), must never hang or hide a failing
 * worker, and must keep those libraries out of the calling thread.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isConfigError, loadConfig, type ConfigError } from '../../agent/config/index.js';
import { configWorkerUrl, loadConfigIsolated } from '../../agent/config/isolated.js';
import { repoRoot } from '../harness/cli.js';
import { tempDir } from '../harness/tmp.js';

const fixtures = `${repoRoot}test/agent/fixtures/config`;

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

function isDeepFrozen(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return true;
  return Object.isFrozen(v) && Object.values(v).every(isDeepFrozen);
}

t.test('a good config: the same config loadConfig gives, frozen throughout', async (t) => {
  for (const name of ['full', 'everything', 'minimal']) {
    const file = `${fixtures}/good/${name}.yaml`;
    const isolated = await loadConfigIsolated(file);
    t.same(isolated, await loadConfig(file), `${name}.yaml`);
    t.ok(isDeepFrozen(isolated), `${name}.yaml: frozen`);
  }
});

t.test('a bad config: a ConfigError with the same problems, lines and fixes', async (t) => {
  for (const name of ['many', 'unknown-key', 'duplicate-key', 'inline-profile']) {
    const file = `${fixtures}/bad/${name}.yaml`;
    const isolated = await rejection(loadConfigIsolated(file));
    const inProcess = await rejection(loadConfig(file));
    t.ok(isConfigError(isolated), `${name}.yaml: a ConfigError`);
    t.same((isolated as ConfigError).problems, (inProcess as ConfigError).problems, `${name}.yaml`);
    t.equal((isolated as Error).message, (inProcess as Error).message);
  }
});

t.test('requireCloud reaches the worker; a missing file is FILE_MISSING', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'config.yaml');
  await writeFile(file, 'thing: b\nmeters:\n  - {id: m, driver: dsmr, port: /dev/ttyUSB0}\n');
  t.equal((await loadConfigIsolated(file)).thing, 'b', 'without requireCloud no cloud section is needed');
  const noCloud = await rejection(loadConfigIsolated(file, { requireCloud: true }));
  t.match((noCloud as ConfigError).problems, [{ code: 'MISSING_KEY', field: 'cloud', line: 1 }]);
  const missing = await rejection(loadConfigIsolated(join(dir, 'nope.yaml')));
  t.match((missing as ConfigError).problems, [{ code: 'FILE_MISSING', file: join(dir, 'nope.yaml') }]);
});

t.test('a worker that fails or ends without an answer is an error, never a hang', async (t) => {
  const file = `${fixtures}/good/minimal.yaml`;
  const broke = await rejection(
    loadConfigIsolated(file, {}, new URL('fixtures/config-worker/throws.ts', import.meta.url)),
  );
  t.notOk(isConfigError(broke));
  t.match((broke as Error).message, `loading the config ${file} failed: the worker module broke`);
  t.match((broke as Error).stack, /\(in the worker\) Error: the worker module broke/);
  const silent = await rejection(
    loadConfigIsolated(file, {}, new URL('fixtures/config-worker/silent.ts', import.meta.url)),
  );
  t.match((silent as Error).message, /worker thread exited \(code 0\) without an answer/);
});

t.test('the worker entry is the module beside the loader', async (t) => {
  t.equal(configWorkerUrl.href, new URL('../../agent/config/config-worker.ts', import.meta.url).href);
});

t.test(
  'neither the YAML parser nor Ajv loads in the calling thread, nor with `run` (child process)',
  async (t) => {
    // Both packages are CommonJS: each thread has its own module cache, so the calling thread's shows what it
    // loaded. Run through tsx, not tap's loaders (which load yaml themselves).
    const script =
      `const { loadConfigIsolated } = await import(${JSON.stringify(`${repoRoot}agent/config/isolated.ts`)});` +
      `const { runCli } = await import(${JSON.stringify(`${repoRoot}agent/cli.ts`)});` +
      `await runCli(['run', '--help'], { out() {}, err() {} });` +
      `const config = await loadConfigIsolated(${JSON.stringify(`${fixtures}/good/full.yaml`)});` +
      `const { createRequire } = await import('node:module');` +
      `const cjs = Object.keys(createRequire(import.meta.url).cache);` +
      `console.log(JSON.stringify({ thing: config.thing, loaded: cjs.filter((k) => /node_modules\\/(yaml|ajv)\\//.test(k)) }));`;
    // No coverage from this child (tap's processinfo, which tap's NODE_OPTIONS loads into it): tsx compiles the
    // sources differently from tap's loader, and the two would be merged under the same file URLs.
    const env = { ...process.env, _TAPJS_PROCESSINFO_COVERAGE_: '0' };
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: repoRoot,
      encoding: 'utf8',
      env,
    });
    t.same(JSON.parse(out.trim().split('\n').pop() as string), { thing: 'apt-12-meterbox', loaded: [] });
  },
);
