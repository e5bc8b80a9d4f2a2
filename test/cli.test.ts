import t from 'tap';
import { readFileSync } from 'node:fs';
import { repoRoot, runCliCaptured, spawnMeterlink } from './harness/cli.js';

const pkg = JSON.parse(readFileSync(`${repoRoot}package.json`, 'utf8')) as { version: string };

t.test('--version prints the package version', async (t) => {
  const r = await runCliCaptured(['--version']);
  t.equal(r.code, 0);
  t.equal(r.stdout.trim(), pkg.version);
});

t.test('--help describes the program and gives an example', async (t) => {
  const r = await runCliCaptured(['--help']);
  t.equal(r.code, 0);
  t.match(r.stdout, /Usage: meterlink/);
  t.match(r.stdout, /Examples:/);
});

t.test('an unknown option is a usage error (exit 2) with a hint', async (t) => {
  const r = await runCliCaptured(['--no-such-option']);
  t.equal(r.code, 2);
  t.match(r.stderr, /unknown option/);
  t.match(r.stderr, /--help/);
});

t.test('the executable runs as a child process from source', async (t) => {
  const p = spawnMeterlink(['--version']);
  await p.exited();
  t.equal(p.child.exitCode, 0, p.output());
  t.equal(p.output().trim(), pkg.version);
});
