/**
 * Running `meterlink` from tests: in-process (fast, for output and exit status) or as a real child process
 * (for signals, crashes and the daemon), both from the TypeScript sources, no build step.
 */
import { fileURLToPath } from 'node:url';
import { runCli } from '../../agent/cli.js';
import { spawnLogged, type Spawned } from './process.js';
import type { SpawnOptions } from 'node:child_process';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in this process with captured output. */
export async function runCliCaptured(args: readonly string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { out: (s) => void (stdout += s), err: (s) => void (stderr += s) });
  return { code, stdout, stderr };
}

/**
 * Node options that load our TypeScript in a child process. Under tap, the children get tap's own loaders
 * (its TypeScript loader and its coverage hooks), so code a child runs is transpiled the same way and its
 * coverage merges with the parent's; outside tap (e.g. `node --import tsx x.test.ts`), tsx.
 */
export function tsNodeArgs(): string[] {
  const inherited = process.execArgv.filter((a) => a.startsWith('--import=') || a === '--enable-source-maps');
  return inherited.some((a) => a.includes('@tapjs/typescript') || a.includes('tsx'))
    ? inherited
    : ['--import', 'tsx'];
}

/** The node argv that runs `meterlink ARGS` from source. */
export function meterlinkArgv(args: readonly string[]): string[] {
  return [...tsNodeArgs(), `${repoRoot}agent/bin.ts`, ...args];
}

/** Spawns `meterlink ARGS` as a child process (stdout/stderr kept). */
export function spawnMeterlink(args: readonly string[], opts: SpawnOptions = {}): Spawned {
  return spawnLogged(process.execPath, meterlinkArgv(args), { cwd: repoRoot, ...opts });
}
