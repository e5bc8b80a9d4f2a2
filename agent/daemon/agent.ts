/**
 * The daemon: wires meters → buffer → batcher → publisher, and owns time, health, events and status.
 *
 * Data flows one way (DESIGN §2). A reading becomes a Sample here (meter id, clock stamp and flags), is
 * appended to the durable buffer, and only the buffer feeds the publisher. Events (meter errors, counter
 * resets, meter swaps, dropped samples, clock steps, expiring certificates) go to the event topic and the log;
 * health goes to the health topic every `health.interval`; the status file is rewritten every few seconds.
 */
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import type { BufferEvent, ReadingBuffer, StoredSample } from '../../buffer/index.js';
import { isBufferError, openLevelBufferWhenPossible } from '../../buffer/index.js';
import {
  batchTopic,
  certificateDer,
  channelByName,
  encodeEvent,
  encodeHealth,
  eventTopic,
  healthTopic,
  valueToNumber,
  MAX_LOST_RANGES,
  type EventData,
  type EventKind,
  type EventV1,
  type SampleInput,
} from '../../cloud-contract/index.js';
import { isDriverError } from '../../drivers/errors.js';
import type { MeterReader, MeterReading } from '../../drivers/reader.js';
import type { Config, MeterConfig } from '../config/index.js';
import { createMeterReader, meterLabel } from '../meters.js';
import { createStoredBatchEncoder } from '../publisher/batch-encoder.js';
import { createBatchPublisher, type BatchPublisher, type BatchSource } from '../publisher/batch-publisher.js';
import { createMqttConnection, type MqttConnection } from '../publisher/mqtt-connection.js';
import { createNotifier, watchdogIntervalMs, type Env } from '../runtime/sd-notify.js';
import { createWatchdog } from '../runtime/watchdog.js';
import { createClockKeeper, type ClockKeeper } from '../time/clock.js';
import { createTimeSource } from '../time/sources.js';
import { packageVersion } from '../version.js';
import type { Dashboard } from '../dashboard/index.js';
import { openEventQueue } from './event-queue.js';
import { createPoller, type Poller } from './poller.js';
import { writeStatusFile, type AgentStatus, type MeterStatus } from './status-file.js';

export interface AgentDeps {
  log: Logger;
  env?: Env;
  /** Meter factory (default: the real drivers). */
  createReader?: (m: MeterConfig) => MeterReader;
  /** Clock keeper (default: from config.time). */
  clock?: ClockKeeper;
  /** How often the status file is rewritten (default 2 s). */
  statusIntervalMs?: number;
  /** How often the clock is checked for sync and steps (default 1 s). */
  clockCheckMs?: number;
}

export interface RunningAgent {
  readonly buffer: ReadingBuffer;
  readonly publisher: BatchPublisher | undefined;
  /** The local web dashboard, when `dashboard:` is configured. */
  readonly dashboard: Dashboard | undefined;
  /** Stops polling, commits, lets in-flight publishes finish until the deadline, closes everything. */
  stop(deadlineMs?: number): Promise<void>;
  status(): AgentStatus;
}

interface MeterState {
  cfg: MeterConfig;
  reader: MeterReader;
  poller: Poller;
  status: MeterStatus;
  failingSince: number | undefined;
  failedPolls: number;
  serial: string | undefined;
  counters: Map<string, number>;
}

const MAX_RECENT_ERRORS = 20;
/** At most one `samples_dropped` event per reason for refused samples this often (ms). */
const REFUSED_REPORT_MS = 10_000;
/** "could not store a reading" is logged once per this many ms while it keeps failing the same way. */
const STORE_ERROR_LOG_MS = 60_000;
const MAX_EVENT_QUEUE = 1000;

