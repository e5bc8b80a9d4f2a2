import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Anything with tap's `teardown` (a `Test`). Kept structural so the harness does not depend on tap types. */
export interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A fresh directory under the OS temp dir, removed (recursively) when the test ends. */
export async function tempDir(t: Teardown, prefix = 'meterlink-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
