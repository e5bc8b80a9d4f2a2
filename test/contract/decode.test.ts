import t, { type Test } from 'tap';
import { X509Certificate, createPrivateKey, createPublicKey, sign as nodeSign } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import {
  DEFAULT_DECODE_LIMITS,
  createBatchSigner,
  decodeBatchMessage,
  encodeBatch,
  encodeCoseSign1,
  encodeProtectedHeader,
  inspectBatchMessage,
  kidFromCertificate,
  sigStructure,
  signBatch,
  type DecodeOptions,
  type DecodeResult,
  type RejectReason,
} from '../../cloud-contract/index.js';
import { CborWriter } from '../../cloud-contract/cbor.js';
import { makeDevice, threePhaseSeries } from './fixtures.js';

const dev = await makeDevice();
const samples = threePhaseSeries({ count: 500 });
const signer = { privateKey: dev.issued.keyPem, certDer: dev.issued.certDer };
const kid = kidFromCertificate(dev.issued.certDer);
const good = signBatch({ device: dev.thing, samples }, signer);
const resolve: DecodeOptions = {
  resolveKey: (k) => (Buffer.from(k).equals(kid) ? dev.issued.certDer : undefined),
};

function expectReject(t: Test, r: DecodeResult, reason: RejectReason, what: string): void {
  if (r.ok) t.fail(`${what}: accepted, expected ${reason}`);
  else t.equal(r.reason, reason, `${what}: ${r.detail}`);
}

/** Signs arbitrary payload bytes with a chosen protected header (to reach the stages after the signature). */
function signRaw(payload: Uint8Array, header = encodeProtectedHeader(kid, false)): Uint8Array {
  const sig = nodeSign('sha256', sigStructure(header, payload), {
    key: createPrivateKey(dev.issued.keyPem),
    dsaEncoding: 'ieee-p1363',
  });
  return encodeCoseSign1(header, payload, new Uint8Array(sig));
}

function cbor(build: (w: CborWriter) => void): Uint8Array {
  const w = new CborWriter();
  build(w);
  return w.finish();
}

t.test('a good batch decodes and verifies, with any form of key resolveKey returns', async (t) => {
  const forms = [
    dev.issued.certDer,
    dev.issued.certPem,
    new X509Certificate(dev.issued.certDer),
    new X509Certificate(dev.issued.certDer).publicKey,
    new X509Certificate(dev.issued.certDer).publicKey.export({ type: 'spki', format: 'pem' }) as string,
    createPrivateKey(dev.issued.keyPem),
  ];
  for (const key of forms) {
    const r = await decodeBatchMessage(good, { resolveKey: async () => key, expectedDevice: dev.thing });
    t.ok(r.ok, r.ok ? 'ok' : `${r.reason} ${r.detail}`);
    if (r.ok) {
      t.equal(r.signature, 'valid');
      t.equal(r.kidHex, dev.issued.fingerprint);
      t.equal(r.batch.samples.length, 500);
      t.ok(r.compressed);
    }
  }
  const i = inspectBatchMessage(good);
  t.ok(i.ok && i.signature === 'unchecked');
});

t.test('tampered payload, header or signature: BAD_SIGNATURE', async (t) => {
  for (const at of [good.length - 100, good.length - 70, 60]) {
    const bad = Uint8Array.from(good);
    bad[at] = (bad[at] as number) ^ 0x01;
    const r = await decodeBatchMessage(bad, resolve);
    t.ok(!r.ok && ['BAD_SIGNATURE', 'BAD_HEADER', 'UNKNOWN_KID'].includes(r.reason), `flip at ${at}`);
  }
  // Flip a byte inside the payload specifically.
  const bad = Uint8Array.from(good);
  bad[good.length - 66 - 10] = (bad[good.length - 66 - 10] as number) ^ 0x80;
  expectReject(t, await decodeBatchMessage(bad, resolve), 'BAD_SIGNATURE', 'payload byte');
  // Signed by another device's key while claiming this device's kid.
  const forged = signBatch({ device: dev.thing, samples }, { privateKey: dev.other.keyPem, kid });
  expectReject(t, await decodeBatchMessage(forged, resolve), 'BAD_SIGNATURE', 'other key, our kid');
  // A 63-byte signature is refused before verification.
  const short = encodeCoseSign1(encodeProtectedHeader(kid, false), new Uint8Array([1]), new Uint8Array(63));
  expectReject(t, await decodeBatchMessage(short, resolve), 'BAD_SIGNATURE', 'short signature');
});

