/**
 * `waitFor(check, {timeout, interval, what, progress})`: resolves with the first truthy value of `check()`, for
 * conditions that have no event to listen to (a file appearing, a port accepting). Not a sleep: it returns as
 * soon as the condition holds. Throw `GiveUp` from a check to stop waiting at once. One implementation,
 * shared with the demo (agent/demo/process.ts `waitUntil`).
 *
 * The `timeout` (default 10 s) is a deadline sized for native speed: it is stretched by the machine's time
 * scale (METERLINK_TEST_TIME_SCALE, test/harness/pace.ts; 1 unless scripts/test-arm64.sh sets it for
 * emulation), so a test that passes its own timeout stays exactly as strict on x64.
 */
import {
  StopWaiting,
  WAIT_DEFAULT_TIMEOUT_MS,
  waitUntil,
  type WaitUntilOptions,
} from '../../agent/demo/process.js';
import { scaled } from './pace.js';

export { StopWaiting as GiveUp };
export type { WaitUntilOptions as WaitOptions };

export function waitFor<T>(
  check: () => T | Promise<T>,
  opts: WaitUntilOptions = {},
): Promise<NonNullable<T>> {
  return waitUntil(check, { ...opts, timeout: scaled(opts.timeout ?? WAIT_DEFAULT_TIMEOUT_MS) });
}

/**
 * How long a test waits for a `meterlink run` child to come up (connect, publish its first event or sample).
 * Children run from source through tap's TypeScript loader with coverage: about 2 s on an idle machine, over
 * 30 s measured at load 10 (a CI soak beside qemu emulation). Only start-up waits use it; waits for work after
 * start keep their own, shorter bounds or `progress`. (Passed to waitFor, it is stretched by the time scale
 * like any timeout.)
 */
export const AGENT_START_MS = 90_000;
