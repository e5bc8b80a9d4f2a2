/** METERLINK_TEST_TIME_SCALE: default 1, a number ≥ 1, anything else refused. */
import t from 'tap';
import { parseTimeScale, scaled, TIME_SCALE } from './pace.js';

t.test('default 1, numbers >= 1 accepted', async (t) => {
  t.equal(parseTimeScale(undefined), 1);
  t.equal(parseTimeScale(''), 1);
  t.equal(parseTimeScale('1'), 1);
  t.equal(parseTimeScale('8'), 8);
  t.equal(parseTimeScale('2.5'), 2.5);
});

t.test('anything that could shorten a deadline, or is not a number, is refused', async (t) => {
  for (const raw of ['0', '0.5', '-3', 'ten', 'Infinity', 'NaN'])
    t.throws(
      () => parseTimeScale(raw),
      { message: /METERLINK_TEST_TIME_SCALE=.*must be a number >= 1/ },
      raw,
    );
});

t.test('scaled() multiplies by this process factor', async (t) => {
  t.equal(scaled(1500), Math.round(1500 * TIME_SCALE));
});
