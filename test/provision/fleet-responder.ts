/**
 * A stand-in for AWS IoT's fleet provisioning MQTT API on the Mosquitto harness broker: subscribed to
 * `$aws/certificates/create-from-csr/json` and `$aws/provisioning-templates/+/provision/json`, answering on
 * `/accepted` or `/rejected` with the documents the AWS IoT Developer Guide gives ("Device provisioning MQTT
 * API"). Certificates are signed with the broker's CA, so Mosquitto accepts them on reconnect.
 * (Lives here rather than in test/harness/, which other helpers own.)
 */
import type { webcrypto } from 'node:crypto';
import { createHash, randomBytes } from 'node:crypto';
import { mqtt5 } from 'aws-iot-device-sdk-v2';
import type { Broker } from '../harness/mosquitto.js';
import { testClient } from '../harness/mqtt-client.js';
import type { Teardown } from '../harness/tmp.js';
import { x509 } from '../../agent/provision/keys.js';

export interface ResponderBehaviour {
  /** Templates that exist; others are rejected with 404 ResourceNotFound. */
  templates: Set<string>;
  /** Reject CreateCertificateFromCsr with this error document. */
  rejectCsr?: { statusCode: number; errorCode: string; errorMessage: string } | undefined;
  /** Register the thing under this name instead of the ThingName parameter. */
  thingNameOverride?: string | undefined;
}

export interface Responder {
  readonly behaviour: ResponderBehaviour;
  /** Requests seen, by topic. */
  readonly requests: { topic: string; body: Record<string, unknown> }[];
  /** Certificates issued, by id. */
  readonly issued: Map<string, string>;
  close(): Promise<void>;
}

const CSR_TOPIC = '$aws/certificates/create-from-csr/json';
const PROVISION_RE = /^\$aws\/provisioning-templates\/([^/]+)\/provision\/json$/;

export async function startResponder(
  t: Teardown,
  broker: Broker,
  behaviour: ResponderBehaviour,
): Promise<Responder> {
  const creds = await broker.deviceCert('fleet-responder');
  const tc = testClient({
    host: broker.host,
    port: broker.port,
    caFile: broker.caFile,
    clientId: 'fleet-responder',
    certFile: creds.cert,
    keyFile: creds.key,
  });
  t.teardown(() => tc.close());
  const outcome = await tc.connect();
  if (!outcome.ok) throw new Error(`responder could not connect: ${outcome.error}`);
  const responder: Responder = { behaviour, requests: [], issued: new Map(), close: () => tc.close() };
  const tokens = new Map<string, string>(); // ownership token → certificate id

  const answer = (topic: string, doc: unknown) =>
    tc.client.publish({ topicName: topic, qos: mqtt5.QoS.AtLeastOnce, payload: JSON.stringify(doc) });

  const onCsr = async (body: Record<string, unknown>) => {
    if (behaviour.rejectCsr) return answer(`${CSR_TOPIC}/rejected`, behaviour.rejectCsr);
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(String(body.certificateSigningRequest));
      if (!(await csr.verify())) throw new Error('bad CSR signature');
    } catch (err) {
      return answer(`${CSR_TOPIC}/rejected`, {
        statusCode: 400,
        errorCode: 'InvalidPayload',
        errorMessage: `Invalid CSR: ${(err as Error).message}`,
      });
    }
    const serial = randomBytes(16);
    serial[0] = (serial[0] ?? 0) & 0x7f;
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial.toString('hex'),
      subject: csr.subject,
      issuer: broker.ca.cert.subject,
      notBefore: new Date(Date.now() - 86_400_000),
      notAfter: new Date(Date.now() + 365 * 86_400_000),
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      publicKey: csr.publicKey,
      signingKey: broker.ca.keys.privateKey as webcrypto.CryptoKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      ],
    });
    const certificateId = createHash('sha256').update(new Uint8Array(cert.rawData)).digest('hex');
    const certificateOwnershipToken = randomBytes(24).toString('base64');
    tokens.set(certificateOwnershipToken, certificateId);
    const certificatePem = cert.toString('pem') + '\n';
    responder.issued.set(certificateId, certificatePem);
    return answer(`${CSR_TOPIC}/accepted`, { certificateId, certificatePem, certificateOwnershipToken });
  };

  const onProvision = async (template: string, body: Record<string, unknown>) => {
    const base = `$aws/provisioning-templates/${template}/provision/json`;
    if (!behaviour.templates.has(template))
      return answer(`${base}/rejected`, {
        statusCode: 404,
        errorCode: 'ResourceNotFound',
        errorMessage: `The template ${template} does not exist`,
      });
    const token = String(body.certificateOwnershipToken ?? '');
    if (!tokens.has(token))
      return answer(`${base}/rejected`, {
        statusCode: 400,
        errorCode: 'InvalidCertificateOwnershipToken',
        errorMessage: 'Certificate ownership token cannot be found or is invalid',
      });
    tokens.delete(token);
    const params = (body.parameters ?? {}) as Record<string, string>;
    return answer(`${base}/accepted`, {
      deviceConfiguration: {},
      thingName: behaviour.thingNameOverride ?? params.ThingName,
    });
  };

  tc.client.on('messageReceived', (e) => {
    const topic = e.message.topicName;
    const raw = e.message.payload ? Buffer.from(e.message.payload as ArrayBuffer).toString('utf8') : '{}';
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      body = {};
    }
    responder.requests.push({ topic, body });
    const m = PROVISION_RE.exec(topic);
    const done = topic === CSR_TOPIC ? onCsr(body) : m ? onProvision(m[1] ?? '', body) : undefined;
    void done?.catch(() => undefined);
  });
  await tc.subscribe(CSR_TOPIC);
  await tc.subscribe('$aws/provisioning-templates/+/provision/json');
  return responder;
}
