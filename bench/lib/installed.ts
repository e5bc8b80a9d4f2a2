/**
 * The CLI as a box runs it: the bundle `npm run build` writes (scripts/bundle.mjs), which the installed
 * /usr/bin/meterlink wrapper executes. Benchmarks that measure the agent's memory measure this, not tsc's
 * per-module output. Exits with a clear message when it has not been built.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function installedCli(): string {
  const bin = fileURLToPath(new URL('../../dist/bundle/meterlink.js', import.meta.url));
  if (!existsSync(bin)) {
    console.error(
      `${bin} is missing: run \`npm run build\` first (the benchmark measures the agent as installed: the bundle).`,
    );
    process.exit(2);
  }
  return bin;
}
