/**
 * bench:export — `meterlink buffer export` (compiled, as installed) of a large backlog: peak RSS and time of
 * the command streaming N samples (default 1,000,000 SDM630 readings at 1 Hz, ~11.5 days) as JSON lines
 * into a pipe that the bench reads and discards (as `meterlink buffer export | gzip` would). RSS is read from
 * /proc every 100 ms. Baseline in the same run: a bare Node process idling.
 *
 *   npm run bench:export -- --samples 1000000
 *
 * The command runs with the memory settings of systemd/meterlink.service, as the installed /usr/bin/meterlink
 * wrapper gives them (`--no-unit-env`: without): the unit's environment and its METERLINK_NODE_FLAGS on node's
 * command line (not METERLINK_RUN_NODE_FLAGS: those are the daemon's). `--node-options "..."` replaces only
 * NODE_OPTIONS, `--node-flags "..."` only those flags.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { fillBacklog } from './lib/backlog.js';
import { installedCli } from './lib/installed.js';
import { flagWords, mib, procSample, unitMemorySettings, type ProcSample } from './lib/proc.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const argv = process.argv;
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i > 0 ? argv[i + 1] : undefined;
};
const samples = Number(opt('samples') ?? 1_000_000);
async function main() {
  const bin = installedCli();
  const dir = await mkdtemp(join(tmpdir(), 'meterlink-export-'));
  try {
    const path = join(dir, 'buffer');
    const t0 = Date.now();
    await fillBacklog(path, samples);
    console.log(
      `export: ${samples} samples written to the buffer in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );

    const baseline = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    // As installed, /usr/bin/meterlink runs every command with the unit's memory settings (systemd/install.sh).
    const unit = argv.includes('--no-unit-env')
      ? { env: {} as Record<string, string>, nodeFlagsFor: () => [] as string[] }
      : await unitMemorySettings(join(root, 'systemd/meterlink.service'));
    const nodeOptions = opt('node-options') ?? unit.env.NODE_OPTIONS;
    const flagsArg = opt('node-flags');
    const nodeFlags = flagsArg === undefined ? unit.nodeFlagsFor('buffer') : flagWords(flagsArg);
    const started = Date.now();
    const cli = spawn(process.execPath, [...nodeFlags, bin, 'buffer', 'export', '--path', path], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...unit.env, NODE_OPTIONS: nodeOptions ?? '' },
    });
    let bytes = 0;
    let lines = 0;
    cli.stdout.on('data', (b: Buffer) => {
      bytes += b.length;
      for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) lines++;
    });
    const exited = new Promise<number | null>((resolve) => cli.once('exit', (code) => resolve(code)));
    const peak = { rssKiB: 0, anonKiB: 0, fileKiB: 0 };
    let done = false;
    void exited.then(() => (done = true));
    while (!done) {
      const p: ProcSample | undefined = await procSample(cli.pid as number).catch(() => undefined);
      if (p) for (const k of ['rssKiB', 'anonKiB', 'fileKiB'] as const) peak[k] = Math.max(peak[k], p[k]);
      await delay(100);
    }
    const code = await exited;
    const seconds = (Date.now() - started) / 1000;
    const basePeak = (await procSample(baseline.pid as number).catch(() => undefined))?.rssKiB ?? 0;
    baseline.kill('SIGKILL');
    console.log(
      `meterlink buffer export: ${lines} lines, ${(bytes / 1024 ** 2).toFixed(0)} MiB of JSON in ${seconds.toFixed(1)} s; peak RSS ${mib(peak.rssKiB)} MiB = anon ${mib(peak.anonKiB)} + file-backed ${mib(peak.fileKiB)} (peaks per part; idle node: ${mib(basePeak)} MiB)${nodeOptions ? `, NODE_OPTIONS=${nodeOptions}` : ''}${nodeFlags.length ? `, node flags ${nodeFlags.join(' ')}` : ''}`,
    );
    const ok = code === 0 && lines === samples;
    console.log(
      'RESULT ' +
        JSON.stringify({
          bench: 'export',
          samples,
          lines,
          jsonMiB: +(bytes / 1024 ** 2).toFixed(0),
          seconds: +seconds.toFixed(1),
          peakRssMiB: mib(peak.rssKiB),
          peakAnonMiB: mib(peak.anonKiB),
          peakFileMiB: mib(peak.fileKiB),
          baselineIdleNodeRssMiB: mib(basePeak),
          nodeOptions: nodeOptions ?? null,
          nodeFlags,
          ok,
        }),
    );
    if (!ok) process.exitCode = 1;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
