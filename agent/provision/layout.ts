/**
 * Where provisioning puts things on the box. One directory (default /etc/meterlink) holds the key, CSR,
 * certificate, its record and the CA; the config file says where the agent finds them.
 */
import { join } from 'node:path';

export const DEFAULT_DIR = '/etc/meterlink';
export const DEFAULT_CONFIG = '/etc/meterlink/config.yaml';
/** The systemd service runs as this user; it must be able to read the key, nobody else. */
export const SERVICE_USER = 'meterlink';

export interface Layout {
  readonly dir: string;
  readonly key: string;
  readonly csr: string;
  readonly cert: string;
  /** JSON record of the registered certificate (id, ARN, public-key hash, thing) for idempotent re-runs. */
  readonly record: string;
  readonly ca: string;
}

/** `name` = "device" for the live credentials; rotation stages new ones under another name first. */
export function layout(dir: string, name = 'device'): Layout {
  return {
    dir,
    key: join(dir, `${name}.key`),
    csr: join(dir, `${name}.csr`),
    cert: join(dir, `${name}.crt`),
    record: join(dir, `${name}.crt.json`),
    ca: join(dir, 'AmazonRootCA1.pem'),
  };
}
