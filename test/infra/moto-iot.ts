/**
 * moto_server with `iot.use_valid_cert` on, so that IoT certificate ids are the SHA-256 of the certificate's
 * DER, as AWS IoT computes them (moto's default hashes the PEM text; its config API cannot switch this).
 * Same shape as test/harness/moto.ts's `Moto`; lives here because only the infra tests need it.
 */
import type { Moto } from '../harness/moto.js';
import { freePort } from '../harness/net.js';
import { spawnLogged } from '../harness/process.js';
import type { Teardown } from '../harness/tmp.js';
import { GiveUp, waitFor } from '../harness/wait.js';

const BOOT = [
  'import sys',
  'from moto.settings import default_user_config',
  "default_user_config.setdefault('iot', {})['use_valid_cert'] = True",
  'from moto.server import main',
  "main(['-H', '127.0.0.1', '-p', sys.argv[1]])",
].join('\n');

export async function startMotoValidCerts(t: Teardown): Promise<Moto> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const proc = spawnLogged('python3', ['-c', BOOT, String(port)], {
    env: { ...process.env, MOTO_ALLOW_NONEXISTENT_REGION: 'true' },
  });
  t.teardown(() => proc.kill('SIGKILL'));
  await waitFor(
    async () => {
      if (proc.child.exitCode !== null)
        throw new GiveUp(`moto_server exited: ${proc.output() || 'is moto installed?'}`);
      return (await fetch(`${endpoint}/moto-api/data.json`)).ok;
    },
    { what: `moto_server on ${endpoint}`, timeout: 30_000, interval: 50 },
  );
  return {
    endpoint,
    region: 'eu-west-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    async reset() {
      const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
      if (!res.ok) throw new Error(`moto reset failed: ${res.status}`);
    },
  };
}
