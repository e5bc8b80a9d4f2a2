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

t.test(
  'the certificates attached to a thing: all pages, cached, not-found briefly, failures not',
  async (t) => {
    const id = (n: number) => n.toString(16).padStart(64, '0');
    const arn = (n: number) => `arn:aws:iot:eu-west-1:123456789012:cert/${id(n)}`;
    let now = 0;
    let fail = false;
    const asked: string[] = [];
    // IoT ListThingPrincipals is an AWS control-plane call: a stand-in that answers like the API, two pages.
    const iot = {
      async send(cmd: { input: { thingName: string; nextToken?: string } }) {
        asked.push(`${cmd.input.thingName}:${cmd.input.nextToken ?? ''}`);
        if (fail) throw Object.assign(new Error('boom'), { name: 'ServiceUnavailableException' });
        if (cmd.input.thingName === 'gone')
          throw Object.assign(new Error('no such thing'), { name: 'ResourceNotFoundException' });
        return cmd.input.nextToken
          ? { principals: [arn(2), 'arn:aws:cognito-identity:eu-west-1:123456789012:identitypool/x'] }
          : { principals: [arn(1)], nextToken: 'p2' };
      },
    };
    const certs = createIotCertificateSource({ iot: iot as never, now: () => now });
    t.same(
      [...(await certs.attachedTo('apt-12-meterbox'))],
      [id(1), id(2)],
      'certificate ids from every page',
    );
    t.same(asked, ['apt-12-meterbox:', 'apt-12-meterbox:p2']);
    await certs.attachedTo('apt-12-meterbox');
    t.equal(asked.length, 2, 'cached');
    t.same([...(await certs.attachedTo('gone'))], [], 'no such thing: nothing attached');
    now = 61_000;
    await certs.attachedTo('gone');
    await certs.attachedTo('apt-12-meterbox');
    t.same(asked.slice(2), ['gone:', 'gone:'], 'not-found remembered for a minute, found for 15');
    fail = true;
    await t.rejects(certs.attachedTo('apt-13-meterbox'), { code: 'CERT_LOOKUP_FAILED' });
    fail = false;
    t.same([...(await certs.attachedTo('apt-13-meterbox'))], [id(1), id(2)], 'a failure is not cached');
  },
);

t.test('a certificate attached since the cached answer is found: IoT is asked again', async (t) => {
  const id = (n: number) => n.toString(16).padStart(64, '0');
  let now = 0;
  let attached = [id(1)];
  let calls = 0;
  // IoT ListThingPrincipals as a stand-in: the box rotates its key, its new certificate gets attached.
  const iot = {
    async send() {
      calls++;
      return { principals: attached.map((x) => `arn:aws:iot:eu-west-1:123456789012:cert/${x}`) };
    },
  };
  const certs = createIotCertificateSource({ iot: iot as never, now: () => now });
  t.same([...(await certs.attachedTo('apt-12-meterbox', id(1)))], [id(1)]);
  attached = [id(1), id(2)];
  now = 1_000;
  t.ok((await certs.attachedTo('apt-12-meterbox', id(2))).has(id(2)), 'a second after: asked again, found');
  t.equal(calls, 2);
  now = 600_000;
  await certs.attachedTo('apt-12-meterbox', id(1));
  await certs.attachedTo('apt-12-meterbox', id(2));
  t.equal(calls, 2, 'an answer that has the certificate stays cached for its 15 minutes');
  t.notOk((await certs.attachedTo('apt-12-meterbox', id(3))).has(id(3)));
  t.equal(calls, 3, 'a certificate not in the cached answer: asked again');
  now = 630_000;
  await certs.attachedTo('apt-12-meterbox', id(3));
  t.equal(calls, 3, 'the same certificate again within a minute: the answer stands');
  now = 700_000;
  await certs.attachedTo('apt-12-meterbox', id(3));
  t.equal(calls, 4, 'and after a minute, asked again');
  await certs.attachedTo('apt-13-meterbox', id(3));
  t.equal(calls, 5, 'another thing: its own first answer, not asked twice');
});
