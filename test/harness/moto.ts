/**
 * moto_server (Python moto, installed on these machines and in CI) on a free loopback port: our stand-in
 * for AWS control-plane and data APIs we cannot reach from tests (IoT, Kinesis, Timestream write,
 * DynamoDB, S3). Point an AWS SDK v3 client at `endpoint` with `credentials` and `region`.
 */
import { freePort } from './net.js';
import { spawnLogged } from './process.js';
import type { Teardown } from './tmp.js';
import { GiveUp, waitFor } from './wait.js';

export interface Moto {
  readonly endpoint: string;
  readonly region: string;
  readonly credentials: { accessKeyId: string; secretAccessKey: string };
  /** Wipes all state (moto's reset API), for tests that share one server. */
  reset(): Promise<void>;
}

export async function startMoto(t: Teardown): Promise<Moto> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const proc = spawnLogged('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
    env: { ...process.env, MOTO_ALLOW_NONEXISTENT_REGION: 'true' },
  });
  t.teardown(() => proc.kill('SIGKILL'));
  await waitFor(
    async () => {
      if (proc.child.exitCode !== null)
        throw new GiveUp(`moto_server exited: ${proc.output() || 'is moto installed?'}`);
      const res = await fetch(`${endpoint}/moto-api/data.json`);
      return res.ok;
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
