/**
 * `provision register`: the installer's AWS credentials (the SDK's default chain) turn the box's CSR into
 * an active AWS IoT certificate, attached to the thing and the policy; the endpoint, certificate, Amazon
 * Root CA 1 and config are written. Every step first looks at what is there, so a second run changes nothing
 * and says so, step by step. `dryRun` only looks.
 */
import {
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  CreateCertificateFromCsrCommand,
  CreateThingCommand,
  DescribeCertificateCommand,
  DescribeEndpointCommand,
  DescribeThingCommand,
  GetPolicyCommand,
  IoTClient,
  ListAttachedPoliciesCommand,
  ListThingPrincipalsCommand,
  UpdateCertificateCommand,
} from '@aws-sdk/client-iot';
import { AMAZON_ROOT_CA_1_PEM } from './amazon-root-ca.js';
import { isNotFound, mapAwsError } from './aws-errors.js';
import { readRecord, writeRecord, type CertRecord } from './cert-record.js';
import { updateConfigFile } from './config-file.js';
import { assertThing, csrFor } from './device-key.js';
import { ProvisionError } from './errors.js';
import { readIfExists, writeFileAtomic } from './fs-util.js';
import { keyPublicSha256, parseCert, readDeviceKey } from './keys.js';
import type { Layout } from './layout.js';
import type { Reporter } from './report.js';

export interface AwsOptions {
  region?: string | undefined;
  /** API endpoint override (moto in tests, a VPC endpoint in the field). */
  endpointUrl?: string | undefined;
  /** Explicit credentials; default: the SDK's default provider chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string } | undefined;
}

export function createIotClient(opts: AwsOptions): IoTClient {
  return new IoTClient({
    ...(opts.region ? { region: opts.region } : {}),
    ...(opts.endpointUrl ? { endpoint: opts.endpointUrl } : {}),
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
    // Two tries: an installer waiting on a dead network wants the message, not minutes of retries.
    maxAttempts: 2,
  });
}

export interface RegisterOptions extends AwsOptions {
  thing: string;
  policy: string;
  files: Layout;
  /** Config to write thing/cloud into; omitted by `rotate`, which switches the config itself. */
  configPath?: string | undefined;
  /** MQTT port written to the config: 8883, or 443 (ALPN x-amzn-mqtt-ca). */
  port?: number;
  /** Data endpoint to write (a custom domain); default: DescribeEndpoint iot:Data-ATS. */
  endpoint?: string | undefined;
  dryRun?: boolean;
  report: Reporter;
}

export interface RegisterResult {
  readonly certificateId: string | undefined;
  readonly certificateArn: string | undefined;
  readonly endpoint: string | undefined;
  /** Whether anything was (or, with dryRun, would be) changed. */
  readonly changed: boolean;
}

/** Context shared by the steps of one run. */
interface Run {
  readonly iot: IoTClient;
  readonly opts: RegisterOptions;
  readonly where: string | undefined;
  changed: boolean;
}

async function call<T>(run: Run, doing: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw mapAwsError(err, doing, run.where);
  }
}

export async function register(opts: RegisterOptions): Promise<RegisterResult> {
  assertThing(opts.thing);
  const { files, report } = opts;
  const keyPem = await readDeviceKey(files.key);
  const csrPem = await csrFor(files.csr, keyPem, opts.thing);
  const iot = createIotClient(opts);
  const run: Run = { iot, opts, where: opts.endpointUrl, changed: false };
  try {
    await ensurePolicy(run);
    await ensureThing(run);
    const cert = await ensureCertificate(run, keyPem, csrPem);
    await ensureAttachments(run, cert?.certificateArn);
    const endpoint = opts.endpoint ?? (await lookupEndpoint(run));
    report('ok', `endpoint ${endpoint}${opts.endpoint ? ' (given)' : ''}`);
    if (opts.configPath === undefined)
      return {
        certificateId: cert?.certificateId,
        certificateArn: cert?.certificateArn,
        endpoint,
        changed: run.changed,
      };
    await writeCa(run);
    const configChanged = await updateConfigFile(
      opts.configPath,
      {
        thing: opts.thing,
        cloud: { endpoint, port: opts.port ?? 8883, ca: files.ca, cert: files.cert, key: files.key },
      },
      { dryRun: opts.dryRun ?? false },
    );
    if (configChanged) run.changed = true;
    report(
      configChanged ? (opts.dryRun ? 'would' : 'updated') : 'unchanged',
      `${opts.dryRun && configChanged ? 'update ' : ''}config ${opts.configPath} (thing, cloud)`,
    );
    return {
      certificateId: cert?.certificateId,
      certificateArn: cert?.certificateArn,
      endpoint,
      changed: run.changed,
    };
  } finally {
    iot.destroy();
  }
}

