import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeEvent, encodeHealth, signBatch, type Sample } from '../../cloud-contract/index.js';
import { runCliCaptured, spawnMeterlink } from '../harness/cli.js';
import { tempDir } from '../harness/tmp.js';
import { makeDevice, threePhaseSeries } from './fixtures.js';

const dev = await makeDevice();
const samples: Sample[] = threePhaseSeries({ count: 30 });
const batch = signBatch(
  { device: dev.thing, samples },
  { privateKey: dev.issued.keyPem, certDer: dev.issued.certDer },
);

t.test('meterlink decode: a batch, verified with --cert, readable and --json', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'batch.cbor');
  await writeFile(file, batch);
  const cert = join(dir, 'device.crt');
  await writeFile(cert, dev.issued.certPem);
  const der = join(dir, 'device.der');
  await writeFile(der, dev.issued.certDer);
  const otherCert = join(dir, 'other.crt');
  await writeFile(otherCert, dev.other.certPem);

  let r = await runCliCaptured(['decode', file, '--cert', cert]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /signature VALID/);
  t.match(r.stdout, /"voltage_l1_v": 23\d/);
  r = await runCliCaptured(['decode', file, '--cert', der, '--json']);
  t.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { signature: string; count: number; samples: Sample[]; kid: string };
  t.equal(out.signature, 'valid');
  t.equal(out.kid, dev.issued.fingerprint);
  t.same(out.samples, samples, 'exact values in --json');

  r = await runCliCaptured(['decode', file]);
  t.equal(r.code, 0);
  t.match(r.stdout, /signature not checked \(give --cert to verify\)/);

  r = await runCliCaptured(['decode', file, '--cert', otherCert]);
  t.equal(r.code, 1);
  t.match(r.stderr, /UNKNOWN_KID/);

  const tampered = Uint8Array.from(batch);
  tampered[tampered.length - 80] = (tampered[tampered.length - 80] as number) ^ 1;
  await writeFile(file, tampered);
  r = await runCliCaptured(['decode', file, '--cert', cert, '--json']);
  t.equal(r.code, 1);
  t.match(JSON.parse(r.stdout), { valid: false, reason: 'BAD_SIGNATURE' });

  // base64 text (as IoT rules and Kinesis records carry the payload)
  await writeFile(file, Buffer.from(batch).toString('base64') + '\n');
  r = await runCliCaptured(['decode', file, '--cert', cert]);
  t.equal(r.code, 0, r.stderr);

  r = await runCliCaptured(['decode', join(dir, 'nope.cbor')]);
  t.equal(r.code, 1);
  t.match(r.stderr, /cannot read .*nope\.cbor/);
  r = await runCliCaptured(['decode', cert, '--cert', file]);
  t.equal(r.code, 1);
  t.match(r.stderr, /device certificate/);
});

t.test('meterlink decode: health and event messages, unknown payloads', async (t) => {
  const dir = await tempDir(t);
  const h = join(dir, 'health.json');
  await writeFile(
    h,
    encodeHealth({
      v: 1,
      kind: 'health',
      device: dev.thing,
      ts: 1,
      agent: { version: '0.1.0', uptimeS: 1 },
      buffer: { depth: 0, bytes: 0, oldestTs: null, droppedTotal: 0 },
      publisher: { connected: false, inFlight: 0, publishedTotal: 0, lastAckTs: null },
      clock: { synced: false },
      meters: [],
    }),
  );
  let r = await runCliCaptured(['decode', h]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /health message, valid/);
  const e = join(dir, 'event.json');
  await writeFile(
    e,
    encodeEvent({
      v: 1,
      kind: 'event',
      device: dev.thing,
      ts: 1,
      id: 'b-1',
      severity: 'info',
      event: 'agent_started',
      data: { version: '0.1.0' },
    }),
  );
  r = await runCliCaptured(['decode', e, '--json']);
  t.equal(r.code, 0);
  t.match(JSON.parse(r.stdout), { type: 'event', valid: true });
  const junk = join(dir, 'junk');
  await writeFile(junk, 'hello');
  r = await runCliCaptured(['decode', junk]);
  t.equal(r.code, 1);
  t.match(r.stderr, /UNKNOWN_PAYLOAD/);
  await writeFile(junk, '{"kind":"event","v":1}');
  r = await runCliCaptured(['decode', junk]);
  t.equal(r.code, 1);
  t.match(r.stderr, /BAD_JSON/);
});

t.test('meterlink decode - reads standard input (child process)', async (t) => {
  const p = spawnMeterlink(['decode', '-', '--json'], { stdio: ['pipe', 'pipe', 'pipe'] });
  p.child.stdin?.end(Buffer.from(batch));
  await p.exited();
  t.equal(p.child.exitCode, 0, p.output());
  t.match(p.output(), /"signature":"unchecked"/);
});
