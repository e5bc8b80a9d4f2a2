/**
 * InfluxDB hot store over line protocol: the v1 `/write` endpoint, which InfluxDB 1.x, 2.x (Timestream for
 * InfluxDB, bucket = db through its virtual DBRP mapping) and 3.x all serve. One point per sample:
 *   meterlink,device=<thing>,meter=<id> <channel>=<float>,...,seq=<n>i,flags=<n>i <ts ms>
 * A re-sent sample is the same series and timestamp with the same fields: InfluxDB overwrites it in place.
 * Channel values are always floats (a field's type must never change between points).
 *
 * Answers (InfluxDB 2's documented /write contract; test/infra/sinks.test.ts runs the sink against each):
 * 204 written; 401/403 credentials re-read once, then SINK_CONFIG; 404 no such bucket/database, SINK_CONFIG;
 * 413 the request halved until it fits (a single line too large is rejected); 400/422 the points refused,
 * counted, never retried; 429/503 waited out as Retry-After asks when that fits the invocation, else (and
 * for any other status) SINK_UNAVAILABLE, so Lambda hands the records back.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { IngestError } from '../errors.js';
import { valueToNumber, type Sample } from '../../../cloud-contract/sample.js';
import { backoffMs, type SampleSink, type SinkResult, type VerifiedBatch } from './sink.js';

export interface InfluxCredentials {
  /** Base URL, e.g. https://xyz.timestream-influxdb.eu-west-1.on.aws:8086 */
  readonly url: string;
  /** v1 database; on InfluxDB 2/3 the bucket name. */
  readonly database: string;
  /** InfluxDB 2/3 API token (sent as `Authorization: Token ...`). */
  readonly token?: string;
  /** InfluxDB 1.x user (basic auth), when there is no token. */
  readonly username?: string;
  readonly password?: string;
}

export interface InfluxSinkOptions {
  /** Resolves the credentials; called again (fresh) after a 401/403, e.g. when the secret was rotated. */
  readonly credentials: (fresh: boolean) => Promise<InfluxCredentials>;
  readonly measurement?: string;
  /** Lines per HTTP request (InfluxDB recommends 5,000). */
  readonly linesPerRequest?: number;
  readonly fetch?: typeof fetch;
  readonly timeoutMs?: number;
  /** Requests per chunk while the server answers 429/503 (default 4). */
  readonly maxAttempts?: number;
  /** Longest Retry-After waited for inside one invocation (default 5 s); longer hands the records back. */
  readonly maxWaitMs?: number;
}

const escapeKey = (s: string) => s.replace(/[,= ]/g, (c) => `\\${c}`);
const escapeMeasurement = (s: string) => s.replace(/[, ]/g, (c) => `\\${c}`);

export function sampleLine(measurement: string, device: string, s: Sample): string {
  const fields: string[] = [];
  for (const [name, v] of Object.entries(s.values)) fields.push(`${escapeKey(name)}=${valueToNumber(v)}`);
  fields.push(`seq=${s.seq}i`, `flags=${s.flags}i`);
  return `${escapeMeasurement(measurement)},device=${escapeKey(device)},meter=${escapeKey(s.meter)} ${fields.join(',')} ${s.ts}`;
}

export function createInfluxSink(opts: InfluxSinkOptions): SampleSink {
  const measurement = opts.measurement ?? 'meterlink';
  const per = opts.linesPerRequest ?? 5_000;
  const doFetch = opts.fetch ?? fetch;
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const maxAttempts = opts.maxAttempts ?? 4;
  const maxWaitMs = opts.maxWaitMs ?? 5_000;

  async function post(body: string, fresh: boolean): Promise<Response> {
    const c = await opts.credentials(fresh);
    const url = new URL('/write', c.url);
    url.searchParams.set('db', c.database);
    url.searchParams.set('precision', 'ms');
    const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8' };
    if (c.token) headers.authorization = `Token ${c.token}`;
    else if (c.username !== undefined)
      headers.authorization = `Basic ${Buffer.from(`${c.username}:${c.password ?? ''}`).toString('base64')}`;
    try {
      return await doFetch(url, { method: 'POST', body, headers, signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      throw new IngestError(
        'SINK_UNAVAILABLE',
        `InfluxDB at ${url.origin} did not answer`,
        { url: url.origin },
        { cause: err },
      );
    }
  }

  /** Milliseconds a 429/503 asks to wait (Retry-After: seconds or an HTTP date), else the backoff. */
  const retryAfterMs = (header: string | null, attempt: number): number => {
    if (header !== null && header.trim() !== '') {
      const s = Number(header);
      if (Number.isFinite(s)) return Math.max(0, s * 1000);
      const at = Date.parse(header);
      if (Number.isFinite(at)) return Math.max(0, at - Date.now());
    }
    return backoffMs(attempt);
  };

  interface Outcome {
    rejected: number;
    rejections: string[];
  }

  /** Sends lines [first, first + chunk.length) of the write; a 413 halves the request until it fits. */
  async function send(chunk: readonly string[], first: number, out: Outcome): Promise<void> {
    const body = chunk.join('\n');
    let res = await post(body, false);
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      res = await post(body, true);
    }
    // Throttled (429) or overloaded (503): wait as asked, within this invocation's budget, then try again.
    for (let attempt = 1; (res.status === 429 || res.status === 503) && attempt < maxAttempts; attempt++) {
      const wait = retryAfterMs(res.headers.get('retry-after'), attempt);
      if (wait > maxWaitMs) break;
      await res.body?.cancel();
      await delay(wait);
      res = await post(body, false);
    }
    if (res.ok) {
      await res.body?.cancel();
      return;
    }
    const text = (await res.text()).slice(0, 500);
    const last = first + chunk.length - 1;
    if (res.status === 401 || res.status === 403)
      throw new IngestError('SINK_CONFIG', `InfluxDB refused the credentials (${res.status}): ${text}`, {
        status: res.status,
      });
    if (res.status === 404)
      throw new IngestError('SINK_CONFIG', `InfluxDB has no such database/bucket (404): ${text}`, {
        status: res.status,
      });
    if (res.status === 413) {
      if (chunk.length === 1) {
        out.rejections.push(`line ${first}: larger than the server takes (413)`);
        out.rejected++;
        return;
      }
      const half = Math.ceil(chunk.length / 2);
      await send(chunk.slice(0, half), first, out);
      await send(chunk.slice(half), first + half, out);
      return;
    }
    // 400: bad line protocol, field type conflict or a partial write — the store refused these points.
    if (res.status === 400 || res.status === 422) {
      out.rejected += chunk.length;
      out.rejections.push(`lines ${first}..${last}: ${text}`);
      return;
    }
    const retryAfter = res.headers.get('retry-after');
    throw new IngestError('SINK_UNAVAILABLE', `InfluxDB /write answered ${res.status}: ${text}`, {
      status: res.status,
      ...(retryAfter !== null ? { retryAfter } : {}),
    });
  }

  return {
    kind: 'timestream-influxdb',
    async write(batches: readonly VerifiedBatch[]): Promise<SinkResult> {
      const lines = batches.flatMap((b) => b.samples.map((s) => sampleLine(measurement, b.device, s)));
      const out: Outcome = { rejected: 0, rejections: [] };
      for (let i = 0; i < lines.length; i += per) await send(lines.slice(i, i + per), i, out);
      return { written: lines.length - out.rejected, rejected: out.rejected, rejections: out.rejections };
    },
  };
}
