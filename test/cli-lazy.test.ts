/**
 * `meterlink <command>` loads only that command's module: the long-running `meterlink run` must not
 * hold provision's AWS SDK and X.509 libraries or the demo. The lazy table in agent/commands/index.ts names
 * each command by hand, so a name that does not match what its module registers would make the command
 * unknown: checked here for every entry.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { Command } from 'commander';
import { commandEntries, commandModulesFor } from '../agent/commands/index.js';
import { repoRoot, tsNodeArgs } from './harness/cli.js';

const quiet = { out: () => {}, err: () => {} };

t.test('every lazily loaded module registers the command its entry names', async (t) => {
  for (const entry of commandEntries) {
    const program = new Command('meterlink');
    (await entry.load()).register(program, quiet);
    t.same(
      program.commands.map((c) => c.name()),
      [entry.name],
      `${entry.name}: the module registers exactly that command`,
    );
  }
});

t.test('a named command loads one module; help or an unknown word loads them all', async (t) => {
  t.equal((await commandModulesFor(['run', '--config', 'x'])).length, 1);
  t.equal((await commandModulesFor(['--help'])).length, commandEntries.length);
  t.equal((await commandModulesFor(['no-such-command'])).length, commandEntries.length);
  t.equal((await commandModulesFor([])).length, commandEntries.length);
});

t.test('meterlink run loads no AWS SDK client and no X.509 library (child process)', async (t) => {
  const script =
    `const { runCli } = await import(${JSON.stringify(`${repoRoot}agent/cli.ts`)});` +
    `await runCli(['run', '--help'], { out() {}, err() {} });` +
    `const { createRequire } = await import('node:module');` +
    `const cjs = Object.keys(createRequire(import.meta.url).cache);` +
    `console.log(JSON.stringify(cjs.filter((k) => /node_modules\\/(@aws-sdk\\/client-|@peculiar\\/x509)/.test(k))));`;
  const out = execFileSync(process.execPath, [...tsNodeArgs(), '--input-type=module', '-e', script], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  t.same(JSON.parse(out.trim().split('\n').pop() as string), [], 'none of them loaded');
});
