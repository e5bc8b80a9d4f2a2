import t from 'tap';
import {
  X509Certificate,
  createPrivateKey,
  generateKeyPairSync,
  sign as nodeSign,
  verify as nodeVerify,
} from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { decode as cborDecode, encode as cborEncode, type Tag } from 'cbor2';

/** cbor2 encodes a Node Buffer as an object; hand it plain byte arrays. */
const u8 = (b: Uint8Array | string) => new Uint8Array(typeof b === 'string' ? Buffer.from(b) : b);
import {
  BATCH_AAD,
  CONTENT_TYPE_BATCH_V1,
  certificateDer,
  createBatchSigner,
  decodeBatchDocument,
  encodeBatch,
  encodeCoseSign1,
  encodeProtectedHeader,
  kidFromCertificate,
  kidToHex,
  sigStructure,
  signBatch,
} from '../../cloud-contract/index.js';
import { makeDevice, threePhaseSeries } from './fixtures.js';

const dev = await makeDevice();
const samples = threePhaseSeries({ count: 300 });
const signer = { privateKey: dev.issued.keyPem, certDer: dev.issued.certDer };

t.test(
  'kid is the SHA-256 of the certificate DER, from DER or PEM, = the AWS IoT certificate id',
  async (t) => {
    const kid = kidFromCertificate(dev.issued.certDer);
    t.equal(kid.length, 32);
    t.equal(kidToHex(kid), dev.issued.fingerprint);
    t.equal(kidToHex(kidFromCertificate(dev.issued.certPem)), dev.issued.fingerprint);
    t.throws(() => kidFromCertificate('not a pem'), { code: 'BAD_CERTIFICATE' });
  },
);

t.test(
  'the message is a tagged COSE_Sign1 an independent CBOR decoder (cbor2) reads as RFC 9052 says',
  async (t) => {
    const msg = signBatch({ device: dev.thing, samples }, signer);
    const top = cborDecode(u8(msg), { preferMap: true }) as Tag;
    t.equal(Number(top.tag), 18, 'tag 18 = COSE_Sign1');
    const [ph, unprotected, payload, signature] = top.contents as [
      Uint8Array,
      Map<unknown, unknown>,
      Uint8Array,
      Uint8Array,
    ];
    t.equal(signature.length, 64, 'r||s');
    t.equal((unprotected as Map<unknown, unknown>).size, 0);
    const header = cborDecode(u8(ph), { preferMap: true }) as Map<unknown, unknown>;
    t.equal(header.get(1), -7, 'alg ES256');
    t.equal(header.get(3), CONTENT_TYPE_BATCH_V1);
    t.equal(Buffer.from(header.get(4) as Uint8Array).toString('hex'), dev.issued.fingerprint, 'kid');
    t.equal(header.get('zip'), 'DEF', 'compression declared in the protected header');

    // Sig_structure rebuilt independently: cbor2 of ["Signature1", protected, aad, payload].
    const independent = cborEncode(['Signature1', u8(ph), u8(BATCH_AAD), u8(payload)]);
    const ours = sigStructure(ph, payload);
    t.equal(
      Buffer.from(ours).toString('hex'),
      Buffer.from(independent).toString('hex'),
      'same Sig_structure bytes',
    );
    t.equal(
      Buffer.from(ours.subarray(0, 12)).toString('hex'),
      '846a5369676e617475726531',
      'array(4), "Signature1"',
    );

    // Verify with node:crypto directly against the certificate's public key.
    const key = new X509Certificate(dev.issued.certDer).publicKey;
    t.ok(
      nodeVerify('sha256', independent, { key, dsaEncoding: 'ieee-p1363' }, signature),
      'signature verifies',
    );
    t.notOk(
      nodeVerify(
        'sha256',
        cborEncode(['Signature1', u8(ph), u8('other/aad'), u8(payload)]),
        {
          key,
          dsaEncoding: 'ieee-p1363',
        },
        signature,
      ),
      'domain separation: another external_aad does not verify',
    );

    // The payload inflates to exactly the document encodeBatch makes.
    const doc = inflateRawSync(payload);
    t.equal(Buffer.compare(doc, Buffer.from(encodeBatch({ device: dev.thing, samples }))), 0);
    const back = decodeBatchDocument(new Uint8Array(doc));
    t.ok(back.ok);
  },
);

t.test('an envelope built by hand with node:crypto is accepted by our layout functions', async (t) => {
  const kid = kidFromCertificate(dev.issued.certDer);
  const ph = encodeProtectedHeader(kid, false);
  const doc = encodeBatch({ device: dev.thing, samples: samples.slice(0, 5) });
  const sig = nodeSign('sha256', sigStructure(ph, doc), {
    key: createPrivateKey(dev.issued.keyPem),
    dsaEncoding: 'ieee-p1363',
  });
  const msg = encodeCoseSign1(ph, doc, new Uint8Array(sig));
  const plain = createBatchSigner({ ...signer, compression: 'none' }).sign(doc);
  // ECDSA signatures are randomized: compare everything but the last 64 bytes.
  t.equal(
    Buffer.from(msg.subarray(0, -64)).toString('hex'),
    Buffer.from(plain.subarray(0, -64)).toString('hex'),
  );
});

t.test('signer options: compression modes, kid given directly, bad keys', async (t) => {
  const doc = encodeBatch({ device: dev.thing, samples });
  const none = createBatchSigner({ ...signer, compression: 'none' });
  const forced = createBatchSigner({ ...signer, compression: 'deflate-raw' });
  t.ok(none.sign(doc).length > forced.sign(doc).length);
  const byKid = createBatchSigner({
    privateKey: createPrivateKey(dev.issued.keyPem),
    kid: kidFromCertificate(dev.issued.certDer),
  });
  t.equal(kidToHex(byKid.kid), dev.issued.fingerprint);
  // A tiny document is not worth deflating under `auto`.
  const tiny = encodeBatch({
    device: dev.thing,
    samples: [{ meter: 'm', ts: 1, seq: 1, values: {}, flags: 0 }],
  });
  const m = createBatchSigner(signer).sign(tiny);
  t.equal(
    m.length,
    createBatchSigner(signer).overhead(tiny.length, false) + tiny.length,
    'overhead is exact',
  );
  t.throws(() => createBatchSigner({ privateKey: 'nope', certDer: dev.issued.certDer }), { code: 'BAD_KEY' });
  t.throws(() => createBatchSigner({ privateKey: dev.issued.keyPem }), { code: 'BAD_CERTIFICATE' });
  const ed = generateKeyPairSync('ed25519').privateKey;
  t.throws(
    () => createBatchSigner({ privateKey: ed, certDer: dev.issued.certDer }),
    { code: 'BAD_KEY' },
    'not P-256',
  );
});

t.test('certificateDer takes the first certificate of a PEM bundle', async (t) => {
  const der = certificateDer(dev.issued.certPem + dev.other.certPem);
  t.equal(Buffer.compare(Buffer.from(der), dev.issued.certDer), 0);
});