t.test('wrong kid: unknown, mismatching certificate, lookup failure, unusable key', async (t) => {
  const other = signBatch(
    { device: dev.thing, samples },
    { privateKey: dev.other.keyPem, certDer: dev.other.certDer },
  );
  expectReject(t, await decodeBatchMessage(other, resolve), 'UNKNOWN_KID', 'kid of another certificate');
  expectReject(
    t,
    await decodeBatchMessage(good, { resolveKey: () => dev.other.certPem }),
    'KID_MISMATCH',
    'resolver returns a certificate that does not hash to the kid',
  );
  expectReject(
    t,
    await decodeBatchMessage(good, {
      resolveKey: async () => {
        throw new Error('IoT DescribeCertificate timed out');
      },
    }),
    'KEY_LOOKUP_FAILED',
    'resolver throws',
  );
  expectReject(t, await decodeBatchMessage(good, { resolveKey: () => 'garbage' }), 'BAD_KEY', 'garbage key');
  const ed = createPublicKey(
    '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n',
  );
  expectReject(t, await decodeBatchMessage(good, { resolveKey: () => ed }), 'BAD_KEY', 'not a P-256 key');
  expectReject(
    t,
    await decodeBatchMessage(good, { ...resolve, expectedDevice: 'someone-else' }),
    'DEVICE_MISMATCH',
    'device is not the topic thing',
  );
});

t.test('truncated CBOR: TRUNCATED at every cut of the envelope', async (t) => {
  let checked = 0;
  for (let cut = 0; cut < good.length; cut += Math.max(1, Math.floor(good.length / 300))) {
    const r = await decodeBatchMessage(good.subarray(0, cut), resolve);
    if (r.ok || r.reason !== 'TRUNCATED') t.fail(`cut at ${cut}: ${r.ok ? 'accepted' : r.reason}`);
    checked++;
  }
  t.ok(checked > 250, `${checked} cuts`);
  // A truncated document inside a valid signature.
  const doc = encodeBatch({ device: dev.thing, samples: samples.slice(0, 50) });
  expectReject(
    t,
    await decodeBatchMessage(signRaw(doc.subarray(0, doc.length - 7)), resolve),
    'TRUNCATED',
    'doc cut',
  );
});

t.test('oversize: TOO_LARGE before parsing; limits are configurable', async (t) => {
  const huge = new Uint8Array(DEFAULT_DECODE_LIMITS.maxMessageBytes + 1).fill(0xff);
  expectReject(t, await decodeBatchMessage(huge, resolve), 'TOO_LARGE', '128 KiB + 1');
  expectReject(t, inspectBatchMessage(huge), 'TOO_LARGE', 'inspect too');
  expectReject(
    t,
    await decodeBatchMessage(good, { ...resolve, limits: { maxMessageBytes: 100 } }),
    'TOO_LARGE',
    'lower limit',
  );
  expectReject(
    t,
    await decodeBatchMessage(good, { ...resolve, limits: { maxSamples: 499 } }),
    'BAD_DOCUMENT',
    'more samples than maxSamples',
  );
});

t.test('deep nesting: TOO_DEEP in the envelope and in a signed document', async (t) => {
  const deep = new Uint8Array(5000).fill(0x81);
  deep[deep.length - 1] = 0x00;
  expectReject(t, await decodeBatchMessage(deep, resolve), 'TOO_DEEP', 'nested arrays as the message');
  const doc = cbor((w) => {
    for (let i = 0; i < 100; i++) w.array(1);
    w.int(0);
  });
  expectReject(
    t,
    await decodeBatchMessage(signRaw(doc), resolve),
    'TOO_DEEP',
    'nested arrays as the document',
  );
  const maps = cbor((w) => {
    for (let i = 0; i < 20; i++) {
      w.map(1);
      w.int(0);
    }
    w.int(0);
  });
  expectReject(t, await decodeBatchMessage(signRaw(maps), resolve), 'TOO_DEEP', 'nested maps');
});

t.test('zip bomb: DECOMPRESSED_TOO_LARGE, never inflated past the cap', async (t) => {
  const bomb = deflateRawSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 });
  t.ok(bomb.length < DEFAULT_DECODE_LIMITS.maxMessageBytes, `bomb is ${bomb.length} bytes`);
  const msg = signRaw(new Uint8Array(bomb), encodeProtectedHeader(kid, true));
  const before = process.memoryUsage().arrayBuffers;
  expectReject(t, await decodeBatchMessage(msg, resolve), 'DECOMPRESSED_TOO_LARGE', '64 MiB of zeros');
  t.ok(process.memoryUsage().arrayBuffers - before < 32 * 1024 * 1024, 'did not allocate the whole bomb');
  expectReject(
    t,
    await decodeBatchMessage(
      signRaw(new Uint8Array([1, 2, 3, 4, 5]), encodeProtectedHeader(kid, true)),
      resolve,
    ),
    'BAD_COMPRESSION',
    'garbage deflate',
  );
});

