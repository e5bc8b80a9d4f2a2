/**
 * waitFor (agent/demo/process.ts `waitUntil`): returns as soon as the check holds, fails after `timeout`,
 * and with `progress` fails only when the work has stopped advancing for `timeout`.
 */
import t from 'tap';
import { GiveUp, waitFor } from './wait.js';

t.test('returns the first truthy value as soon as it holds', async (t) => {
  let n = 0;
  const v = await waitFor(() => (++n >= 3 ? { n } : undefined), { interval: 1 });
  t.same(v, { n: 3 });
});

t.test('times out with what it waited for and the last error', async (t) => {
  await t.rejects(
    waitFor(
      () => {
        throw new Error('not yet');
      },
      { timeout: 30, interval: 5, what: 'the thing' },
    ),
    { code: 'TIMEOUT', message: /^timed out after 30 ms waiting for the thing \(last error: not yet\)$/ },
  );
});

t.test('GiveUp stops at once', async (t) => {
  let calls = 0;
  await t.rejects(
    waitFor(
      () => {
        calls++;
        throw new GiveUp('cannot happen any more');
      },
      { timeout: 10_000 },
    ),
    { message: 'cannot happen any more' },
  );
  t.equal(calls, 1);
});

t.test('progress: work that keeps advancing may take longer than the timeout', async (t) => {
  // The work advances one step per check and is done after 40 checks, i.e. well past 5 timeouts' worth of
  // checks at this interval; counted in checks, not in ms, so that a busy machine cannot change the outcome.
  let step = 0;
  const started = Date.now();
  const v = await waitFor(() => (++step >= 40 ? step : undefined), {
    timeout: 50,
    interval: 10,
    progress: () => step,
  });
  t.equal(v, 40);
  t.ok(Date.now() - started >= 300, 'it ran longer than the 50 ms timeout');
});

t.test('progress: work that stops advancing fails after the timeout, saying where it stuck', async (t) => {
  let step = 0;
  await t.rejects(
    waitFor(() => false, {
      timeout: 50,
      interval: 5,
      what: 'the drain',
      progress: () => Math.min(++step, 7),
    }),
    {
      code: 'TIMEOUT',
      message: /^timed out after 50 ms without progress \(stuck at 7\) waiting for the drain$/,
    },
  );
});
