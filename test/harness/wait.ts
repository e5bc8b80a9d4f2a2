import { setTimeout as delay } from 'node:timers/promises';

export interface WaitOptions {
  /** Give up after this many ms (default 10 s). */
  timeout?: number;
  /** Re-check this often, in ms (default 20). */
  interval?: number;
  /** Says what was awaited, for the timeout error. */
  what?: string;
}

/** Thrown from a `waitFor` check to stop waiting at once (the awaited thing can no longer happen). */
export class GiveUp extends Error {}

/**
 * Resolves with the first truthy value of `check()`, re-checking until `timeout`. For conditions that have
 * no event to listen to (a file appearing, a port accepting). Not a sleep: it returns as soon as it holds.
 */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  opts: WaitOptions = {},
): Promise<NonNullable<T>> {
  const timeout = opts.timeout ?? 10_000;
  const interval = opts.interval ?? 20;
  const deadline = Date.now() + timeout;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeout} ms waiting for ${opts.what ?? 'a condition'}${why}`);
    }
    await delay(interval);
  }
}
