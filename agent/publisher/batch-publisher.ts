/**
 * The batcher and publisher loop: oldest samples from the buffer → signed batches → QoS 1 publishes, a
 * window of several in flight, the buffer range deleted only on a PUBACK with a success reason code.
 *
 * Delivery is at-least-once. When a publish fails (disconnect, timeout, error reason code) the loop stops
 * issuing new batches, lets the rest of the window settle, and rewinds its read cursor to the first failed
 * range: only batches that were in flight are ever sent twice, always in sequence order, and a receiver
 * can drop duplicates by sequence number.
 */
import type { Sample } from '../../cloud-contract/sample.js';
import type { MqttConnection, PublishResult } from './mqtt-connection.js';

/**
 * What the publisher needs of a sample: its seq and time. The agent passes the buffer's `StoredSample`s (values
 * still in their stored bytes), tests may pass `Sample`s; the encoder is made for the same kind.
 */
export interface SampleRef {
  readonly seq: number;
  readonly ts: number;
}

/** The part of the buffer the publisher needs. */
export interface BatchSource<S extends SampleRef = Sample> {
  /**
   * Oldest samples with seq > afterSeq, at most maxCount, in sequence order; at most about maxBytes of stored
   * bytes (always at least one sample) when given.
   */
  readOldest(opts: { afterSeq: number; maxCount: number; maxBytes?: number }): Promise<readonly S[]>;
  /** Deletes the range [fromSeq, toSeq] (inclusive); harmless for seqs already gone. */
  ack(fromSeq: number, toSeq: number): Promise<void>;
}

/** Packs samples into one signed payload of at most maxBytes; returns how many samples it took. */
export type BatchEncoder<S extends SampleRef = Sample> = (
  samples: readonly S[],
  maxBytes: number,
) => Promise<{ payload: Uint8Array; count: number }>;

export interface PublisherOptions<S extends SampleRef = Sample> {
  source: BatchSource<S>;
  connection: Pick<MqttConnection, 'publish' | 'connected' | 'on' | 'off' | 'maximumPacketSize'>;
  encode: BatchEncoder<S>;
  topic: string;
  /** Upper bound for one payload (default 128 000 B: 25 whole 5-KB IoT billing units, under the 128 KB limit). */
  maxBytes?: number;
  /** Longest a live sample waits for a fuller batch (default 60 s). A backlog is sent at once. */
  maxDelayMs?: number;
  /** QoS 1 publishes in flight at once (default 8). */
  window?: number;
  /** How many samples to read from the buffer per batch attempt (default 8192). */
  readCount?: number;
  /**
   * Read-ahead bound in stored bytes per batch attempt (default window × maxBytes, 8 × 128 KB = 1 MB: what
   * the in-flight window can carry at once). Together with `readCount` it bounds the memory of a backlog drain
   * however long the backlog is.
   */
  readBytes?: number;
  /** Backoff after an error reason code: first delay and cap, full jitter (defaults 1 s, 5 min). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** After a PUBACK "not authorized" the loop pauses this long before trying again (default 15 min). */
  notAuthorizedPauseMs?: number;
  now?: () => number;
  random?: () => number;
  /** Called for every outcome, for logs, status and health. */
  onEvent?: (e: PublisherEvent) => void;
}

export type PublisherEvent =
  | { type: 'acked'; fromSeq: number; toSeq: number; count: number; bytes: number }
  | { type: 'failed'; fromSeq: number; toSeq: number; error: string }
  | { type: 'rejected'; fromSeq: number; toSeq: number; reasonCode: number; reason: string }
  | { type: 'split'; fromSeq: number; toSeq: number; maxBytes: number }
  | { type: 'paused'; untilMs: number; reason: string }
  | { type: 'dropped-unsendable'; seq: number; error: string }
  /** Reading or acknowledging in the buffer failed (e.g. its disk is full): retried after a backoff. */
  | { type: 'source-failed'; error: string; retryInMs: number };

export interface PublisherStats {
  batchesAcked: number;
  samplesAcked: number;
  bytesAcked: number;
  failures: number;
  lastAckedSeq: number;
  lastError: string | undefined;
  inFlight: number;
  pausedUntil: number | undefined;
}

export interface BatchPublisher {
  start(): void;
  /** Wakes the loop because new samples were appended. */
  notify(): void;
  /** Stops issuing batches; waits up to deadlineMs for in-flight publishes; resolves with how many remain. */
  stop(deadlineMs?: number): Promise<number>;
  stats(): PublisherStats;
  /** Resolves once everything up to `seq` has been acknowledged (for tests and shutdown). */
  whenAcked(seq: number): Promise<void>;
}

