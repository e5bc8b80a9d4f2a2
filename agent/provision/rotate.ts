/**
 * `provision rotate`: a new key and CSR, a certificate for them, then the switch.
 *
 * The new key and certificate are staged under new file names next to the old ones; the old pair stays in
 * the config — and in use — until the new certificate has connected and published a health message. The
 * switch itself is one atomic rename of the config file (it names the key and certificate files), so the
 * agent sees either the old pair or the new pair, never a mix. The old files are left on disk and the old
 * certificate in AWS IoT, for the installer to retire once the agent runs on the new one.
 */
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { readRecord } from './cert-record.js';
import { readProvisioned, updateConfigFile } from './config-file.js';
import { ensureDeviceKey } from './device-key.js';
import { ProvisionError } from './errors.js';
import { fleetProvision } from './fleet.js';
import { layout, type Layout } from './layout.js';
import { openMqttSession, publishHealth } from './mqtt.js';
import { register, type AwsOptions } from './register.js';
import type { Reporter } from './report.js';

export type RotateVia =
  | ({ kind: 'register'; policy: string } & AwsOptions)
  | { kind: 'fleet'; template: string; parameters?: Record<string, string> };

export interface RotateOptions {
  configPath: string;
  via: RotateVia;
  connectTimeoutMs?: number;
  report: Reporter;
  /** Name of the staged files (default `device-<UTC timestamp>`). */
  stageName?: string;
}

export interface RotateResult {
  readonly key: string;
  readonly cert: string;
  readonly oldCertificateId: string | undefined;
  readonly newCertificateId: string | undefined;
}

function stamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
}

export async function rotate(opts: RotateOptions): Promise<RotateResult> {
  const { report } = opts;
  const cfg = await readProvisioned(opts.configPath);
  const c = cfg?.cloud ?? {};
  const thing = cfg?.thing;
  if (
    typeof thing !== 'string' ||
    typeof c.endpoint !== 'string' ||
    typeof c.key !== 'string' ||
    typeof c.cert !== 'string'
  )
    throw new ProvisionError(
      'NOT_PROVISIONED',
      `${opts.configPath} has no thing/cloud.endpoint/cloud.key/cloud.cert to rotate from: provision the box ` +
        'first (meterlink provision register or fleet)',
      { path: opts.configPath },
    );
  const endpoint = c.endpoint;
  const port = typeof c.port === 'number' ? c.port : 8883;
  const caFile = typeof c.ca === 'string' ? c.ca : undefined;
  const old = { key: c.key, cert: c.cert };
  const oldRecord = await readRecord(`${old.cert}.json`);
  const staged: Layout = layout(dirname(old.key), opts.stageName ?? `device-${stamp(new Date())}`);
  const timeoutMs = opts.connectTimeoutMs ?? 20_000;
  report('info', `rotating ${thing}: new key and certificate staged as ${staged.key}, ${staged.cert}`);

  let newCertificateId: string | undefined;
  const discardStaged = async () => {
    for (const f of [staged.key, staged.csr, staged.cert, staged.record]) await rm(f, { force: true });
  };
  try {
    if (opts.via.kind === 'register') {
      await ensureDeviceKey({ thing, files: staged, force: true, report });
      const res = await register({ ...opts.via, thing, files: staged, report });
      newCertificateId = res.certificateId;
    } else {
      // Fleet provisioning with the current certificate as the claim: the policy of a provisioned device
      // may allow the provisioning topics for exactly this.
      const res = await fleetProvision({
        thing,
        claimCert: old.cert,
        claimKey: old.key,
        template: opts.via.template,
        parameters: opts.via.parameters ?? {},
        endpoint,
        port,
        caFile,
        files: staged,
        newKey: true,
        prove: false,
        timeoutMs,
        report,
      });
      newCertificateId = res.certificateId;
    }

    // The proof: the new pair connects and publishes before anything points at it.
    let session;
    try {
      session = await openMqttSession({
        endpoint,
        port,
        caFile,
        certFile: staged.cert,
        keyFile: staged.key,
        clientId: thing,
        timeoutMs,
      });
    } catch (err) {
      throw new ProvisionError(
        'CONNECT_FAILED',
        `the new certificate could not connect (${(err as Error).message}); nothing was switched, the agent ` +
          `keeps using ${old.cert}`,
        { endpoint, port },
        { cause: err },
      );
    }
    try {
      await publishHealth(session, thing, { event: 'certificate-rotated', certificateId: newCertificateId });
    } finally {
      await session.close();
    }
    report('ok', `new certificate connected to ${endpoint}:${port} and published health`);
  } catch (err) {
    await discardStaged();
    report('info', `staged files removed; ${old.key} and ${old.cert} stay in use`);
    throw err;
  }

  await updateConfigFile(opts.configPath, {
    thing,
    cloud: { endpoint, port, ca: caFile ?? staged.ca, cert: staged.cert, key: staged.key },
  });
  report('updated', `config ${opts.configPath} now names ${staged.cert} (switched atomically)`);
  report(
    'info',
    `old key ${old.key} and certificate ${old.cert}${oldRecord ? ` (${oldRecord.certificateId})` : ''} kept; ` +
      'delete them once the agent runs on the new pair',
  );
  return { key: staged.key, cert: staged.cert, oldCertificateId: oldRecord?.certificateId, newCertificateId };
}
