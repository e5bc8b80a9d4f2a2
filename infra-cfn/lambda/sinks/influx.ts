/**
 * InfluxDB hot store over line protocol: the v1 `/write` endpoint, which InfluxDB 1.x, 2.x (Timestream for
 * InfluxDB, bucket = db through its virtual DBRP mapping) and 3.x all serve. One point per sample:
 *   meterlink,device=<thing>,meter=<id> <channel>=<float>,...,seq=<n>i,flags=<n>i <ts ms>
 * A re-sent sample is the same series and timestamp with the same fields: InfluxDB overwrites it in place.
 * Channel values are always floats (a field's type must never change between points).
 */
import { IngestError } from '../errors.js';
import { valueToNumber, type Sample } from '../../../cloud-contract/sample.js';
import type { SampleSink, SinkResult, VerifiedBatch } from './sink.js';

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

  return {
    kind: 'timestream-influxdb',
    async write(batches: readonly VerifiedBatch[]): Promise<SinkResult> {
      const lines = batches.flatMap((b) => b.samples.map((s) => sampleLine(measurement, b.device, s)));
      let rejected = 0;
      const rejections: string[] = [];
      for (let i = 0; i < lines.length; i += per) {
        const chunk = lines.slice(i, i + per);
        const body = chunk.join('\n');
        let res = await post(body, false);
        if (res.status === 401 || res.status === 403) {
          await res.body?.cancel();
          res = await post(body, true);
        }
        if (res.ok) {
          await res.body?.cancel();
          continue;
        }
        const text = (await res.text()).slice(0, 500);
        if (res.status === 401 || res.status === 403)
          throw new IngestError('SINK_CONFIG', `InfluxDB refused the credentials (${res.status}): ${text}`, {
            status: res.status,
          });
        // 400: bad line protocol, field type conflict or a partial write — the store refused these points.
        if (res.status === 400 || res.status === 422) {
          rejected += chunk.length;
          rejections.push(`lines ${i}..${i + chunk.length - 1}: ${text}`);
          continue;
        }
        throw new IngestError('SINK_UNAVAILABLE', `InfluxDB /write answered ${res.status}: ${text}`, {
          status: res.status,
        });
      }
      return { written: lines.length - rejected, rejected, rejections };
    },
  };
}
