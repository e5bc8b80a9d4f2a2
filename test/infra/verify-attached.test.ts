/**
 * The attachment check of verifyRecord on its own: a correctly signed batch from an ACTIVE certificate is
 * accepted only when IoT lists that certificate on the topic's thing; a failed lookup is a retry, never a
 * rejection (the record comes back once IoT answers). The end-to-end case against moto's IoT is in
 * ingest.test.ts.
 */
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import type { CertificateSource } from '../../infra-cfn/lambda/certificates.js';
import { IngestError } from '../../infra-cfn/lambda/errors.js';
import { verifyRecord } from '../../infra-cfn/lambda/verify.js';
import { issueCert, makeCa } from '../harness/pki.js';
import { makeSamples, ruleRecord, type TestDevice } from './fixtures.js';

t.test('accepted only when the certificate is attached to the topic thing', async (t) => {
  const ca = await makeCa();
  const c = await issueCert(ca, { cn: 'apt-12-meterbox' });
  const box: TestDevice = {
    thing: 'apt-12-meterbox',
    keyPem: c.keyPem,
    certPem: c.certPem,
    certDer: c.certDer,
    id: c.fingerprint,
  };
  let attached: () => Promise<ReadonlySet<string>> = async () => new Set([box.id]);
  const asked: string[] = [];
  // The lookups verifyRecord makes, answered as IoT would for this one registered, ACTIVE certificate.
  const certs: CertificateSource = {
    get: async (id) =>
      id === box.id
        ? { id, pem: box.certPem, status: 'ACTIVE', publicKey: new X509Certificate(box.certPem).publicKey }
        : undefined,
    attachedTo: (thing) => {
      asked.push(thing);
      return attached();
    },
    stats: { hits: 0, misses: 0 },
    clear() {},
  };
  const record = new Uint8Array(ruleRecord(box, makeSamples(4)));

  t.match(await verifyRecord(record, certs), { kind: 'accepted', kid: box.id });
  t.same(asked, ['apt-12-meterbox'], "the topic's thing is the one asked about");

  attached = async () => new Set(['ab'.repeat(32)]);
  t.match(await verifyRecord(record, certs), {
    kind: 'rejected',
    reason: 'CERT_NOT_ATTACHED',
    thing: 'apt-12-meterbox',
    detail: /not attached to thing apt-12-meterbox/,
  });
  attached = async () => new Set();
  t.match(await verifyRecord(record, certs), { kind: 'rejected', reason: 'CERT_NOT_ATTACHED' }, 'no thing');

  attached = () => Promise.reject(new IngestError('CERT_LOOKUP_FAILED', 'IoT ListThingPrincipals failed'));
  t.match(await verifyRecord(record, certs), { kind: 'retry', reason: 'KEY_LOOKUP_FAILED' }, 'outage: retry');

  asked.length = 0;
  const tampered = new Uint8Array(ruleRecord(box, makeSamples(4), { device: 'apt-13-meterbox' }));
  t.match(await verifyRecord(tampered, certs), { kind: 'rejected', reason: 'DEVICE_MISMATCH' });
  t.same(asked, [], 'asked only about batches that verified');
});