async function lookupEndpoint(run: Run): Promise<string> {
  const res = await call(run, 'look up the iot:Data-ATS endpoint', () =>
    run.iot.send(new DescribeEndpointCommand({ endpointType: 'iot:Data-ATS' })),
  );
  if (!res.endpointAddress)
    throw new ProvisionError('AWS_ERROR', 'AWS IoT returned no iot:Data-ATS endpoint');
  return res.endpointAddress;
}

async function ensurePolicy(run: Run): Promise<void> {
  const { iot, opts } = run;
  try {
    await iot.send(new GetPolicyCommand({ policyName: opts.policy }));
  } catch (err) {
    if (isNotFound(err))
      throw new ProvisionError(
        'POLICY_MISSING',
        `the IoT policy "${opts.policy}" does not exist in this account/region: deploy the meterlink ` +
          'stack (infra-cfn), which creates it, or pass the right --policy and --region',
        { policy: opts.policy },
        { cause: err },
      );
    throw mapAwsError(err, `read the IoT policy "${opts.policy}"`, run.where);
  }
  opts.report('ok', `policy ${opts.policy} exists`);
}

async function ensureThing(run: Run): Promise<void> {
  const { iot, opts } = run;
  try {
    await iot.send(new DescribeThingCommand({ thingName: opts.thing }));
    opts.report('unchanged', `thing ${opts.thing} exists`);
    return;
  } catch (err) {
    if (!isNotFound(err)) throw mapAwsError(err, `look up thing "${opts.thing}"`, run.where);
  }
  run.changed = true;
  if (opts.dryRun) return opts.report('would', `create thing ${opts.thing}`);
  await call(run, `create thing "${opts.thing}"`, () =>
    iot.send(new CreateThingCommand({ thingName: opts.thing })),
  );
  opts.report('created', `thing ${opts.thing}`);
}