interface InFlight {
  fromSeq: number;
  toSeq: number;
  bytes: number;
  count: number;
  done: Promise<void>;
}

/** A batch whose payload takes more than this share of its budget is full: sent without waiting. */
const FULL = 0.9;
const MQTT_NOT_AUTHORIZED = 0x87;
const MQTT_PAYLOAD_FORMAT_INVALID = 0x99;
const MQTT_QUOTA_EXCEEDED = 0x97;
/** Longest wait before reading the buffer again after it failed (its disk was full). */
const SOURCE_RETRY_MAX_MS = 10_000;

export function createBatchPublisher<S extends SampleRef = Sample>(
  opts: PublisherOptions<S>,
): BatchPublisher {
  const maxBytesCap = opts.maxBytes ?? 128_000;
  const maxDelayMs = opts.maxDelayMs ?? 60_000;
  const windowSize = Math.max(1, opts.window ?? 8);
  const readCount = opts.readCount ?? 8192;
  const readBytes = opts.readBytes ?? windowSize * maxBytesCap;
  const retryBaseMs = opts.retryBaseMs ?? 1_000;
  const retryMaxMs = opts.retryMaxMs ?? 300_000;
  const notAuthorizedPauseMs = opts.notAuthorizedPauseMs ?? 900_000;
  const now = opts.now ?? Date.now;
  const random = opts.random ?? Math.random;
  const emit = opts.onEvent ?? (() => {});

  let running = false;
  let loopDone: Promise<void> = Promise.resolve();
  /** Highest seq handed to a publish (acked or in flight). */
  let cursor = 0;
  /** Samples to read next: a little more than the last batch took, twice as many when it took all it got. */
  let nextRead = 256;
  /** Lowest seq of a failed batch since the last rewind, or undefined. */
  let rewindTo: number | undefined;
  /** A smaller byte budget for the range starting at `splitFrom` after a too-large failure. */
  let splitFrom: number | undefined;
  let splitBytes = maxBytesCap;
  let consecutiveErrors = 0;
  let sourceErrors = 0;
  let pausedUntil: number | undefined;
  const inFlight: InFlight[] = [];
  /** Payload bytes per sample of the last batch encoded (headers included, so an overestimate for a big one). */
  let bytesPerSample: number | undefined;
  /** While a live batch waits to fill: how many more appended samples wake the loop (see `waitLive`). */
  let liveWaitFor: number | undefined;
  const stats: PublisherStats = {
    batchesAcked: 0,
    samplesAcked: 0,
    bytesAcked: 0,
    failures: 0,
    lastAckedSeq: 0,
    lastError: undefined,
    inFlight: 0,
    pausedUntil: undefined,
  };
  let wake: (() => void) | undefined;
  const ackWaiters: { seq: number; resolve: () => void }[] = [];

  const poke = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        wake = undefined;
        resolve();
      }, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  const onConnected = () => poke();
  /** A sample was appended: wake the loop, unless a live batch is waiting and this one cannot fill it yet. */
  const notify = () => {
    if (liveWaitFor !== undefined && --liveWaitFor > 0) return;
    poke();
  };
  /**
   * Appended samples a live batch of `have` samples can take before it might be full: half the room the last
   * batch's bytes per sample gives, so an estimate off by 2× still wakes the loop before the batch is full.
   * Without this every appended sample re-read and re-signed everything pending: at 3 meters × 1 Hz and a 60-s
   * maxDelay, 180 encodes (deflate + ECDSA) per batch instead of one.
   */
  const roomFor = (have: number, budget: number, perSample: number): number =>
    Math.floor(((budget * FULL) / perSample - have) / 2);
  /** Sleeps until the live batch's deadline, or until `room` more samples are appended, or any other wake-up. */
  const waitLive = async (ms: number, room: number) => {
    liveWaitFor = Math.max(1, room);
    await sleep(ms);
    liveWaitFor = undefined;
  };

  const settleAckWaiters = () => {
    for (let i = ackWaiters.length - 1; i >= 0; i--) {
      const w = ackWaiters[i];
      const settled =
        w &&
        w.seq <= stats.lastAckedSeq &&
        (rewindTo === undefined || rewindTo > w.seq) &&
        inFlight.every((f) => f.fromSeq > w.seq);
      if (w && settled) {
        ackWaiters.splice(i, 1);
        w.resolve();
      }
    }
  };

  const backoffMs = () => {
    const cap = Math.min(retryMaxMs, retryBaseMs * 2 ** Math.min(consecutiveErrors, 20));
    return Math.floor(random() * cap);
  };

  const handleResult = async (batch: InFlight, res: PublishResult) => {
    if (res.ok) {
      await opts.source.ack(batch.fromSeq, batch.toSeq);
      consecutiveErrors = 0;
      stats.batchesAcked++;
      stats.samplesAcked += batch.count;
      stats.bytesAcked += batch.bytes;
      stats.lastAckedSeq = Math.max(stats.lastAckedSeq, batch.toSeq);
      if (splitFrom !== undefined && batch.toSeq >= splitFrom) {
        splitFrom = undefined;
        splitBytes = maxBytesCap;
      }
      emit({
        type: 'acked',
        fromSeq: batch.fromSeq,
        toSeq: batch.toSeq,
        count: batch.count,
        bytes: batch.bytes,
      });
      return;
    }
    stats.failures++;
    rewindTo = Math.min(rewindTo ?? Infinity, batch.fromSeq);
    if (res.kind === 'failed') {
      stats.lastError = res.error;
      if (res.tooLarge) {
        splitFrom = batch.fromSeq;
        splitBytes = Math.max(1024, Math.floor(batch.bytes / 2));
        emit({ type: 'split', fromSeq: batch.fromSeq, toSeq: batch.toSeq, maxBytes: splitBytes });
      } else {
        // Usually a dropped connection (the reconnect gates the retry); if it keeps failing while
        // connected, the backoff keeps it from spinning.
        consecutiveErrors++;
        emit({ type: 'failed', fromSeq: batch.fromSeq, toSeq: batch.toSeq, error: res.error });
      }
      return;
    }
    stats.lastError = `PUBACK ${res.reason} (0x${res.reasonCode.toString(16)})`;
    emit({
      type: 'rejected',
      fromSeq: batch.fromSeq,
      toSeq: batch.toSeq,
      reasonCode: res.reasonCode,
      reason: res.reason,
    });
    if (res.reasonCode === MQTT_NOT_AUTHORIZED) {
      // The policy does not let this certificate publish here: retrying soon cannot help, and hammering
      // IoT Core with refused publishes can get the device disconnected. Pause and report.
      pausedUntil = now() + notAuthorizedPauseMs;
      stats.pausedUntil = pausedUntil;
      emit({ type: 'paused', untilMs: pausedUntil, reason: res.reason });
    } else if (res.reasonCode === MQTT_PAYLOAD_FORMAT_INVALID && batch.count > 1) {
      splitFrom = batch.fromSeq;
      splitBytes = Math.max(1024, Math.floor(batch.bytes / 2));
      emit({ type: 'split', fromSeq: batch.fromSeq, toSeq: batch.toSeq, maxBytes: splitBytes });
    } else {
      consecutiveErrors++;
      if (res.reasonCode === MQTT_QUOTA_EXCEEDED) consecutiveErrors++;
    }
  };

  const waitForWindowSlot = async () => {
    while (inFlight.length >= windowSize) await Promise.race(inFlight.map((f) => f.done));
  };

  /**
   * The loop never ends on an error of the buffer (its store is closed and reopened while its disk is full):
   * it reports, backs off with jitter, rewinds to the first sample not acknowledged (an ack that failed
   * leaves its samples stored: sent again, harmless duplicates) and tries again.
   */
  const loop = async () => {
    while (running) {
      try {
        await steps();
      } catch (err) {
        const error = (err as Error)?.message ?? String(err);
        stats.lastError = error;
        // Its own backoff, capped low: the buffer recovers by itself (space back), and then the backlog
        // should move within seconds, not after the broker backoff's minutes.
        sourceErrors++;
        const retryInMs = Math.max(
          100,
          Math.floor(random() * Math.min(SOURCE_RETRY_MAX_MS, retryBaseMs * 2 ** Math.min(sourceErrors, 20))),
        );
        emit({ type: 'source-failed', error, retryInMs });
        while (inFlight.length > 0) await Promise.race(inFlight.map((f) => f.done));
        cursor = Math.min(cursor, (rewindTo ?? Infinity) - 1);
        rewindTo = undefined;
        if (running) await sleep(retryInMs);
      }
    }
  };

  const steps = async () => {
    let oldestUnsentSeenAt: number | undefined;
    while (running) {
      if (pausedUntil !== undefined) {
        const left = pausedUntil - now();
        if (left > 0) {
          await sleep(left);
          continue;
        }
        pausedUntil = undefined;
        stats.pausedUntil = undefined;
      }
      if (rewindTo !== undefined) {
        // Let the rest of the window settle first, so nothing still in flight is sent a second time.
        while (inFlight.length > 0) await Promise.race(inFlight.map((f) => f.done));
        if (!running) break;
        cursor = (rewindTo ?? cursor + 1) - 1;
        rewindTo = undefined;
        if (consecutiveErrors > 0) await sleep(backoffMs());
        continue;
      }
      if (!opts.connection.connected) {
        await sleep(60_000);
        continue;
      }
      await waitForWindowSlot();
      if (!running || rewindTo !== undefined) continue;

      // Read a little more than the last batch took (enough to tell that the batch is full), not 2-4× what
      // it sends: each sample read is decoded into objects, and what does not fit is read again next time.
      const want = Math.min(readCount, Math.max(256, nextRead));
      const samples = await opts.source.readOldest({ afterSeq: cursor, maxCount: want, maxBytes: readBytes });
      sourceErrors = 0;
      if (samples.length === 0) {
        oldestUnsentSeenAt = undefined;
        await sleep(maxDelayMs);
        continue;
      }
      // The broker may take less than IoT Core's 128 KB (its CONNACK says so): never build what it refuses.
      const brokerMax = opts.connection.maximumPacketSize;
      const cap = brokerMax
        ? Math.min(maxBytesCap, brokerMax - Buffer.byteLength(opts.topic) - 32)
        : maxBytesCap;
      const budget =
        splitFrom !== undefined && (samples[0]?.seq ?? 0) <= splitFrom ? Math.min(splitBytes, cap) : cap;
      // Live data (the read was not cut short) whose oldest sample has waited less than maxDelay: once a batch
      // has been encoded (bytes per sample known), encode only when it might fill a batch; until then wait for
      // the deadline or for more samples.
      oldestUnsentSeenAt ??= now();
      const first = samples[0] as S;
      const waitedMs = Math.max(now() - first.ts, now() - oldestUnsentSeenAt);
      const live = samples.length < want && waitedMs < maxDelayMs;
      const room = live && bytesPerSample !== undefined ? roomFor(samples.length, budget, bytesPerSample) : 0;
      if (room > 0) {
        await waitLive(maxDelayMs - waitedMs, room);
        continue;
      }
      const { payload, count } = await opts.encode(samples, budget);
      if (count === 0) {
        // One sample alone does not fit: it can never be sent. Say so loudly and drop it, rather than block
        // everything behind it forever. (Only possible with a pathological inline profile.)
        const s = samples[0] as S;
        emit({
          type: 'dropped-unsendable',
          seq: s.seq,
          error: `sample ${s.seq} does not fit in ${budget} bytes`,
        });
        await opts.source.ack(s.seq, s.seq);
        cursor = s.seq;
        continue;
      }
      const perSample = payload.length / count;
      bytesPerSample = perSample;
      const full = count < samples.length || payload.length > budget * FULL;
      if (!full && waitedMs < maxDelayMs) {
        // Live data: wait for more samples until the oldest unsent one has waited maxDelay.
        await waitLive(maxDelayMs - waitedMs, roomFor(count, budget, perSample));
        continue;
      }
      oldestUnsentSeenAt = undefined;
      nextRead = count < samples.length ? Math.ceil(count * 1.25) + 64 : count * 2;
      const batchSamples = samples.slice(0, count);
      const fromSeq = (batchSamples[0] as S).seq;
      const toSeq = (batchSamples[batchSamples.length - 1] as S).seq;
      cursor = toSeq;
      const batch: InFlight = { fromSeq, toSeq, bytes: payload.length, count, done: Promise.resolve() };
      batch.done = opts.connection
        .publish(opts.topic, payload)
        .then((res) => handleResult(batch, res))
        .catch((err: unknown) => {
          stats.failures++;
          stats.lastError = (err as Error)?.message ?? String(err);
          rewindTo = Math.min(rewindTo ?? Infinity, batch.fromSeq);
        })
        .finally(() => {
          const i = inFlight.indexOf(batch);
          if (i >= 0) inFlight.splice(i, 1);
          stats.inFlight = inFlight.length;
          settleAckWaiters();
          poke();
        });
      inFlight.push(batch);
      stats.inFlight = inFlight.length;
    }
  };

  return {
    start() {
      if (running) return;
      running = true;
      opts.connection.on('connected', onConnected);
      loopDone = loop();
    },
    notify,
    async stop(deadlineMs = 5_000) {
      running = false;
      opts.connection.off('connected', onConnected);
      poke();
      const deadline = new Promise<void>((r) => setTimeout(r, deadlineMs).unref());
      await Promise.race([
        Promise.all([loopDone, ...inFlight.map((f) => f.done)]).then(() => undefined),
        deadline,
      ]);
      return inFlight.length;
    },
    stats: () => ({ ...stats }),
    whenAcked(seq) {
      return new Promise<void>((resolve) => {
        ackWaiters.push({ seq, resolve });
        settleAckWaiters();
      });
    },
  };
}
