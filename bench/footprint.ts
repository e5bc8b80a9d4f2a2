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
 *
 * `--node-options "..."` replaces only NODE_OPTIONS of the unit's settings (V8 flags measured before the unit
 * takes them).
 *
 * `--env NAME=VALUE` (repeatable) adds to the agent's environment (e.g. a malloc tunable measured before the
 * unit takes it).
 *
 * The agent runs as /usr/bin/meterlink runs it on the box (systemd/install.sh): with the unit's environment and
 * its METERLINK_NODE_FLAGS and, for `run`, METERLINK_RUN_NODE_FLAGS on node's command line (V8 flags
 * NODE_OPTIONS refuses, e.g. `--optimize-for-size`, `--max-opt=1`). `--node-flags "..."` replaces both
 * (`--node-flags ""`: none; `--lite-mode`, `--no-opt`, `--cpu-prof --cpu-prof-dir=DIR`: the agent is stopped
 * with SIGTERM and waited for, so a profile is written).
 *
 * `--bin FILE` measures another build of the CLI than the installed bundle (dist/bundle/meterlink.js), e.g.
 * tsc's per-module output `dist/agent/bin.js`, to compare the two in the same conditions.
 *
 * `--dashboard` turns the local web dashboard on: its history seeded with a week per meter (a full
 * 48 h minute ring), one page open the whole run (the SSE stream, /api/history every 30 s as the page does).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { startMosquittoBroker } from '../agent/demo/mosquitto.js';
import { startSocatPty } from '../agent/demo/pty.js';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { seedDemoHistory } from '../agent/dashboard/seed.js';
import { startModbusSimulator } from '../drivers/index.js';
import { fillBacklog } from './lib/backlog.js';
import { installedCli } from './lib/installed.js';
import { flagWords, procSample, unitMemorySettings, type ProcSample } from './lib/proc.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const minutes = arg('minutes', 10);
const sampleEveryMs = arg('every', 5) * 1000;
const backlog = arg('backlog', 0);
/**
 * Loaded into the agent with --import: samples process.memoryUsage() every 250 ms and writes the latest and the
 * peak of each field to a file (temp file + rename, so the bench never reads half a file), so the bench can
 * split RSS into V8 heap, external/ArrayBuffers and the rest (native: LevelDB, aws-crt, OpenSSL, code). It only
 * reads counters; the agent itself is unchanged. It writes when a peak rose, else every 5 s: a write every
 * 250 ms was 16 % of the agent's CPU time in steady state (a --cpu-prof profile), counted as the agent's.
 */
const MEM_PROBE =
  'data:text/javascript,' +
  encodeURIComponent(
    `import{writeFileSync,renameSync}from'node:fs';const f=process.env.METERLINK_MEM_PROBE;const peak={};` +
      `let last=0;setInterval(()=>{const m=process.memoryUsage();let rose=false;` +
      `for(const k in m)if(m[k]>(peak[k]??0)){peak[k]=m[k];rose=true}` +
      `if(!rose&&Date.now()-last<5000)return;last=Date.now();` +
      `try{writeFileSync(f+'.tmp',JSON.stringify({now:m,peak}));renameSync(f+'.tmp',f)}catch{}},250).unref();`,
  );
interface MemProbe {
  now: NodeJS.MemoryUsage;
  peak: NodeJS.MemoryUsage;
}
const mib = (b: number) => +(b / 1048576).toFixed(1);
const TICK = 100; // USER_HZ on Linux
/** `--no-unit-env`: run the agent without the unit's memory settings (to measure what they buy). */
const unitEnv = !process.argv.includes('--no-unit-env');
/** `--node-options "..."`: replaces only the unit's NODE_OPTIONS (to measure V8 settings before the unit takes them). */
const argText = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const nodeOptionsArg = argText('node-options');
const dashboard = process.argv.includes('--dashboard');
/** `--env NAME=VALUE` (repeatable): more environment for the agent (a setting measured before the unit takes it). */
const extraEnv: Record<string, string> = {};
process.argv.forEach((a, i) => {
  if (a !== '--env') return;
  const kv = process.argv[i + 1] ?? '';
  const eq = kv.indexOf('=');
  if (eq < 1) {
    console.error(`--env ${kv}: expected NAME=VALUE`);
    process.exit(2);
  }
  extraEnv[kv.slice(0, eq)] = kv.slice(eq + 1);
});
/** `--bin FILE`: another build of the CLI to measure (e.g. tsc's per-module `dist/agent/bin.js`, against the bundle). */
const binArg = argText('bin');
/** `--node-flags "..."`: replaces the unit's METERLINK_(RUN_)NODE_FLAGS, node's flags before the agent's script. */
const nodeFlagsArgText = argText('node-flags');
const nodeFlagsArg = nodeFlagsArgText === undefined ? undefined : flagWords(nodeFlagsArgText);

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
    // RSS = anon (owned: heap, malloc, stacks) + file (mapped file pages: code, LevelDB tables; reclaimable).
    steadyAnonMiB: +(half.reduce((a, s) => a + s.anonKiB, 0) / Math.max(1, half.length) / 1024).toFixed(1),
    peakAnonMiB: +(Math.max(...samples.map((s) => s.anonKiB)) / 1024).toFixed(1),
    peakFileMiB: +(Math.max(...samples.map((s) => s.fileKiB)) / 1024).toFixed(1),
    cpuPercent: +((100 * cpu) / Math.max(1, elapsed)).toFixed(2),
    rssSlopeMiBPerHour: +(slopeKiBPerHour(half) / 1024).toFixed(2),
  };
}