/** The active certificate for this key: the recorded one if AWS still has it, else a new one. */
async function ensureCertificate(
  run: Run,
  keyPem: string,
  csrPem: string,
): Promise<{ certificateId: string; certificateArn: string } | undefined> {
  const { iot, opts } = run;
  const { files, report } = opts;
  const keyHash = keyPublicSha256(keyPem);
  const record = await readRecord(files.record);
  if (record && record.publicKeySha256 === keyHash && record.thing === opts.thing) {
    const found = await call(run, `look up certificate ${record.certificateId}`, async () => {
      try {
        return await iot.send(new DescribeCertificateCommand({ certificateId: record.certificateId }));
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    });
    const desc = found?.certificateDescription;
    if (desc?.certificateArn && desc.status !== 'REVOKED') {
      const arn = desc.certificateArn;
      if (desc.status !== 'ACTIVE') {
        run.changed = true;
        if (opts.dryRun) report('would', `activate certificate ${record.certificateId}`);
        else {
          await call(run, `activate certificate ${record.certificateId}`, () =>
            iot.send(
              new UpdateCertificateCommand({ certificateId: record.certificateId, newStatus: 'ACTIVE' }),
            ),
          );
          report('updated', `certificate ${record.certificateId} activated (was ${desc.status})`);
        }
      } else report('unchanged', `certificate ${record.certificateId} for this key is active`);
      const onDisk = await readIfExists(files.cert);
      if (desc.certificatePem && onDisk?.trim() !== desc.certificatePem.trim()) {
        run.changed = true;
        if (opts.dryRun) report('would', `write certificate ${files.cert}`);
        else {
          await writeFileAtomic(files.cert, desc.certificatePem.trimEnd() + '\n', { mode: 0o644 });
          report('written', `certificate ${files.cert}`);
        }
      }
      return { certificateId: record.certificateId, certificateArn: arn };
    }
    report('info', `recorded certificate ${record.certificateId} is gone or revoked; requesting a new one`);
  }
  run.changed = true;
  if (opts.dryRun) {
    report('would', `request a certificate for ${files.csr} (CreateCertificateFromCsr, active)`);
    return undefined;
  }
  const created = await call(run, 'create a certificate from the CSR', () =>
    iot.send(new CreateCertificateFromCsrCommand({ certificateSigningRequest: csrPem, setAsActive: true })),
  );
  const { certificateId, certificateArn, certificatePem } = created;
  if (!certificateId || !certificateArn || !certificatePem)
    throw new ProvisionError('AWS_ERROR', 'CreateCertificateFromCsr returned no certificate');
  report('created', `certificate ${certificateId} (active)`);
  warnIfForeignKey(certificatePem, keyHash, report);
  await writeFileAtomic(files.cert, certificatePem.trimEnd() + '\n', { mode: 0o644 });
  const rec: CertRecord = {
    certificateId,
    certificateArn,
    thing: opts.thing,
    publicKeySha256: keyHash,
    via: 'register',
    createdAt: new Date().toISOString(),
  };
  await writeRecord(files.record, rec);
  report('written', `certificate ${files.cert} and its record ${files.record}`);
  return { certificateId, certificateArn };
}

/**
 * AWS IoT signs the CSR's own public key. moto (our test stand-in) issues a certificate for a key of its own
 * instead; we say so rather than fail, and `provision check` flags such a certificate.
 */
function warnIfForeignKey(certPem: string, keyHash: string, report: Reporter): void {
  if (parseCert(certPem).publicKeySha256 !== keyHash)
    report(
      'warn',
      'the returned certificate does not carry this box\'s public key; "meterlink provision check" will fail ' +
        'until a proper certificate is installed',
    );
}

async function ensureAttachments(run: Run, certificateArn: string | undefined): Promise<void> {
  const { iot, opts } = run;
  const { report, thing, policy } = opts;
  if (!certificateArn) {
    report('would', `attach the new certificate to thing ${thing} and to policy ${policy}`);
    return;
  }
  const principals = await call(run, `list the principals of thing "${thing}"`, () =>
    iot.send(new ListThingPrincipalsCommand({ thingName: thing })),
  );
  if (principals.principals?.includes(certificateArn))
    report('unchanged', `certificate attached to thing ${thing}`);
  else {
    run.changed = true;
    if (opts.dryRun) report('would', `attach certificate to thing ${thing}`);
    else {
      await call(run, `attach the certificate to thing "${thing}"`, () =>
        iot.send(new AttachThingPrincipalCommand({ thingName: thing, principal: certificateArn })),
      );
      report('created', `attachment certificate → thing ${thing}`);
    }
  }
  const attached = await call(run, 'list the policies of the certificate', () =>
    iot.send(new ListAttachedPoliciesCommand({ target: certificateArn })),
  );
  if (attached.policies?.some((p) => p.policyName === policy))
    report('unchanged', `policy ${policy} attached to certificate`);
  else {
    run.changed = true;
    if (opts.dryRun) report('would', `attach policy ${policy} to certificate`);
    else {
      await call(run, `attach policy "${policy}" to the certificate`, () =>
        iot.send(new AttachPolicyCommand({ policyName: policy, target: certificateArn })),
      );
      report('created', `attachment policy ${policy} → certificate`);
    }
  }
}

async function writeCa(run: Run): Promise<void> {
  const { files, report, dryRun } = run.opts;
  const onDisk = await readIfExists(files.ca);
  if (onDisk === AMAZON_ROOT_CA_1_PEM) return report('unchanged', `Amazon Root CA 1 at ${files.ca}`);
  run.changed = true;
  if (dryRun) return report('would', `write Amazon Root CA 1 to ${files.ca}`);
  await writeFileAtomic(files.ca, AMAZON_ROOT_CA_1_PEM, { mode: 0o644 });
  report('written', `Amazon Root CA 1 to ${files.ca}`);
}
