/**
 * `provision fleet`: AWS IoT fleet provisioning by claim (AWS IoT Developer Guide, "Provisioning devices
 * that don't have device certificates using fleet provisioning" → "Device provisioning MQTT API").
 *
 * With the claim certificate: `CreateCertificateFromCsr` on `$aws/certificates/create-from-csr/json` with a
 * CSR from the box's own key (so no private key travels), then `RegisterThing` on
 * `$aws/provisioning-templates/{template}/provision/json` with the ownership token. Both go through the
 * SDK's identity client (request/response over MQTT 5). Then the claim session is closed for good, and a
 * new session with the new certificate proves it with a health publish before the config is written.
 */
import { access, constants } from 'node:fs/promises';
import { iotidentity } from 'aws-iot-device-sdk-v2';
import { writeRecord } from './cert-record.js';
import { updateConfigFile } from './config-file.js';
import { ensureDeviceKey } from './device-key.js';
import { ProvisionError } from './errors.js';
import { readIfExists, writeFileAtomic } from './fs-util.js';
import { keyPublicSha256, parseCert } from './keys.js';
import type { Layout } from './layout.js';
import { openMqttSession, publishHealth, type MqttSession } from './mqtt.js';
import { AMAZON_ROOT_CA_1_PEM } from './amazon-root-ca.js';
import type { Reporter } from './report.js';

export interface FleetOptions {
  thing: string;
  /** Claim certificate and key (or, for rotation, the current device certificate and key). */
  claimCert: string;
  claimKey: string;
  template: string;
  endpoint: string;
  port: number;
  /** CA to trust for the endpoint; default the bundled Amazon Root CA 1 (written next to the key). */
  caFile?: string | undefined;
  /** Template parameters; `ThingName` defaults to `thing`. */
  parameters?: Record<string, string>;
  files: Layout;
  /** Config to write; omitted by `rotate`. */
  configPath?: string | undefined;
  /** Make a new key even if one exists (rotation). */
  newKey?: boolean;
  /** Prove the new certificate with a health publish (default true; rotate proves it itself). */
  prove?: boolean;
  timeoutMs?: number;
  report: Reporter;
}

export interface FleetResult {
  readonly certificateId: string;
  readonly thing: string;
}

interface ModeledError {
  statusCode?: number;
  errorCode?: string;
  errorMessage?: string;
}

function rejected(step: string, topic: string, err: unknown): ProvisionError {
  const e = err as { modeledError?: ModeledError; description?: string; message?: string };
  const m = e?.modeledError;
  if (m && (m.errorCode || m.errorMessage || m.statusCode))
    return new ProvisionError(
      'FLEET_REJECTED',
      `${step} was rejected on ${topic}/rejected: ${m.statusCode ?? '?'} ${m.errorCode ?? ''} ` +
        `${m.errorMessage ?? ''}`.trimEnd() +
        ' — check the template name, its parameters and pre-provisioning hook, and the claim policy',
      { step, ...m },
      { cause: err },
    );
  return new ProvisionError(
    'FLEET_FAILED',
    `${step} got no answer (${e?.description ?? e?.message ?? String(err)}): check that the claim ` +
      `certificate's policy allows publish/subscribe on ${topic} and its /accepted and /rejected topics`,
    { step },
    { cause: err },
  );
}

async function mustRead(path: string, what: string): Promise<void> {
  try {
    await access(path, constants.R_OK);
  } catch {
    throw new ProvisionError('KEY_MISSING', `cannot read the ${what} ${path}: check the path`, { path });
  }
}

