/**
 * `waitFor(check, {timeout, interval, what})`: resolves with the first truthy value of `check()`, for
 * conditions that have no event to listen to (a file appearing, a port accepting). Not a sleep: it returns as
 * soon as the condition holds. Throw `GiveUp` from a check to stop waiting at once. One implementation,
 * shared with the demo (agent/demo/process.ts `waitUntil`).
 */
export { StopWaiting as GiveUp, waitUntil as waitFor } from '../../agent/demo/process.js';

export type { WaitUntilOptions as WaitOptions } from '../../agent/demo/process.js';
