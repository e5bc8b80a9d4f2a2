import t from 'tap';
import { createIotCertificateSource } from '../../infra-cfn/lambda/certificates.js';
import { issueCert, makeCa } from '../harness/pki.js';

// IoT DescribeCertificate is an AWS control-plane call: a stand-in that answers like the API.
function fakeIot(pem: string) {
  return {
    calls: 0,
    async send() {
      this.calls++;
      return { certificateDescription: { certificatePem: pem, status: 'ACTIVE' } };
    },
  };
}

t.test(
  'the public key is parsed once, and only for a certificate named by its SHA-256 fingerprint',
  async (t) => {
    const ca = await makeCa();
    const dev = await issueCert(ca, { cn: 'apt-12-meterbox' });
    const iot = fakeIot(dev.certPem);
    const certs = createIotCertificateSource({ iot: iot as never });
    const a = await certs.get(dev.fingerprint);
    t.equal(a?.publicKey?.asymmetricKeyType, 'ec', 'key parsed at lookup');
    const b = await certs.get(dev.fingerprint);
    t.equal(b?.publicKey, a?.publicKey, 'the same KeyObject from the cache');
    t.equal(iot.calls, 1);
    t.same(certs.stats, { hits: 1, misses: 1 });

    const misnamed = await createIotCertificateSource({ iot: fakeIot(dev.certPem) as never }).get(
      '00'.repeat(32),
    );
    t.equal(misnamed?.publicKey, undefined, 'an id that is not the fingerprint gets no shortcut key');
    t.equal(misnamed?.pem, dev.certPem);

    const garbled = await createIotCertificateSource({ iot: fakeIot('not a certificate') as never }).get(
      dev.fingerprint,
    );
    t.equal(garbled?.publicKey, undefined, 'an unparsable PEM gets no key (the decoder rejects it later)');
  },
);
