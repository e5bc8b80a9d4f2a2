/**
 * `meterlink demo`: the whole pipeline on this machine, no hardware, no AWS. Everything on loopback, in one
 * directory that is removed on exit (unless the user named it):
 *   throwaway CA, server, device and consumer certificates → Mosquitto with mTLS + MQTT 5 →
 *   simulated meters (SDM630 over a socat pty, else Modbus TCP; a DSMR 5 P1 meter over a second pty) →
 *   the real agent (`startAgent`: LevelDB buffer, signed batches) → a consumer that verifies every batch.
 */
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pino from 'pino';
import { startDsmrEmitter, startModbusSimulator } from '../../drivers/index.js';
import { parseConfig } from '../config/index.js';
import { seedDemoHistory } from '../dashboard/seed.js';
import { startAgent, type RunningAgent } from '../daemon/agent.js';
import { startConsumer, type Consumer } from './consumer.js';
import { DemoError } from './errors.js';
import { startMosquittoBroker } from './mosquitto.js';
import { findProgram, waitUntil } from './process.js';
import { startSocatPty } from './pty.js';
import type { DemoMeter, DemoSnapshot } from './view.js';

export const DEMO_THING = 'demo-meterbox';
export const installMosquittoHint =
  'install it: sudo apt-get install mosquitto (or run scripts/setup-debian.sh)';

export interface DemoOptions {
  /** Stop after the pipeline has run this long (ms); default: until `signal` aborts. */
  durationMs?: number;
  /** Work in this directory and keep it; default: a temp dir removed on exit. */
  dir?: string;
  /** Aborting it stops the demo (Ctrl-C), also while it is still starting. */
  signal?: AbortSignal;
  /** Called about once a second with the current figures (the view draws them). */
  onTick?: (s: DemoSnapshot) => void;
  /** One line per step while starting and stopping. */
  onStep?: (text: string) => void;
  /** Where to look for mosquitto and socat (PATH, `METERLINK_DEMO_MOSQUITTO`, `METERLINK_DEMO_SOCAT`). */
  env?: NodeJS.ProcessEnv;
  /** Tick period (default 1 s). */
  tickMs?: number;
  /**
   * The simulated apartment's clock at start, ms since the epoch (default: now). Its time of day decides
   * the load and the solar export, so a test or a user can pick noon or midnight instead of the real hour.
   */
  simStart?: number;
  /**
   * The local web dashboard's address (default 127.0.0.1:8080, or a free port when 8080 is taken);
   * `false` turns it off. Its history starts with `seedDays` of the simulated apartment (default 7).
   */
  dashboard?: string | false;
  seedDays?: number;
}

export interface DemoSummary {
  /** How long the pipeline ran (from the agent's start to the stop). */
  elapsedMs: number;
  batches: number;
  verified: number;
  rejected: number;
  samples: number;
  bytes: number;
  billableUnits: number;
  dir: string;
  dirRemoved: boolean;
  /** Whether the meters ran over ptys (socat present) rather than Modbus TCP. */
  serial: boolean;
  /** Stopped by the signal (Ctrl-C) rather than by the duration. */
  interrupted: boolean;
}

/** Program paths: mosquitto is required, socat optional. `METERLINK_DEMO_MOSQUITTO`/`_SOCAT` name others. */
export async function findDemoPrograms(
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ mosquitto: string; socat: string | undefined }> {
  const mosquitto = await findProgram(env.METERLINK_DEMO_MOSQUITTO ?? 'mosquitto', env);
  if (!mosquitto)
    throw new DemoError(
      'PROGRAM_MISSING',
      `mosquitto (the MQTT broker the demo runs) is not installed; ${installMosquittoHint}`,
      { context: { program: 'mosquitto' } },
    );
  const socat = await findProgram(env.METERLINK_DEMO_SOCAT ?? 'socat', env);
  return { mosquitto, socat };
}

class Aborted extends Error {}

