/**
 * `provision key`: the device's own key pair, made here and never leaving the box, plus a CSR (CN = thing)
 * that is safe to hand to anyone.
 */
import { isValidThingName } from '../../cloud-contract/topics.js';
import { ProvisionError } from './errors.js';
import { readIfExists, serviceOwner, writeFileAtomic, type Owner } from './fs-util.js';
import { createCsrPem, generateKeyPem, keyPublicSha256, parseCsr, readDeviceKey } from './keys.js';
import { SERVICE_USER, type Layout } from './layout.js';
import type { Reporter } from './report.js';

export function assertThing(thing: string): void {
  if (!isValidThingName(thing))
    throw new ProvisionError(
      'BAD_THING_NAME',
      `invalid thing name ${JSON.stringify(thing)}: use 1–128 letters, digits, ":", "_" or "-" ` +
        '(it becomes the AWS IoT thing name and the MQTT client id)',
      { thing },
    );
}

export interface KeyOptions {
  thing: string;
  files: Layout;
  /** Replace an existing key (the certificate made for it stops working). */
  force?: boolean;
  /** Owner of the key; default: the service user when running as root and it exists. */
  owner?: Owner | undefined;
  report: Reporter;
}

export interface KeyResult {
  readonly keyPem: string;
  readonly csrPem: string;
  readonly keyCreated: boolean;
}

export async function ensureDeviceKey(opts: KeyOptions): Promise<KeyResult> {
  assertThing(opts.thing);
  const { files, report } = opts;
  const owner = 'owner' in opts ? opts.owner : await serviceOwner(SERVICE_USER);
  let keyPem: string | undefined;
  if (!opts.force && (await readIfExists(files.key)) !== undefined) {
    keyPem = await readDeviceKey(files.key);
    report('unchanged', `device key ${files.key} (kept; --force makes a new one)`);
  }
  const keyCreated = keyPem === undefined;
  if (keyPem === undefined) {
    keyPem = generateKeyPem();
    await writeFileAtomic(files.key, keyPem, { mode: 0o600, owner });
    report(
      'created',
      `device key ${files.key} (EC P-256, mode 0600${owner ? `, owner uid ${owner.uid}` : ''})`,
    );
  }
  const csrPem = await ensureCsr(files.csr, keyPem, opts.thing, report);
  return { keyPem, csrPem, keyCreated };
}

/** Writes the CSR unless the one on disk already has this CN and this key. */
export async function ensureCsr(
  path: string,
  keyPem: string,
  thing: string,
  report: Reporter,
): Promise<string> {
  const existing = await readIfExists(path);
  if (existing !== undefined) {
    try {
      const info = parseCsr(existing);
      if (info.cn === thing && info.publicKeySha256 === keyPublicSha256(keyPem)) {
        report('unchanged', `CSR ${path} (CN=${thing})`);
        return existing;
      }
    } catch {
      // An unreadable CSR is simply made again: it holds nothing secret.
    }
  }
  const csrPem = await createCsrPem(keyPem, thing);
  await writeFileAtomic(path, csrPem, { mode: 0o644 });
  report(existing === undefined ? 'created' : 'updated', `CSR ${path} (CN=${thing})`);
  return csrPem;
}

/**
 * The CSR to send for `thing`: the one on disk, checked against the thing name and the key (a CSR made for
 * another thing or another key would get a certificate this box cannot use).
 */
export async function csrFor(path: string, keyPem: string, thing: string): Promise<string> {
  const pem = await readIfExists(path);
  if (pem === undefined)
    throw new ProvisionError(
      'KEY_MISSING',
      `no CSR at ${path}: run "meterlink provision key --thing ${thing}" first`,
      { path },
    );
  const info = parseCsr(pem);
  if (info.cn !== thing)
    throw new ProvisionError(
      'CSR_THING_MISMATCH',
      `the CSR ${path} is for CN=${info.cn ?? '(none)'}, not for thing "${thing}": run ` +
        `"meterlink provision key --thing ${thing}" to make a CSR for this thing, or pass --thing ${info.cn ?? 'NAME'}`,
      { path, csrCn: info.cn, thing },
    );
  if (info.publicKeySha256 !== keyPublicSha256(keyPem))
    throw new ProvisionError(
      'CSR_KEY_MISMATCH',
      `the CSR ${path} was not made from this box's key: run "meterlink provision key --thing ${thing}" ` +
        'to make it again',
      { path },
    );
  return pem;
}