export async function startAgent(config: Config, deps: AgentDeps): Promise<RunningAgent> {
  const log = deps.log;
  const env = deps.env ?? process.env;
  const startedAt = Date.now();
  const notifier = createNotifier({ env, log });
  const recentErrors: AgentStatus['recentErrors'] = [];
  const noteError = (source: string, message: string) => {
    recentErrors.push({ at: Date.now(), source, message });
    if (recentErrors.length > MAX_RECENT_ERRORS) recentErrors.shift();
  };

  // ---- events: logged always, published when connected; the queue is on disk next to the buffer so an event
  // raised just before a crash is still published after the restart (bounded, oldest dropped first)
  await mkdir(dirname(config.buffer.path), { recursive: true });
  const eventQueue = await openEventQueue(join(dirname(config.buffer.path), 'events.jsonl'), MAX_EVENT_QUEUE);
  let eventCounter = 0;
  let connection: MqttConnection | undefined;
  let dashboard: Dashboard | undefined;
  let flushingEvents = false;
  const flushEvents = async () => {
    if (!connection?.connected || flushingEvents || !config.cloud) return;
    flushingEvents = true;
    try {
      while (eventQueue.items.length > 0 && connection.connected) {
        const ev = eventQueue.items[0] as EventV1;
        const res = await connection.publish(eventTopic(config.thing), encodeEvent(ev));
        if (!res.ok) break;
        eventQueue.shift();
      }
    } finally {
      flushingEvents = false;
    }
  };
  const emitEvent = <K extends EventKind>(
    event: K,
    severity: EventV1['severity'],
    message: string,
    data: EventData<K>,
  ) => {
    const ev = {
      v: 1,
      kind: 'event',
      device: config.thing,
      ts: Date.now(),
      id: `${startedAt.toString(36)}-${++eventCounter}`,
      event,
      severity,
      message,
      data,
    } as EventV1;
    const level = severity === 'error' ? 'error' : severity === 'warning' ? 'warn' : 'info';
    log[level]({ event, data }, message);
    eventQueue.push(ev);
    dashboard?.event(ev);
    void flushEvents();
  };

  // ---- time
  const clock =
    deps.clock ??
    (() => {
      const source = createTimeSource(config.time);
      log.info({ source: source.name, why: source.why }, `clock: ${source.name} decides (${source.why})`);
      return createClockKeeper({ source, holdMs: config.time.hold });
    })();
  let unsyncedReported = false;

  // ---- buffer
  // Samples refused (disk full, or policy refuse) got no seq: they are reported as counts, at most one event
  // per reason every REFUSED_REPORT_MS, so a disk full for hours does not become an event per poll.
  const refusedPending = { disk_full: 0, retention: 0 };
  let refusedThrottle: NodeJS.Timeout | undefined;
  const reportRefused = (reason?: keyof typeof refusedPending, count = 0) => {
    if (reason) refusedPending[reason] += count;
    if (refusedThrottle && reason) return;
    for (const r of ['disk_full', 'retention'] as const) {
      const n = refusedPending[r];
      if (n === 0) continue;
      refusedPending[r] = 0;
      emitEvent(
        'samples_dropped',
        'warning',
        r === 'disk_full'
          ? `${n} samples not stored: the disk holding the buffer is full`
          : `${n} samples refused: the buffer is at its budget (policy refuse)`,
        { count: n, firstSeq: 0, lastSeq: 0, reason: r },
      );
    }
    refusedThrottle = reason
      ? setTimeout(() => {
          refusedThrottle = undefined;
          reportRefused();
        }, REFUSED_REPORT_MS)
      : undefined;
    refusedThrottle?.unref();
  };
  const reportLoss = (e: Extract<BufferEvent, { type: 'repaired' | 'corruption-set-aside' }>) => {
    const lost = e.lost.slice(0, MAX_LOST_RANGES).map((r) => ({ firstSeq: r.first, lastSeq: r.last }));
    const ranges = lost.map((r) =>
      r.firstSeq === r.lastSeq ? `${r.firstSeq}` : `${r.firstSeq}–${r.lastSeq}`,
    );
    emitEvent(
      'buffer_repaired',
      e.lostCount > 0 || !e.exact ? 'error' : 'warning',
      `buffer ${e.type === 'repaired' ? 'repaired' : `set aside as ${e.movedTo}`}: ` +
        (e.lostCount > 0
          ? `${e.lostCount} samples lost (seq ${ranges.slice(0, 8).join(', ')}${ranges.length > 8 ? ', …' : ''})`
          : 'no sample lost') +
        (e.exact ? '' : '; what the store held is not exactly known') +
        `; seqs go on at ${e.nextSeq}`,
      {
        path: e.path,
        action: e.type === 'repaired' ? 'repaired' : 'set_aside',
        ...(e.type === 'corruption-set-aside' ? { movedTo: e.movedTo } : {}),
        count: e.lostCount,
        lost,
        nextSeq: e.nextSeq,
        exact: e.exact && lost.length === e.lost.length,
      },
    );
  };
  const buffer = await openLevelBufferWhenPossible({
    path: config.buffer.path,
    maxSize: config.buffer.maxSize,
    policy: config.buffer.policy,
    ...(config.buffer.maxAge !== undefined ? { maxAge: config.buffer.maxAge } : {}),
    onEvent: (e) => {
      if (e.type === 'dropped') {
        emitEvent(
          'samples_dropped',
          'warning',
          `${e.count} samples dropped (${e.reason}), seq ${e.fromSeq}–${e.toSeq}`,
          {
            count: e.count,
            firstSeq: e.fromSeq,
            lastSeq: e.toSeq,
            reason:
              e.reason === 'age' || e.reason === 'size'
                ? 'retention'
                : e.reason === 'disk-full'
                  ? 'disk_full'
                  : 'corrupt',
          },
        );
      } else if (e.type === 'refused') {
        reportRefused(e.reason === 'disk-full' ? 'disk_full' : 'retention', e.count);
      } else if (e.type === 'corruption-set-aside') {
        emitEvent('buffer_corrupt_set_aside', 'error', `corrupt buffer moved to ${e.movedTo}`, {
          path: e.movedTo,
        });
        reportLoss(e);
      } else if (e.type === 'repaired') {
        reportLoss(e);
      } else {
        noteError('buffer', e.error.message);
        log.warn({ err: e.error, path: e.path }, `buffer: the disk is full; ${e.error.message}`);
      }
    },
  });

  // ---- watchdog
  const watchdog = createWatchdog({
    notifier,
    intervalMs: watchdogIntervalMs(env),
    progressWindowMs: Math.max(
      60_000,
      3 * Math.max(...config.meters.map((m) => ('interval' in m && m.interval) || 1_000)),
    ),
    log,
  });

  // ---- cloud
  let publisher: BatchPublisher | undefined;
  let certNotAfter: Date | undefined;
  const connState: AgentStatus['connection'] = {
    state: 'disabled',
    endpoint: null,
    lastError: null,
    since: null,
  };
  let lastAckAt: number | null = null;
  if (config.cloud) {
    const cloud = config.cloud;
    const [keyPem, certPem] = await Promise.all([readFile(cloud.key, 'utf8'), readFile(cloud.cert, 'utf8')]);
    const cert = new X509Certificate(certPem);
    certNotAfter = new Date(cert.validTo);
    connection = createMqttConnection({
      thing: config.thing,
      endpoint: cloud.endpoint,
      port: cloud.port,
      caFile: cloud.ca,
      certFile: cloud.cert,
      keyFile: cloud.key,
    });
    connState.state = 'connecting';
    connState.endpoint = `${cloud.endpoint}:${cloud.port}`;
    connection.on('connected', () => {
      Object.assign(connState, { state: 'connected', lastError: null, since: Date.now() });
      log.info({ endpoint: connState.endpoint }, 'connected');
      void flushEvents();
    });
    connection.on('disconnected', (reason) => {
      Object.assign(connState, { state: 'disconnected', lastError: reason, since: Date.now() });
      noteError('mqtt', reason);
      log.warn({ reason }, 'disconnected; samples stay in the buffer');
    });
    connection.on('connectFailed', (reason) => {
      connState.lastError = reason;
      noteError('mqtt', reason);
      log.warn({ reason }, 'cannot connect; samples stay in the buffer');
    });
    // Stored samples, values left in their bytes: the encoder decodes them straight into the batch's
    // columns, so a backlog drain holds ~1 small object per sample instead of one per value.
    const source: BatchSource<StoredSample> = {
      async readOldest(o) {
        const raw = await buffer.readStored(o);
        return clock.correct(raw).ready;
      },
      ack: (a, b) => buffer.ack(a, b),
    };
    publisher = createBatchPublisher({
      source,
      connection,
      encode: createStoredBatchEncoder({
        device: config.thing,
        privateKey: keyPem,
        certDer: certificateDer(certPem),
      }),
      topic: batchTopic(
        config.thing,
        cloud.basicIngestRule ? { basicIngestRule: cloud.basicIngestRule } : undefined,
      ),
      maxBytes: Math.min(config.batch.maxSize, 128_000),
      maxDelayMs: config.batch.maxDelay,
      // Enough samples per read to fill a 125 KiB batch even at ~8 B/sample (integer meters compress well).
      readCount: 16_384,
      onEvent: (e) => {
        if (e.type === 'acked') {
          lastAckAt = Date.now();
          watchdog.progress();
        } else if (e.type === 'rejected' || e.type === 'failed') {
          noteError('publish', e.type === 'rejected' ? `PUBACK ${e.reason}` : e.error);
        } else if (e.type === 'paused') {
          emitEvent('publish_not_authorized', 'error', `publishing paused: ${e.reason}`, {
            topic: batchTopic(config.thing),
            reasonCode: 0x87,
          });
        } else if (e.type === 'dropped-unsendable') {
          emitEvent('samples_dropped', 'error', e.error, {
            count: 1,
            firstSeq: e.seq,
            lastSeq: e.seq,
            reason: 'corrupt',
          });
        }
      },
    });
  }

  // ---- meters
  const meters: MeterState[] = [];
  const storeError = { code: '', loggedAt: 0, suppressed: 0 };
  const appendReading = async (m: MeterState, reading: MeterReading) => {
    const stamp = clock.stamp(reading.meterTime);
    const sample: SampleInput = {
      meter: m.cfg.id,
      ts: stamp.ts,
      values: reading.values,
      flags: reading.flags | stamp.flags,
      ...(reading.missing.length > 0 ? { missing: reading.missing } : {}),
      ...(stamp.clock ? { clock: stamp.clock } : {}),
    };
    await buffer.append([sample]);
    dashboard?.record(sample, reading.serial);
    if (connection && !connection.connected) watchdog.offlineButBuffering();
    else watchdog.progress();
    publisher?.notify();
    checkCounters(m, reading);
    m.status.lastTs = stamp.ts;
    const last: Record<string, number> = {};
    for (const name in reading.values) last[name] = valueToNumber(reading.values[name]!);
    m.status.lastValues = last;
  };
  const checkCounters = (m: MeterState, reading: MeterReading) => {
    if (reading.serial !== undefined) {
      if (m.serial !== undefined && m.serial !== reading.serial) {
        emitEvent('meter_swap', 'warning', `meter ${m.cfg.id}: serial ${m.serial} → ${reading.serial}`, {
          meter: m.cfg.id,
          oldSerial: m.serial,
          newSerial: reading.serial,
        });
        m.counters.clear();
      }
      m.serial = reading.serial;
    }
    for (const name in reading.values) {
      if (channelByName(name)?.kind !== 'counter') continue;
      const now = valueToNumber(reading.values[name]!);
      const before = m.counters.get(name);
      if (before !== undefined && now < before) {
        emitEvent('counter_reset', 'warning', `meter ${m.cfg.id}: ${name} went from ${before} to ${now}`, {
          meter: m.cfg.id,
          channel: name,
          before,
          after: now,
        });
      }
      m.counters.set(name, now);
    }
  };
  for (const cfg of config.meters) {
    const reader = (deps.createReader ?? createMeterReader)(cfg);
    const status: MeterStatus = {
      id: cfg.id,
      label: meterLabel(cfg),
      ok: true,
      polls: 0,
      failures: 0,
      skipped: 0,
      lastTs: null,
      lastValues: {},
      lastError: null,
      lastErrorAt: null,
    };
    const state: MeterState = {
      cfg,
      reader,
      status,
      failingSince: undefined,
      failedPolls: 0,
      serial: undefined,
      counters: new Map(),
      poller: undefined as unknown as Poller,
    };
    state.poller = createPoller({
      reader,
      intervalMs: ('interval' in cfg && typeof cfg.interval === 'number' ? cfg.interval : undefined) ?? 1_000,
      onReading: async (reading) => {
        if (state.failingSince !== undefined) {
          emitEvent(
            'meter_recovered',
            'info',
            `meter ${cfg.id} answers again after ${state.failedPolls} failed polls`,
            { meter: cfg.id, downMs: Date.now() - state.failingSince, failedPolls: state.failedPolls },
          );
          state.failingSince = undefined;
          state.failedPolls = 0;
        }
        status.ok = true;
        try {
          await appendReading(state, reading);
          storeError.code = '';
        } catch (err) {
          // A full disk is not a wedge: the loop runs and resumes when space returns; a restart by the
          // watchdog cannot free the disk.
          if (isBufferError(err, 'BUFFER_DISK_FULL')) watchdog.progress();
          const code = isBufferError(err) ? err.code : 'ERROR';
          const t = Date.now();
          if (code !== storeError.code || t - storeError.loggedAt >= STORE_ERROR_LOG_MS) {
            noteError('buffer', (err as Error).message);
            log.error({ err, meter: cfg.id, alsoFailed: storeError.suppressed }, 'could not store a reading');
            Object.assign(storeError, { code, loggedAt: t, suppressed: 0 });
          } else storeError.suppressed++;
        }
      },
      onError: (err) => {
        const code = isDriverError(err) ? err.code : 'ERROR';
        const message = (err as Error)?.message ?? String(err);
        status.ok = false;
        status.lastError = `${code}: ${message}`;
        status.lastErrorAt = Date.now();
        state.failedPolls++;
        if (state.failingSince === undefined) {
          state.failingSince = Date.now();
          emitEvent('meter_error', 'warning', `meter ${cfg.id}: ${message}`, {
            meter: cfg.id,
            code,
            detail: message.slice(0, 1000),
          });
        }
        noteError(`meter ${cfg.id}`, `${code}: ${message}`);
        log.debug({ meter: cfg.id, code }, message);
      },
    });
    meters.push(state);
  }

  // ---- clock, health, status timers
  const clockTimer = setInterval(() => {
    const wasSynced = clock.synced;
    const step = clock.check();
    if (step)
      emitEvent('clock_step', 'warning', `clock stepped by ${step.stepMs} ms`, {
        stepMs: step.stepMs,
        source: step.synced ? 'ntp' : 'unsynchronised',
      });
    if (!wasSynced && clock.synced) {
      emitEvent('clock_synced', 'info', 'clock synchronised; earlier samples will be corrected', {
        offsetMs: step?.stepMs ?? 0,
        correctedSamples: 0,
      });
      publisher?.notify();
    }
    const cs = clock.state();
    if (clock.synced) unsyncedReported = false;
    else if (!unsyncedReported && cs.unsyncedForMs >= config.time.hold) {
      unsyncedReported = true;
      emitEvent(
        'clock_unsynced',
        'warning',
        `clock unsynchronised for ${Math.round(cs.unsyncedForMs / 1000)} s; samples now ship flagged unsynchronised. ${cs.detail}`,
        { source: cs.source, unsyncedMs: Math.round(cs.unsyncedForMs), cause: cs.detail.slice(0, 1000) },
      );
      publisher?.notify();
    }
  }, deps.clockCheckMs ?? 1_000);

  const status = (): AgentStatus => {
    const b = buffer.stats();
    const p = publisher?.stats();
    for (const m of meters)
      Object.assign(m.status, {
        polls: m.poller.stats.polls,
        failures: m.poller.stats.failures,
        skipped: m.poller.stats.skipped,
      });
    return {
      v: 1,
      pid: process.pid,
      thing: config.thing,
      version: packageVersion,
      startedAt,
      updatedAt: Date.now(),
      connection: { ...connState },
      buffer: {
        depth: b.count,
        bytes: b.bytes,
        oldestTs: b.oldestTs ?? null,
        newestSeq: b.newestSeq ?? null,
        lastSeq: b.nextSeq - 1,
        dropped: b.droppedCount,
      },
      publisher: {
        batchesAcked: p?.batchesAcked ?? 0,
        samplesAcked: p?.samplesAcked ?? 0,
        bytesAcked: p?.bytesAcked ?? 0,
        inFlight: p?.inFlight ?? 0,
        lastAckAt,
        lastError: p?.lastError ?? null,
        pausedUntil: p?.pausedUntil ?? null,
      },
      clock: (() => {
        const cs = clock.state();
        return {
          synced: clock.synced,
          lastStepMs: cs.lastStep?.stepMs ?? null,
          source: cs.source,
          detail: cs.detail,
          unsyncedSince: cs.unsyncedSince ?? null,
        };
      })(),
      meters: meters.map((m) => ({ ...m.status })),
      recentErrors: [...recentErrors],
    };
  };
  let writingStatus = Promise.resolve();
  const writeStatus = () => {
    writingStatus = writingStatus
      .then(() => writeStatusFile(config.status.file, status()))
      .catch((err: unknown) => log.warn({ err }, `cannot write status file ${config.status.file}`));
    return writingStatus;
  };
  const statusTimer = setInterval(writeStatus, deps.statusIntervalMs ?? 2_000);

  let lastCertWarning = 0;
  const health = async () => {
    const s = status();
    const daysLeft = certNotAfter ? (certNotAfter.getTime() - Date.now()) / 86_400_000 : undefined;
    if (
      certNotAfter &&
      daysLeft !== undefined &&
      daysLeft < 30 &&
      Date.now() - lastCertWarning > 86_400_000
    ) {
      lastCertWarning = Date.now();
      emitEvent(
        'cert_expiring',
        daysLeft < 7 ? 'error' : 'warning',
        `device certificate expires in ${daysLeft.toFixed(1)} days`,
        { notAfter: certNotAfter.toISOString(), daysLeft: Math.floor(daysLeft) },
      );
    }
    notifier.status(
      `${s.connection.state}; buffer ${s.buffer.depth} samples; ${meters.filter((m) => m.status.ok).length}/${meters.length} meters ok`,
    );
    if (!connection?.connected || !config.cloud) return;
    const msg = encodeHealth({
      v: 1,
      kind: 'health',
      device: config.thing,
      ts: Date.now(),
      agent: {
        version: packageVersion,
        uptimeS: Math.round((Date.now() - startedAt) / 1000),
        rssBytes: process.memoryUsage.rss(),
      },
      buffer: {
        depth: s.buffer.depth,
        bytes: s.buffer.bytes,
        oldestTs: s.buffer.oldestTs,
        droppedTotal: s.buffer.dropped,
      },
      publisher: {
        connected: true,
        inFlight: s.publisher.inFlight,
        publishedTotal: s.publisher.samplesAcked,
        lastAckTs: s.publisher.lastAckAt,
        ...(s.publisher.lastError ? { lastError: s.publisher.lastError.slice(0, 1000) } : {}),
      },
      clock: { synced: s.clock.synced },
      ...(certNotAfter && daysLeft !== undefined
        ? { cert: { notAfter: certNotAfter.toISOString(), daysLeft: Math.floor(daysLeft) } }
        : {}),
      meters: meters.slice(0, 64).map((m) => ({
        id: m.cfg.id,
        ok: m.status.ok,
        lastTs: m.status.lastTs,
        polls: m.poller.stats.polls,
        failures: m.poller.stats.failures,
        ...(m.status.lastError ? { lastError: m.status.lastError.slice(0, 1000) } : {}),
      })),
    });
    await connection.publish(healthTopic(config.thing), msg);
  };
  const healthTimer = setInterval(
    () => void health().catch((err: unknown) => log.warn({ err }, 'health report failed')),
    config.health.interval,
  );

  // ---- the local dashboard, loaded only when configured (nothing in memory when off)
  if (config.dashboard) {
    const { startDashboard } = await import('../dashboard/index.js');
    dashboard = await startDashboard({ config, status, log, events: eventQueue.items });
  }

  // ---- go
  emitEvent('agent_started', 'info', `meterlink ${packageVersion} started`, { version: packageVersion });
  connection?.start();
  publisher?.start();
  for (const m of meters) m.poller.start();
  watchdog.start();
  notifier.ready();
  await writeStatus();
  log.info(
    { thing: config.thing, meters: meters.map((m) => m.status.label), cloud: connState.endpoint },
    'meterlink running',
  );

  let stopping: Promise<void> | undefined;
  return {
    buffer,
    publisher,
    dashboard,
    status,
    stop(deadlineMs = 8_000) {
      stopping ??= (async () => {
        const deadline = Date.now() + deadlineMs;
        notifier.stopping();
        clearInterval(clockTimer);
        clearInterval(statusTimer);
        clearInterval(healthTimer);
        await Promise.all(meters.map((m) => m.poller.stop()));
        clearTimeout(refusedThrottle);
        reportRefused();
        const left = await publisher?.stop(Math.max(0, deadline - Date.now() - 1_000));
        if (left)
          log.warn(
            { inFlight: left },
            'stopping with publishes in flight; they will be re-sent after restart',
          );
        await Promise.all(meters.map((m) => m.reader.close().catch(() => {})));
        await writeStatus();
        await dashboard?.close();
        await connection?.stop();
        await buffer.close();
        await eventQueue.flushed();
        watchdog.stop();
        await notifier.close();
        log.info('meterlink stopped');
      })();
      return stopping;
    },
  };
}
