/**
 * The bundle (scripts/bundle.mjs) is what /usr/bin/meterlink runs on a box: every other test runs
 * the TypeScript sources, so this one builds the bundle and runs it for real — the CLI's version, help and
 * config check (the JSON schema found next to the chunks), and `meterlink run` reading a Modbus RTU meter on a
 * pty and publishing signed batches to Mosquitto over mutual TLS, stopped cleanly by SIGTERM. It also proves
 * what the bundle is for: the run path loads aws-crt's MQTT 5 modules, not aws-iot-device-sdk-v2's index
 * (Greengrass IPC, shadow, jobs: 2.3 MiB of heap), and none of provision's AWS SDK.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { endAfterMqtt } from '../harness/exit.js';
import { repoRoot } from '../harness/cli.js';
import { spawnLogged } from '../harness/process.js';
import { AGENT_START_MS, GiveUp, waitFor } from '../harness/wait.js';
import { startRig } from '../e2e/helpers.js';
import { unitMemorySettings } from '../../bench/lib/proc.js';

const execFileP = promisify(execFile);
// The unit's memory settings, as the installed wrapper passes them (its environment, and its
// METERLINK_NODE_FLAGS on node's command line, with METERLINK_RUN_NODE_FLAGS for `run`); and none of tap's
// loaders: the bundle is plain JavaScript run by plain node.
const unit = await unitMemorySettings(join(repoRoot, 'systemd/meterlink.service'));
const env = { ...process.env, NODE_OPTIONS: '', ...unit.env };
const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as {
  version: string;
  bin: { meterlink: string };
};

// Inside the repo, so the externals (aws-crt, classic-level, serialport) resolve from its node_modules and
// ../package.json is the package's, as in /opt/meterlink.
const dir = await mkdtemp(join(repoRoot, '.bundle-test-'));
// Synchronous: endAfterMqtt exits the process right after the teardowns have run.
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const built = await execFileP(process.execPath, [join(repoRoot, 'scripts/bundle.mjs'), dir], { env });
const bin = join(dir, 'meterlink.js');
const cli = async (args: string[]) => {
  try {
    const { stdout, stderr } = await execFileP(
      process.execPath,
      [...unit.nodeFlagsFor(args[0] ?? ''), bin, ...args],
      {
        env,
      },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
};

await t.test('the bundle: one entry, code-split chunks, its assets beside them', async (t) => {
  t.match(built.stdout, /bundle: .*meterlink\.js \+ \d+ chunks, \d+ KiB of JS/);
  t.equal(pkg.bin.meterlink, './dist/bundle/meterlink.js', 'package.json bin is the bundle');
  const files = await readdir(dir);
  t.ok(files.filter((f) => f.endsWith('.js')).length > 5, 'commands are split into chunks');
  for (const f of [
    'config-worker.js',
    'meterlink.schema.json',
    'static/index.html',
    'static/vendor/uPlot.iife.min.js',
  ])
    t.ok(existsSync(join(dir, f)), f);
  const entry = await readFile(bin, 'utf8');
  t.match(entry, /^#!\/usr\/bin\/env node\n/, 'executable entry keeps its shebang');
});

await t.test(
  '--version, --help, and a config checked against the schema found beside the chunks',
  async (t) => {
    const version = await cli(['--version']);
    t.equal(version.code, 0);
    t.equal(version.stdout.trim(), pkg.version);
    const help = await cli(['--help']);
    t.equal(help.code, 0);
    t.match(help.stdout, /run\b[\s\S]*buffer\b[\s\S]*provision\b/);
    const example = await cli(['config', 'example', 'modbus-tcp']);
    t.equal(example.code, 0);
    const file = join(dir, 'example.yaml');
    await writeFile(file, example.stdout);
    const check = await cli(['config', 'check', file]);
    t.equal(check.code, 0, check.stderr);
    await writeFile(file, example.stdout.replace(/interval: \S+/, 'interval: often'));
    const bad = await cli(['config', 'check', file]);
    t.equal(bad.code, 78, 'a bad config is a config error');
    t.match(bad.stdout + bad.stderr, /interval/);
    // `run` checks its config in a worker thread, whose entry is a file of its own beside the chunks.
    const run = await cli(['run', '--config', file]);
    t.equal(run.code, 78, '`run` refuses a bad config, found by its worker thread');
    t.match(run.stderr, new RegExp(`${file}:\\d+:\\d+ meters\\[0\\]\\.interval: `));
    t.match(run.stderr, /not starting: .* has 2 problem/, 'the interval, and no cloud: section');
  },
);

await t.test(
  '`meterlink run` from the bundle: meter → LevelDB → Mosquitto mTLS, verified; SIGTERM exits 0',
  async (t) => {
    const rig = await startRig(t);
    const loaded = join(rig.dir, 'loaded.json');
    // Records, at exit, every CommonJS file the agent loaded (node_modules' packages are CommonJS).
    const probe =
      'data:text/javascript,' +
      encodeURIComponent(
        `import{createRequire}from'node:module';import{writeFileSync}from'node:fs';const r=createRequire(${JSON.stringify(bin)});` +
          `process.on('exit',()=>writeFileSync(${JSON.stringify(loaded)},JSON.stringify(Object.keys(r.cache))));`,
      );
    const agent = spawnLogged(
      process.execPath,
      [...unit.nodeFlagsFor('run'), '--import', probe, bin, 'run', '--config', rig.configFile],
      {
        cwd: rig.dir,
        env,
      },
    );
    t.teardown(() => agent.kill('SIGKILL'));
    await waitFor(
      () => {
        if (!agent.running)
          throw new GiveUp(`the agent exited (${agent.child.exitCode ?? agent.child.signalCode})`);
        return rig.cloud.samples.length >= 3;
      },
      {
        what: '3 samples at the cloud subscriber',
        timeout: AGENT_START_MS,
      },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${agent.output().slice(-3000)}`);
    });
    t.same(rig.cloud.rejected, [], 'every batch decoded and its signature verified');
    t.ok(
      rig.cloud.samples.every((s) => s.meter === 'main' && s.values.energy_import_kwh !== undefined),
      'SDM630 samples',
    );
    await agent.kill('SIGTERM');
    t.equal(agent.child.exitCode, 0, agent.output().slice(-2000));
    const files = JSON.parse(await readFile(loaded, 'utf8')) as string[];
    t.ok(
      files.some((f) => f.includes('/aws-crt/dist/native/mqtt5.js')),
      "aws-crt's MQTT 5 client loaded",
    );
    t.same(
      files.filter((f) => /aws-iot-device-sdk-v2|@aws-sdk|@smithy/.test(f)),
      [],
      'no aws-iot-device-sdk-v2 index, no AWS SDK on the run path',
    );
    t.same(
      files.filter((f) => !f.includes('/node_modules/')),
      [],
      'nothing of ours loads as separate files: it is all in the bundle',
    );
  },
);

await endAfterMqtt(t);