export async function fleetProvision(opts: FleetOptions): Promise<FleetResult> {
  const { files, report } = opts;
  await mustRead(opts.claimCert, 'claim certificate');
  await mustRead(opts.claimKey, 'claim key');
  const { keyPem, csrPem } = await ensureDeviceKey({
    thing: opts.thing,
    files,
    force: opts.newKey ?? false,
    report,
  });
  const keyHash = keyPublicSha256(keyPem);
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const target = { endpoint: opts.endpoint, port: opts.port, caFile: opts.caFile };

  let certificatePem: string;
  let certificateId: string;
  let claim: MqttSession | undefined;
  let identity: iotidentity.IotIdentityClientv2 | undefined;
  try {
    claim = await openMqttSession({
      ...target,
      certFile: opts.claimCert,
      keyFile: opts.claimKey,
      clientId: opts.thing,
      timeoutMs,
    });
    report('ok', `connected to ${opts.endpoint}:${opts.port} with the claim certificate`);
    identity = iotidentity.IotIdentityClientv2.newFromMqtt5(claim.client, {
      maxRequestResponseSubscriptions: 2,
      maxStreamingSubscriptions: 1,
      operationTimeoutInSeconds: Math.ceil(timeoutMs / 1000),
    });
    const created = await identity
      .createCertificateFromCsr({ certificateSigningRequest: csrPem })
      .catch((err: unknown) => {
        throw rejected('CreateCertificateFromCsr', '$aws/certificates/create-from-csr/json', err);
      });
    if (!created.certificatePem || !created.certificateId || !created.certificateOwnershipToken)
      throw new ProvisionError(
        'FLEET_FAILED',
        'CreateCertificateFromCsr answered without a certificate or token',
      );
    if (parseCert(created.certificatePem).publicKeySha256 !== keyHash)
      throw new ProvisionError(
        'CERT_KEY_MISMATCH',
        `the certificate ${created.certificateId} is not for this box's key: the service did not sign our CSR; ` +
          'nothing was written',
        { certificateId: created.certificateId },
      );
    certificatePem = created.certificatePem;
    certificateId = created.certificateId;
    report('created', `certificate ${certificateId} (CreateCertificateFromCsr)`);

    const topic = `$aws/provisioning-templates/${opts.template}/provision/json`;
    const registered = await identity
      .registerThing({
        templateName: opts.template,
        certificateOwnershipToken: created.certificateOwnershipToken,
        parameters: { ThingName: opts.thing, ...opts.parameters },
      })
      .catch((err: unknown) => {
        throw rejected(`RegisterThing with template "${opts.template}"`, topic, err);
      });
    if (registered.thingName !== undefined && registered.thingName !== opts.thing)
      throw new ProvisionError(
        'CSR_THING_MISMATCH',
        `template "${opts.template}" registered the certificate to thing "${registered.thingName}", but this ` +
          `box's CSR and client id are for "${opts.thing}": run again with --thing ${registered.thingName}, ` +
          'or fix the template so ThingName decides the thing name',
        { template: opts.template, registered: registered.thingName, thing: opts.thing },
      );
    report('created', `thing ${registered.thingName ?? opts.thing} registered by template ${opts.template}`);
  } finally {
    identity?.close();
    // The claim credentials are done with here: nothing below uses them.
    await claim?.close();
  }

  await writeFileAtomic(files.cert, certificatePem.trimEnd() + '\n', { mode: 0o644 });
  await writeRecord(files.record, {
    certificateId,
    thing: opts.thing,
    publicKeySha256: keyHash,
    via: 'fleet',
    createdAt: new Date().toISOString(),
  });
  report('written', `certificate ${files.cert} and its record ${files.record}`);

  if (opts.prove !== false) {
    const session = await openMqttSession({
      ...target,
      certFile: files.cert,
      keyFile: files.key,
      clientId: opts.thing,
      timeoutMs,
    });
    try {
      await publishHealth(session, opts.thing, { event: 'provisioned', certificateId });
    } finally {
      await session.close();
    }
    report('ok', `connected with the new certificate and published health for ${opts.thing}`);
  }

  if (opts.configPath !== undefined) {
    let ca = opts.caFile;
    if (ca === undefined) {
      ca = files.ca;
      if ((await readIfExists(ca)) !== AMAZON_ROOT_CA_1_PEM) {
        await writeFileAtomic(ca, AMAZON_ROOT_CA_1_PEM, { mode: 0o644 });
        report('written', `Amazon Root CA 1 to ${ca}`);
      }
    }
    const changed = await updateConfigFile(opts.configPath, {
      thing: opts.thing,
      cloud: { endpoint: opts.endpoint, port: opts.port, ca, cert: files.cert, key: files.key },
    });
    report(changed ? 'updated' : 'unchanged', `config ${opts.configPath} (thing, cloud)`);
  }
  return { certificateId, thing: opts.thing };
}