async function watch(child: ChildProcess, ms: number, onSample?: () => Promise<void>): Promise<ProcSample[]> {
  const out: ProcSample[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end && child.exitCode === null) {
    // The process may have gone between the check and the read (killed by the watchdog or the OOM killer).
    const s = await procSample(child.pid as number).catch(() => undefined);
    if (s === undefined) break;
    out.push(s);
    await onSample?.();
    await delay(Math.min(sampleEveryMs, Math.max(0, end - Date.now())));
  }
  return out;
}

async function main() {
  const bin = binArg ? join(root, binArg) : installedCli();
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
    const dashPort = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    if (dashboard)
      for (const [i, meter] of ['main', 'flat', 'pv'].entries())
        await seedDemoHistory({
          path: join(dir, 'history'),
          meter,
          liveSeed: i + 1,
          phases: 3,
          end: Date.now(),
        });
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
${dashboard ? `dashboard: { listen: 127.0.0.1:${dashPort} }\n` : ''}`,
    );

    let fillMs = 0;
    if (backlog > 0) {
      const t0 = Date.now();
      await fillBacklog(join(dir, 'buffer'), backlog);
      fillMs = Date.now() - t0;
      console.log(`backlog: ${backlog} samples written to the buffer in ${(fillMs / 1000).toFixed(1)} s`);
    }
    const durationMs = minutes * 60_000;
    console.log(
      `footprint: 3 meters at 1 Hz, publishing to Mosquitto (mTLS), ${minutes} min; sampling every ${sampleEveryMs / 1000} s`,
    );

    const baseline = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    cleanups.push(async () => baseline.kill('SIGKILL'));
    const probeFile = join(dir, 'mem-probe.json');
    const unit = await unitMemorySettings(join(root, 'systemd/meterlink.service'));
    const agentEnv: Record<string, string> = unitEnv ? { ...unit.env } : {};
    if (nodeOptionsArg !== undefined) agentEnv.NODE_OPTIONS = nodeOptionsArg;
    Object.assign(agentEnv, extraEnv);
    const nodeFlags = nodeFlagsArg ?? (unitEnv ? unit.nodeFlagsFor('run') : []);
    console.log(
      `agent environment from systemd/meterlink.service: ${unitEnv ? JSON.stringify(agentEnv) : 'not applied (--no-unit-env)'}; node flags: ${nodeFlags.join(' ') || '-'}; MemoryMax=${unit.memoryMax ?? '-'} MemoryHigh=${unit.memoryHigh ?? '-'}`,
    );
    const agent = spawn(
      process.execPath,
      [...nodeFlags, '--import', MEM_PROBE, bin, 'run', '--config', config],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: {
          ...process.env,
          ...agentEnv,
          NODE_OPTIONS: agentEnv.NODE_OPTIONS ?? process.env.NODE_OPTIONS ?? '',
          METERLINK_MEM_PROBE: probeFile,
        },
      },
    );
    cleanups.push(async () => agent.kill('SIGKILL'));
    // The unit's MemoryMax= as a hard limit: in a memory cgroup when one can be made here (the kernel then
    // OOM-kills the agent exactly as systemd's would), and always a watchdog polling /proc every 100 ms that
    // SIGKILLs the agent and fails the run when its anonymous RSS crosses the limit. Anonymous, as the kernel
    // decides: under MemoryMax= it first reclaims file pages (LevelDB's mmapped tables, the node binary), which
    // are clean and re-readable, and kills only when the memory the process owns does not fit.
    const limit = unitEnv ? unit.memoryMax : undefined;
    const cgroup = limit ? await joinMemoryCgroup(agent.pid as number, limit) : undefined;
    if (cgroup) cleanups.push(() => cgroup.remove());
    let limitCrossedKiB: number | undefined;
    const watchdog = limit
      ? setInterval(() => {
          void procSample(agent.pid as number)
            .then((p) => {
              if (p.anonKiB * 1024 > limit && limitCrossedKiB === undefined) {
                limitCrossedKiB = p.anonKiB;
                agent.kill('SIGKILL');
                console.log(
                  `LIMIT CROSSED: anon RSS ${mib(p.anonKiB * 1024)} MiB (+ file-backed ${mib(p.fileKiB * 1024)}) > ${mib(limit)} MiB; agent killed`,
                );
              }
            })
            .catch(() => {});
        }, 100)
      : undefined;
    cleanups.push(async () => clearInterval(watchdog));
    if (limit)
      console.log(
        `hard limit ${mib(limit)} MiB (MemoryMax=): anon-RSS watchdog every 100 ms${cgroup ? `, and memory cgroup ${cgroup.path}` : ' (no memory cgroup can be made here)'}`,
      );
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
    // The agent rewrites its status file every 2 s: look every 250 ms, so the drain time is known to ~2 s (with
    // the 5-s RSS samples alone it was known to 5 s).
    const drainTimer = backlog > 0 ? setInterval(() => void checkDrain().catch(() => {}), 250) : undefined;
    cleanups.push(async () => clearInterval(drainTimer));
    // Warm-up before the first sample (start-up is not steady state) — except when draining, which starts at once.
    if (backlog === 0) await delay(5_000);
    if (dashboard) {
      const url = `http://127.0.0.1:${dashPort}`;
      get(`${url}/api/stream`, (res) => res.resume()).on('error', () => {});
      const history = () => get(`${url}/api/history`, (res) => res.resume()).on('error', () => {});
      history();
      const t = setInterval(history, 30_000);
      cleanups.push(async () => clearInterval(t));
      console.log(
        `dashboard on ${url}: history seeded (a week per meter), one page open (SSE + history every 30 s)`,
      );
    }
    const [a, b] = await Promise.all([
      watch(agent, durationMs, checkDrain),
      watch(baseline, Math.min(durationMs, 60_000)),
    ]);
    // No status file: the agent died before writing one (killed at the limit, or crashed: its stderr is above).
    const status = JSON.parse(
      await readFile(join(dir, 'status.json'), 'utf8').catch(
        () => '{"publisher":{"samplesAcked":0,"batchesAcked":0},"meters":[]}',
      ),
    ) as {
      publisher: { samplesAcked: number; batchesAcked: number };
      meters: { id: string; polls: number; failures: number }[];
    };
    const probe = JSON.parse(await readFile(probeFile, 'utf8').catch(() => 'null')) as MemProbe | null;
    const split = (m: NodeJS.MemoryUsage) => ({
      rss: mib(m.rss),
      heapTotal: mib(m.heapTotal),
      heapUsed: mib(m.heapUsed),
      external: mib(m.external),
      arrayBuffers: mib(m.arrayBuffers),
    });
    const memory = probe ? { peak: split(probe.peak), end: split(probe.now) } : null;
    const agentFig = summarise(a, durationMs);
    const cg = cgroup ? await cgroup.usage() : undefined;
    const killed = agent.exitCode !== null || agent.signalCode !== null;
    const baseFig = summarise(b, Math.min(durationMs, 60_000));
    // Stop it as systemd would and let it finish (a `--node-flags --cpu-prof` profile is written at exit).
    if (!killed) {
      const exited = new Promise((res) => agent.once('exit', res));
      agent.kill('SIGTERM');
      await Promise.race([exited, delay(10_000, undefined, { ref: false })]);
    }

    const rows = [
      ['', 'meterlink run', 'idle node (baseline)'],
      ['steady RSS (MiB, 2nd half avg)', agentFig.steadyRssMiB, baseFig.steadyRssMiB],
      ['peak RSS (MiB)', agentFig.peakRssMiB, baseFig.peakRssMiB],
      ['  of it anon, peak (MiB)', agentFig.peakAnonMiB, baseFig.peakAnonMiB],
      ['  of it file-backed, peak (MiB)', agentFig.peakFileMiB, baseFig.peakFileMiB],
      ['steady anon RSS (MiB)', agentFig.steadyAnonMiB, baseFig.steadyAnonMiB],
      ['CPU (% of one core)', agentFig.cpuPercent, baseFig.cpuPercent],
      ['RSS slope, 2nd half (MiB/h)', agentFig.rssSlopeMiBPerHour, baseFig.rssSlopeMiBPerHour],
    ];
    for (const r of rows)
      console.log(`${String(r[0]).padEnd(32)} ${String(r[1]).padStart(14)} ${String(r[2]).padStart(22)}`);
    console.log(
      `published ${status.publisher.samplesAcked} samples in ${status.publisher.batchesAcked} batches; polls: ${status.meters.map((m) => `${m.id} ${m.polls} (${m.failures} failed)`).join(', ')}`,
    );
    if (memory)
      console.log(
        `agent memory split (MiB; peaks are per field): peak rss ${memory.peak.rss} = heap ${memory.peak.heapTotal} (used ${memory.peak.heapUsed}) + external ${memory.peak.external} (ArrayBuffers ${memory.peak.arrayBuffers}) + native/code; at end rss ${memory.end.rss}, heap ${memory.end.heapTotal}, external ${memory.end.external}`,
      );
    if (backlog > 0)
      console.log(
        `backlog of ${backlog} samples drained in ${drainedAfterMs === undefined ? 'MORE than the run' : `${(drainedAfterMs / 1000).toFixed(1)} s`} (from agent start); peak RSS ${agentFig.peakRssMiB} MiB`,
      );
    if (limit)
      console.log(
        `hard limit ${mib(limit)} MiB: ${limitCrossedKiB !== undefined ? `CROSSED (anon RSS ${mib(limitCrossedKiB * 1024)} MiB), agent killed` : killed ? `agent died during the run (exit ${agent.exitCode ?? agent.signalCode})` : 'never crossed'}${cg ? `; cgroup peak ${mib(cg.peak)} MiB, OOM kills ${cg.oomKills}` : ''}`,
      );
    const failed = killed || (cg?.oomKills ?? 0) > 0 || (backlog > 0 && drainedAfterMs === undefined);
    console.log(
      'RESULT ' +
        JSON.stringify({
          bench: 'footprint',
          minutes,
          dashboard,
          meters: 3,
          agent: agentFig,
          baselineIdleNode: baseFig,
          memory,
          unitEnv: unitEnv ? agentEnv : null,
          nodeFlags,
          limitMiB: limit ? mib(limit) : null,
          limitCrossed: limitCrossedKiB !== undefined,
          cgroup: cg ? { peakMiB: mib(cg.peak), oomKills: cg.oomKills } : null,
          ok: !failed,
          samplesPublished: status.publisher.samplesAcked,
          batches: status.publisher.batchesAcked,
          samplesPerMinute: +(status.publisher.samplesAcked / minutes).toFixed(1),
          ...(backlog > 0
            ? { backlog, backlogFillMs: fillMs, backlogDrainedMs: drainedAfterMs ?? null }
            : {}),
        }),
    );
    if (failed) process.exitCode = 1;
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  }
}

