/**
 * `waitFor(check, {timeout, interval, what})`: resolves with the first truthy value of `check()`, for
 * conditions that have no event to listen to (a file appearing, a port accepting). Not a sleep: it returns as
 * soon as the condition holds. Throw `GiveUp` from a check to stop waiting at once. One implementation,
 * shared with the demo (agent/demo/process.ts `waitUntil`).
 */
export { StopWaiting as GiveUp, waitUntil as waitFor } from '../../agent/demo/process.js';

export type { WaitUntilOptions as WaitOptions } from '../../agent/demo/process.js';

/**
 * How long a test waits for a `meterlink run` child to come up (connect, publish its first event or sample).
 * Children run from source through tap's TypeScript loader with coverage: about 2 s on an idle machine, over
 * 30 s measured at load 10 (a CI soak beside qemu emulation). Only start-up waits use it; waits for work after
 * start keep their own, shorter bounds or `progress`.
 */
export const AGENT_START_MS = 90_000;
