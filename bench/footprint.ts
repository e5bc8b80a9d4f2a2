/**
 * bench:footprint — the agent's memory and CPU on a box: `meterlink run` (compiled JS, as installed) polling
 * 3 simulated meters at 1 Hz (two Modbus RTU meters sharing one RS-485 bus over a socat pty, one Modbus TCP
 * meter) and publishing to Mosquitto with mutual TLS, for `--minutes` (default 10). Samples RSS and CPU time
 * of the agent process from /proc every 5 s and reports steady and peak RSS, CPU % of one core, and the RSS
 * slope over the second half (a leak shows as a steady climb). Baseline in the same run: a bare Node process
 * idling (what any Node daemon costs before doing anything).
 *
 *   npm run bench:footprint -- --minutes 10
 *
 * `--backlog N` first fills the agent's buffer with N samples (1 Hz SDM630 readings, as after N seconds offline)
 * and reports how long the agent takes to drain them and its peak RSS meanwhile — the memory a box needs to
 * come back from a long outage.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { startMosquittoBroker } from '../agent/demo/mosquitto.js';
import { startSocatPty } from '../agent/demo/pty.js';
import { openLevelBuffer } from '../buffer/index.js';
import { eastronSdm630 } from '../drivers/profiles/eastron-sdm630.js';
import { startModbusSimulator } from '../drivers/index.js';
import { readings } from './lib/week.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const minutes = arg('minutes', 10);
const sampleEveryMs = arg('every', 5) * 1000;
const backlog = arg('backlog', 0);
const TICK = 100; // USER_HZ on Linux

interface ProcSample {
  t: number;
  rssKiB: number;
  cpuTicks: number;
}

async function procSample(pid: number): Promise<ProcSample> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  // Fields after "comm)": state is [0]; utime is field 14 overall → index 11 here, stime index 12.
  const cpuTicks = Number(stat[11]) + Number(stat[12]);
  return { t: Date.now(), rssKiB, cpuTicks };
}

function slopeKiBPerHour(samples: ProcSample[]): number {
  const n = samples.length;
  if (n < 2) return 0;
  const t0 = samples[0]!.t;
  const xs = samples.map((s) => (s.t - t0) / 3_600_000);
  const ys = samples.map((s) => s.rssKiB);
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

function summarise(samples: ProcSample[], durationMs: number) {
  const half = samples.slice(Math.floor(samples.length / 2));
  const cpu = samples.length > 1 ? (samples.at(-1)!.cpuTicks - samples[0]!.cpuTicks) / TICK : 0;
  const elapsed = samples.length > 1 ? (samples.at(-1)!.t - samples[0]!.t) / 1000 : durationMs / 1000;
  return {
    steadyRssMiB: +(half.reduce((a, s) => a + s.rssKiB, 0) / Math.max(1, half.length) / 1024).toFixed(1),
    peakRssMiB: +(Math.max(...samples.map((s) => s.rssKiB)) / 1024).toFixed(1),
    cpuPercent: +((100 * cpu) / Math.max(1, elapsed)).toFixed(2),
    rssSlopeMiBPerHour: +(slopeKiBPerHour(half) / 1024).toFixed(2),
  };
}

async function watch(child: ChildProcess, ms: number, onSample?: () => Promise<void>): Promise<ProcSample[]> {
  const out: ProcSample[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end && child.exitCode === null) {
    out.push(await procSample(child.pid as number));
    await onSample?.();
    await delay(Math.min(sampleEveryMs, Math.max(0, end - Date.now())));
  }
  return out;
}

async function main() {
  const bin = join(root, 'dist/agent/bin.js');
  if (!existsSync(bin)) {
    console.error('dist/ is missing: run `npm run build` first (the benchmark measures the compiled agent).');
    process.exit(2);
  }
  const dir = await mkdtemp(join(tmpdir(), 'meterlink-footprint-'));
  const cleanups: (() => Promise<unknown>)[] = [() => rm(dir, { recursive: true, force: true })];
  try {
    const broker = await startMosquittoBroker({ dir });
    cleanups.push(() => broker.kill());
    const dev = await broker.deviceCert('footprint-box');
    const pty = await startSocatPty({ dir });
    cleanups.push(() => pty.stop());
    const rtu = await startModbusSimulator({
      transport: { kind: 'rtu', path: pty.a, baud: 9600 },
      units: [
        { unit: 1, profile: 'eastron-sdm630' },
        { unit: 2, profile: 'eastron-sdm120' },
      ],
    });
    cleanups.push(() => rtu.stop());
    const tcp = await startModbusSimulator({
      transport: { kind: 'tcp', port: 0 },
      units: [{ unit: 1, profile: 'carlo-gavazzi-em340' }],
    });
    cleanups.push(() => tcp.stop());
    const sync = join(dir, 'synchronized');
    await writeFile(sync, '');
    const config = join(dir, 'config.yaml');
    await writeFile(
      config,
      `thing: footprint-box
meters:
  - { id: main, driver: modbus-rtu, port: ${pty.b}, unit: 1, profile: eastron-sdm630, interval: 1s }
  - { id: flat, driver: modbus-rtu, port: ${pty.b}, unit: 2, profile: eastron-sdm120, interval: 1s }
  - { id: pv, driver: modbus-tcp, host: 127.0.0.1, port: ${tcp.port}, profile: carlo-gavazzi-em340, interval: 1s }
cloud: { endpoint: 127.0.0.1, port: ${broker.port}, ca: ${broker.caFile}, cert: ${dev.cert}, key: ${dev.key} }
buffer: { path: ${join(dir, 'buffer')} }
batch: { maxDelay: 10s }
time: { syncFile: ${sync} }
status: { file: ${join(dir, 'status.json')} }
log: { level: warn }
`,
    );

    let fillMs = 0;
    if (backlog > 0) {
      const t0 = Date.now();
      const buf = await openLevelBuffer({ path: join(dir, 'buffer'), maxSize: Infinity });
      let chunk = [];
      for (const s of readings(eastronSdm630, backlog, Date.now() - backlog * 1000, 'main')) {
        chunk.push(s);
        if (chunk.length === 1000) {
          await buf.append(chunk);
          chunk = [];
        }
      }
      if (chunk.length > 0) await buf.append(chunk);
      await buf.close();
      fillMs = Date.now() - t0;
      console.log(`backlog: ${backlog} samples written to the buffer in ${(fillMs / 1000).toFixed(1)} s`);
    }
    const durationMs = minutes * 60_000;
    console.log(
      `footprint: 3 meters at 1 Hz, publishing to Mosquitto (mTLS), ${minutes} min; sampling every ${sampleEveryMs / 1000} s`,
    );

    const baseline = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    cleanups.push(async () => baseline.kill('SIGKILL'));
    const agent = spawn(process.execPath, [bin, 'run', '--config', config], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    cleanups.push(async () => agent.kill('SIGKILL'));
    const agentStarted = Date.now();
    let drainedAfterMs: number | undefined;
    const statusFile = join(dir, 'status.json');
    const checkDrain = async () => {
      if (backlog === 0 || drainedAfterMs !== undefined) return;
      const st = JSON.parse(await readFile(statusFile, 'utf8').catch(() => '{}')) as {
        buffer?: { depth: number };
      };
      if (st.buffer && st.buffer.depth < 100) drainedAfterMs = Date.now() - agentStarted;
    };
    // Warm-up before the first sample (start-up is not steady state) — except when draining, which starts at once.
    if (backlog === 0) await delay(5_000);
    const [a, b] = await Promise.all([
      watch(agent, durationMs, checkDrain),
      watch(baseline, Math.min(durationMs, 60_000)),
    ]);
    const status = JSON.parse(await readFile(join(dir, 'status.json'), 'utf8')) as {
      publisher: { samplesAcked: number; batchesAcked: number };
      meters: { id: string; polls: number; failures: number }[];
    };
    const agentFig = summarise(a, durationMs);
    const baseFig = summarise(b, Math.min(durationMs, 60_000));
    agent.kill('SIGTERM');

    const rows = [
      ['', 'meterlink run', 'idle node (baseline)'],
      ['steady RSS (MiB, 2nd half avg)', agentFig.steadyRssMiB, baseFig.steadyRssMiB],
      ['peak RSS (MiB)', agentFig.peakRssMiB, baseFig.peakRssMiB],
      ['CPU (% of one core)', agentFig.cpuPercent, baseFig.cpuPercent],
      ['RSS slope, 2nd half (MiB/h)', agentFig.rssSlopeMiBPerHour, baseFig.rssSlopeMiBPerHour],
    ];
    for (const r of rows)
      console.log(`${String(r[0]).padEnd(32)} ${String(r[1]).padStart(14)} ${String(r[2]).padStart(22)}`);
    console.log(
      `published ${status.publisher.samplesAcked} samples in ${status.publisher.batchesAcked} batches; polls: ${status.meters.map((m) => `${m.id} ${m.polls} (${m.failures} failed)`).join(', ')}`,
    );
    if (backlog > 0)
      console.log(
        `backlog of ${backlog} samples drained in ${drainedAfterMs === undefined ? 'MORE than the run' : `${(drainedAfterMs / 1000).toFixed(1)} s`} (from agent start); peak RSS ${agentFig.peakRssMiB} MiB`,
      );
    console.log(
      'RESULT ' +
        JSON.stringify({
          bench: 'footprint',
          minutes,
          meters: 3,
          agent: agentFig,
          baselineIdleNode: baseFig,
          samplesPublished: status.publisher.samplesAcked,
          batches: status.publisher.batchesAcked,
          samplesPerMinute: +(status.publisher.samplesAcked / minutes).toFixed(1),
          ...(backlog > 0
            ? { backlog, backlogFillMs: fillMs, backlogDrainedMs: drainedAfterMs ?? null }
            : {}),
        }),
    );
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  }
}

await main();
process.exit(0);