t.test('envelope shape, header and document errors each have their code', async (t) => {
  const header = (build: (w: CborWriter) => void): Uint8Array => cbor(build);
  const cases: [string, Uint8Array, RejectReason][] = [
    ['empty', new Uint8Array(0), 'TRUNCATED'],
    ['a float', new Uint8Array([0xf9, 0x3c, 0x00]), 'NOT_CBOR'],
    ['indefinite array', new Uint8Array([0x9f, 0xff]), 'NOT_CBOR'],
    ['non-preferred head', new Uint8Array([0x18, 0x01]), 'NOT_CBOR'],
    ['trailing bytes', Uint8Array.from([...good, 0]), 'NOT_CBOR'],
    ['unknown tag', new Uint8Array([0xd8, 0x40, 0x80]), 'NOT_CBOR'],
    ['a map', cbor((w) => w.map(0)), 'NOT_COSE_SIGN1'],
    ['array of 3', cbor((w) => (w.array(3), w.int(1), w.int(2), w.int(3))), 'NOT_COSE_SIGN1'],
    [
      'payload not bstr',
      cbor((w) => (w.array(4), w.bytes(new Uint8Array(0)), w.map(0), w.int(1), w.bytes(new Uint8Array(64)))),
      'NOT_COSE_SIGN1',
    ],
    [
      'unprotected header used',
      cbor((w) => {
        w.array(4);
        w.bytes(encodeProtectedHeader(kid, false));
        w.map(1);
        w.int(4);
        w.bytes(kid);
        w.bytes(new Uint8Array(1));
        w.bytes(new Uint8Array(64));
      }),
      'BAD_HEADER',
    ],
    [
      'alg ES384',
      signRaw(
        new Uint8Array([0xa0]),
        header(
          (w) => (
            w.map(3),
            w.int(1),
            w.int(-35),
            w.int(3),
            w.text('application/vnd.meterlink.batch.v1+cbor'),
            w.int(4),
            w.bytes(kid)
          ),
        ),
      ),
      'BAD_ALG',
    ],
    [
      'no kid',
      signRaw(
        new Uint8Array([0xa0]),
        header(
          (w) => (w.map(2), w.int(1), w.int(-7), w.int(3), w.text('application/vnd.meterlink.batch.v1+cbor')),
        ),
      ),
      'BAD_HEADER',
    ],
    [
      'crit parameter',
      signRaw(
        new Uint8Array([0xa0]),
        header((w) => (w.map(2), w.int(1), w.int(-7), w.int(2), w.array(0))),
      ),
      'BAD_HEADER',
    ],
    [
      'unknown zip',
      signRaw(
        new Uint8Array([0xa0]),
        header(
          (w) => (
            w.map(4),
            w.int(1),
            w.int(-7),
            w.int(3),
            w.text('application/vnd.meterlink.batch.v1+cbor'),
            w.int(4),
            w.bytes(kid),
            w.text('zip'),
            w.text('BR')
          ),
        ),
      ),
      'BAD_COMPRESSION',
    ],
    ['document not a map', signRaw(cbor((w) => w.array(0))), 'BAD_DOCUMENT'],
    ['document version 2', signRaw(cbor((w) => (w.map(1), w.int(0), w.int(2)))), 'UNSUPPORTED_VERSION'],
    ['document missing keys', signRaw(cbor((w) => (w.map(1), w.int(0), w.int(1)))), 'BAD_DOCUMENT'],
  ];
  for (const [what, msg, reason] of cases)
    expectReject(t, await decodeBatchMessage(msg, resolve), reason, what);
});

t.test('a signed document that breaks its invariants: BAD_DOCUMENT', async (t) => {
  const doc = encodeBatch({ device: dev.thing, samples: samples.slice(0, 20) });
  // Flip bytes all over the (uncompressed) document and sign the result: the decoder must refuse it or
  // decode it, never crash.
  let rejected = 0;
  for (let i = 0; i < doc.length; i += 3) {
    const bad = Uint8Array.from(doc);
    bad[i] = (bad[i] as number) ^ 0x21;
    const r = await decodeBatchMessage(signRaw(bad), resolve);
    if (!r.ok) {
      rejected++;
      t.not(r.reason, 'INTERNAL', `byte ${i}: ${r.detail}`);
    }
  }
  t.ok(rejected > 0);
  const s = createBatchSigner(signer);
  t.ok((await decodeBatchMessage(s.sign(doc), resolve)).ok, 'the unflipped document is fine');
});
