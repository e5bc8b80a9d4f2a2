/**
 * A local HTTP stand-in for Firehose's PutRecordBatch (JSON 1.1 protocol, what the real SDK client speaks),
 * for the one thing moto cannot do: refuse some records (FailedPutCount > 0) or throttle a whole call.
 * `plan` decides per call: which record indexes fail, or that the whole call is throttled.
 * Every accepted record is kept, in order, with the size and count of each call as received.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Teardown } from '../harness/tmp.js';

export type CallPlan = { throttle: true } | { fail: (index: number) => boolean };

export interface FakeFirehose {
  readonly endpoint: string;
  readonly accepted: Map<string, Buffer[]>;
  readonly calls: { stream: string; records: number; bytes: number; failed: number }[];
  plan: (call: number) => CallPlan;
}

export async function startFakeFirehose(t: Teardown): Promise<FakeFirehose> {
  const fake: FakeFirehose = {
    endpoint: '',
    accepted: new Map(),
    calls: [],
    plan: () => ({ fail: () => false }),
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify(body));
      };
      if (target !== 'Firehose_20150804.PutRecordBatch')
        return reply(400, { __type: 'InvalidArgumentException', message: `not faked: ${target}` });
      const body = JSON.parse(Buffer.concat(chunks).toString()) as {
        DeliveryStreamName: string;
        Records: { Data: string }[];
      };
      const datas = body.Records.map((r) => Buffer.from(r.Data, 'base64'));
      const plan = fake.plan(fake.calls.length);
      const bytes = datas.reduce((n, d) => n + d.length, 0);
      if ('throttle' in plan) {
        fake.calls.push({
          stream: body.DeliveryStreamName,
          records: datas.length,
          bytes,
          failed: datas.length,
        });
        return reply(400, { __type: 'ServiceUnavailableException', message: 'Slow down.' });
      }
      const kept = fake.accepted.get(body.DeliveryStreamName) ?? [];
      fake.accepted.set(body.DeliveryStreamName, kept);
      let failed = 0;
      const responses = datas.map((d, i) => {
        if (plan.fail(i)) {
          failed++;
          return { ErrorCode: 'ServiceUnavailableException', ErrorMessage: 'Slow down.' };
        }
        kept.push(d);
        return { RecordId: `r-${fake.calls.length}-${i}` };
      });
      fake.calls.push({ stream: body.DeliveryStreamName, records: datas.length, bytes, failed });
      reply(200, { FailedPutCount: failed, Encrypted: false, RequestResponses: responses });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(fake, { endpoint: `http://127.0.0.1:${port}` });
}