/**
 * Moves `pid` into a new memory cgroup below this process's own, limited to `limit` bytes (cgroup v2
 * `memory.max`, or v1 `memory.limit_in_bytes` with swap off). Undefined when that is not possible here.
 */
async function joinMemoryCgroup(pid: number, limit: number) {
  const own = await readFile('/proc/self/cgroup', 'utf8').catch(() => '');
  const v1 = /^\d+:memory:(.*)$/m.exec(own)?.[1];
  const v2 = /^0::(.*)$/m.exec(own)?.[1];
  const base =
    v1 !== undefined ? `/sys/fs/cgroup/memory${v1}` : v2 !== undefined ? `/sys/fs/cgroup${v2}` : '';
  if (!base) return undefined;
  const path = join(base, `meterlink-footprint-${process.pid}`);
  const { mkdir, rmdir } = await import('node:fs/promises');
  try {
    await mkdir(path);
    if (v1 !== undefined) {
      await writeFile(join(path, 'memory.limit_in_bytes'), String(limit));
      await writeFile(join(path, 'memory.memsw.limit_in_bytes'), String(limit)).catch(() => {});
    } else await writeFile(join(path, 'memory.max'), String(limit));
    await writeFile(join(path, 'cgroup.procs'), String(pid));
  } catch {
    await rmdir(path).catch(() => {});
    return undefined;
  }
  return {
    path,
    async usage() {
      const read = (f: string) => readFile(join(path, f), 'utf8').catch(() => '');
      if (v1 !== undefined)
        return {
          peak: Number(await read('memory.max_usage_in_bytes')) || 0,
          oomKills: Number(/oom_kill (\d+)/.exec(await read('memory.oom_control'))?.[1] ?? 0),
        };
      return {
        peak: Number(await read('memory.peak')) || 0,
        oomKills: Number(/oom_kill (\d+)/.exec(await read('memory.events'))?.[1] ?? 0),
      };
    },
    // Only an empty cgroup can be removed: kill the agent (if still there) and wait for it to leave.
    async remove() {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone (killed by the watchdog or the OOM killer).
      }
      for (let i = 0; i < 50; i++) {
        if (
          await rmdir(path).then(
            () => true,
            () => false,
          )
        )
          return;
        await delay(100);
      }
    },
  };
}

await main();
process.exit(process.exitCode ?? 0);