export async function runDemo(opts: DemoOptions = {}): Promise<DemoSummary> {
  const step = opts.onStep ?? (() => {});
  const programs = await findDemoPrograms(opts.env);
  const keepDir = opts.dir !== undefined;
  const dir = keepDir ? resolve(opts.dir as string) : await mkdtemp(join(tmpdir(), 'meterlink-demo-'));
  if (keepDir) await mkdir(dir, { recursive: true });

  // Everything started is stopped in reverse order, whatever happens.
  const cleanups: { what: string; fn: () => Promise<unknown> }[] = [];
  const onCleanup = (what: string, fn: () => Promise<unknown>) => cleanups.push({ what, fn });
  const checkAborted = () => {
    if (opts.signal?.aborted) throw new Aborted();
  };

  let agent: RunningAgent | undefined;
  let consumer: Consumer | undefined;
  let serial = false;
  let interrupted = false;
  let runningSince: number | undefined;
  let stoppedAt: number | undefined;
  let failure: unknown;
  try {
    step(`files in ${dir}${keepDir ? ' (kept)' : ' (removed on exit)'}`);

    const broker = await startMosquittoBroker({
      dir: await mkdirp(join(dir, 'broker')),
      bin: programs.mosquitto,
      caName: 'meterlink demo CA',
    });
    onCleanup('broker', () => broker.kill());
    // A year, not the default month: the agent warns about certificates that expire within 30 days.
    const device = await broker.deviceCert(DEMO_THING, { notAfter: new Date(Date.now() + 365 * 86_400_000) });
    const cloudCreds = await broker.deviceCert('demo-cloud');
    step(`broker: Mosquitto with mutual TLS and MQTT 5 on 127.0.0.1:${broker.port} (throwaway CA)`);
    checkAborted();

    // ---- simulated meters, on the apartment's clock (real time, shifted to `simStart` when given)
    const simShift = opts.simStart === undefined ? 0 : opts.simStart - Date.now();
    const simNow = () => Date.now() + simShift;
    const meters: DemoMeter[] = [];
    const meterYaml: string[] = [];
    if (programs.socat) {
      serial = true;
      const bus = await startSocatPty({ dir, name: 'rs485-', bin: programs.socat });
      onCleanup('RS-485 pty', () => bus.stop());
      const sim = await startModbusSimulator({
        transport: { kind: 'rtu', path: bus.a, baud: 9600 },
        units: [{ unit: 1, profile: 'eastron-sdm630' }],
        now: simNow,
      });
      onCleanup('SDM630 simulator', () => sim.stop());
      meters.push({ id: 'main', what: 'Eastron SDM630 · Modbus RTU over a pty' });
      meterYaml.push(
        `  - { id: main, driver: modbus-rtu, port: ${bus.b}, baud: 9600, unit: 1, profile: eastron-sdm630, interval: 1s }`,
      );
      const p1 = await startSocatPty({ dir, name: 'p1-', bin: programs.socat });
      onCleanup('P1 pty', () => p1.stop());
      const dsmr = await startDsmrEmitter({
        path: p1.a,
        flavour: '5',
        intervalMs: 1000,
        startTime: simNow(),
      });
      onCleanup('DSMR emitter', () => dsmr.stop());
      meters.push({ id: 'grid', what: 'DSMR 5 smart meter · P1 port over a pty' });
      meterYaml.push(`  - { id: grid, driver: dsmr, port: ${p1.b}, version: 5 }`);
      step('meters: Eastron SDM630 (Modbus RTU) and a DSMR 5 P1 meter, each on its own socat pty pair');
    } else {
      const sim = await startModbusSimulator({
        transport: { kind: 'tcp', port: 0, host: '127.0.0.1' },
        units: [{ unit: 1, profile: 'eastron-sdm630' }],
        now: simNow,
      });
      onCleanup('SDM630 simulator', () => sim.stop());
      meters.push({ id: 'main', what: `Eastron SDM630 · Modbus TCP 127.0.0.1:${sim.port ?? 0}` });
      meterYaml.push(
        `  - { id: main, driver: modbus-tcp, host: 127.0.0.1, port: ${sim.port ?? 0}, unit: 1, profile: eastron-sdm630, interval: 1s }`,
      );
      step(
        'meters: Eastron SDM630 over Modbus TCP (socat not found: sudo apt-get install socat for RTU over a pty and a DSMR meter)',
      );
    }
    checkAborted();

    // ---- the dashboard: its history starts with a week of the simulated apartment (same model, same
    // aggregation) ending where the live SDM630 starts, so the charts show a believable day at once
    let dashboardListen: string | undefined;
    if (opts.dashboard !== false) {
      dashboardListen = await freeListen(opts.dashboard ?? '127.0.0.1:8080');
      const historyDir = join(dir, 'history');
      if (!(await stat(historyDir).catch(() => null)) && (opts.seedDays ?? 7) > 0) {
        step(`dashboard: seeding its history with ${opts.seedDays ?? 7} days of the simulated apartment…`);
        const seedStart = Date.now();
        await seedDemoHistory({
          path: historyDir,
          meter: 'main',
          liveSeed: 1,
          phases: 3,
          end: Date.now(),
          days: opts.seedDays ?? 7,
          simShiftMs: simShift,
        });
        step(`dashboard: history seeded in ${((Date.now() - seedStart) / 1000).toFixed(1)} s`);
      }
    }
    checkAborted();

    // ---- the agent's config, checked by the same loader `meterlink run` uses
    const syncFile = join(dir, 'clock-synchronized');
    await writeFile(syncFile, '');
    const configFile = join(dir, 'config.yaml');
    const configText = [
      `# Written by meterlink demo: the agent runs with exactly this.`,
      `thing: ${DEMO_THING}`,
      `meters:`,
      ...meterYaml,
      `cloud:`,
      `  endpoint: 127.0.0.1`,
      `  port: ${broker.port}`,
      `  ca: ${broker.caFile}`,
      `  cert: ${device.cert}`,
      `  key: ${device.key}`,
      `buffer:`,
      `  path: ${join(dir, 'buffer')}`,
      `batch:`,
      `  maxDelay: 3s`,
      `time:`,
      `  syncFile: ${syncFile}`,
      `health:`,
      `  interval: 10s`,
      `status:`,
      `  file: ${join(dir, 'status.json')}`,
      ...(dashboardListen ? ['dashboard:', `  listen: ${dashboardListen}`] : []),
      '',
    ].join('\n');
    await writeFile(configFile, configText);
    let config = await parseConfig(configText, configFile, { requireCloud: true });

    // ---- the consumer first, so that it sees the first batch
    consumer = await startConsumer({
      host: '127.0.0.1',
      port: broker.port,
      caFile: broker.caFile,
      certFile: cloudCreds.cert,
      keyFile: cloudCreds.key,
      clientId: 'demo-cloud',
      thing: DEMO_THING,
      deviceCertPem: device.certPem,
    });
    const c = consumer;
    onCleanup('consumer', () => c.close());
    step(
      `consumer: subscribed to meterlink/v1/${DEMO_THING}/#, verifying each batch against the device certificate`,
    );
    checkAborted();

    // ---- the agent, in this process; its JSON log goes to a file so the view stays readable
    const logDest = pino.destination({ dest: join(dir, 'agent.log'), sync: true });
    const log = pino({ level: 'info', base: { thing: DEMO_THING } }, logDest);
    onCleanup('agent log', async () => logDest.end());
    // No NOTIFY_SOCKET and friends: a demo run inside a systemd service must not talk to its manager.
    const a = await startAgent(config, { log, env: {} }).catch(async (err: unknown) => {
      // Another program took the dashboard's port since it was checked: any free port will do.
      if (!dashboardListen || !/dashboard: cannot listen/.test((err as Error).message)) throw err;
      const retry = configText.replace(`listen: ${dashboardListen}`, 'listen: 127.0.0.1:0');
      await writeFile(configFile, retry);
      config = await parseConfig(retry, configFile, { requireCloud: true });
      return startAgent(config, { log, env: {} });
    });
    agent = a;
    onCleanup('agent', () => a.stop(5_000));
    runningSince = Date.now();
    step('agent: polling every 1 s into its LevelDB buffer, batches signed with the device key every ~3 s');
    if (a.dashboard) step(`dashboard: open ${a.dashboard.url} in a browser`);

    // ---- run until the duration is up or the signal aborts
    const snapshot = (): DemoSnapshot => ({
      now: Date.now(),
      startedAt: runningSince ?? Date.now(),
      durationMs: opts.durationMs,
      brokerPort: broker.port,
      dir,
      keepDir,
      meters,
      agent: a.status(),
      consumer: c.stats,
      ...(a.dashboard ? { dashboardUrl: a.dashboard.url } : {}),
    });
    await new Promise<void>((done) => {
      const tick = setInterval(() => opts.onTick?.(snapshot()), opts.tickMs ?? 1_000);
      const timer = opts.durationMs !== undefined ? setTimeout(finish, opts.durationMs) : undefined;
      const onAbort = () => {
        interrupted = true;
        finish();
      };
      function finish() {
        clearInterval(tick);
        if (timer) clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        done();
      }
      if (opts.signal?.aborted) onAbort();
      else opts.signal?.addEventListener('abort', onAbort, { once: true });
      opts.onTick?.(snapshot());
    });
    stoppedAt = Date.now();
  } catch (err) {
    if (err instanceof Aborted) interrupted = true;
    else failure = err;
  }

  // ---- stop: the agent first (it finishes in-flight publishes), then let the consumer see the last ones
  step('stopping: agent, consumer, meters, broker');
  stoppedAt ??= Date.now();
  const pending = cleanups.reverse();
  for (const { what, fn } of pending) {
    if (what === 'consumer' && consumer && agent?.publisher) {
      const c = consumer;
      const sent = agent.publisher.stats().batchesAcked;
      await waitUntil(() => c.stats.batches >= sent, { timeout: 2_000, what: 'the last batches' }).catch(
        () => {},
      );
      await c.settle();
    }
    try {
      await fn();
    } catch (err) {
      failure ??= new DemoError('STOP_FAILED', `stopping the ${what} failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  let dirRemoved = false;
  if (!keepDir) {
    await rm(dir, { recursive: true, force: true });
    dirRemoved = true;
  }
  if (failure) throw failure;
  const s = consumer?.stats;
  return {
    elapsedMs: runningSince === undefined ? 0 : stoppedAt - runningSince,
    batches: s?.batches ?? 0,
    verified: s?.verified ?? 0,
    rejected: s?.rejected ?? 0,
    samples: s?.samples ?? 0,
    bytes: s?.bytes ?? 0,
    billableUnits: s?.billableUnits ?? 0,
    dir,
    dirRemoved,
    serial,
    interrupted,
  };
}

/** `listen` if its port is free, else the same host on a port the system picks (a second demo, a busy 8080). */
async function freeListen(listen: string): Promise<string> {
  const m = /^(.*):(\d+)$/.exec(listen);
  if (!m) return listen;
  const [, host, port] = m as unknown as [string, string, string];
  const free = await new Promise<boolean>((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(Number(port), host.replace(/^\[(.*)\]$/, '$1'), () => srv.close(() => resolve(true)));
  });
  return free ? listen : `${host}:0`;
}

async function mkdirp(path: string): Promise<string> {
  await mkdir(path, { recursive: true });
  return path;
}
