/**
 * Fault injection over a pty: timeouts, CRC errors, exception answers, a wrong unit id, slow answers, a
 * partial poll, a meter that keeps failing (backoff) and one that disappears and comes back.
 */
import t from 'tap';
import { QualityFlag } from '../../cloud-contract/sample.js';
import { isDriverError } from '../../drivers/errors.js';
import { createModbusMeter, type ModbusMeterOptions } from '../../drivers/modbus/meter.js';
import { eastronSdm630 } from '../../drivers/profiles/eastron-sdm630.js';
import { startModbusSimulator } from '../../drivers/simulator/modbus-simulator.js';
import { startPtyPair } from '../harness/pty.js';
import { waitFor } from '../harness/wait.js';
import type { Teardown } from '../harness/tmp.js';

async function rig(t: Teardown, extra: Partial<ModbusMeterOptions> = {}, clock?: { now: number }) {
  const pty = await startPtyPair(t);
  const sim = await startModbusSimulator({
    transport: { kind: 'rtu', path: pty.a },
    units: [
      { unit: 1, profile: 'eastron-sdm630' },
      { unit: 2, profile: 'carlo-gavazzi-em340' },
    ],
  });
  t.teardown(() => sim.stop());
  const opts = { transport: { kind: 'rtu', port: pty.b } as const, timeout: 300, retries: 0, ...extra };
  const deps = clock ? { now: () => clock.now } : {};
  const m1 = createModbusMeter({ id: 'one', unit: 1, profile: 'eastron-sdm630', ...opts }, deps);
  const m2 = createModbusMeter({ id: 'two', unit: 2, profile: 'carlo-gavazzi-em340', ...opts }, deps);
  t.teardown(() => Promise.all([m1.close(), m2.close()]));
  return { pty, sim, m1, m2 };
}

const failure = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the read to fail');
};

t.test('a silent meter times out, backs off, does not block its neighbour, and recovers', async (t) => {
  const clock = { now: 1_000_000 };
  const { sim, m1, m2 } = await rig(t, { backoffMs: 5000 }, clock);
  sim.setFaults(1, { dropRate: 1 });
  const e1 = await failure(m1.read());
  t.ok(isDriverError(e1, 'TIMEOUT'), `timeout: ${String(e1)}`);
  t.match((e1 as Error).message, /meter one: no answer within 300 ms/);
  t.equal(sim.unit(1).requests, 1, 'gave up after the first block: nothing answers');
  t.ok(isDriverError(await failure(m1.read()), 'TIMEOUT'), 'second failure');
  const before = sim.unit(1).requests;
  const e3 = await failure(m1.read());
  t.ok(isDriverError(e3, 'BACKOFF'), 'third poll is skipped: backoff');
  t.equal(sim.unit(1).requests, before, 'backoff costs no bus time');
  t.equal((await m2.read()).flags, 0, 'the other meter on the bus reads fine meanwhile');
  sim.setFaults(1, {});
  clock.now += 5001;
  const r = await m1.read();
  t.equal(r.flags, 0, 'recovered on its own after the backoff');
  clock.now += 1;
  t.equal((await m1.read()).flags, 0, 'and the backoff is reset');
});

t.test('a corrupted CRC is a CRC error; a retry gets the good answer', async (t) => {
  const { sim, m1 } = await rig(t);
  sim.setFaults(1, { corruptCrcRate: 1 });
  t.ok(isDriverError(await failure(m1.read()), 'CRC'));
  const { m1: retrying, sim: sim2 } = await rig(t, { retries: 2 });
  sim2.setFaults(1, { corruptCrcRate: 0.5 });
  const outcomes = new Set<string>();
  for (let i = 0; i < 6; i++) {
    try {
      const r = await retrying.read();
      outcomes.add(r.flags === 0 ? 'ok' : 'partial');
    } catch (err) {
      outcomes.add(isDriverError(err) ? err.code : 'other');
    }
  }
  t.ok(outcomes.has('ok'), `retries get through: ${[...outcomes].join(',')}`);
});

t.test('exception answers carry the exception code and flag a meter error', async (t) => {
  const { sim, m1 } = await rig(t, { backoffMs: 0 });
  for (const code of [2, 4, 0x0b]) {
    sim.setFaults(1, { exception: code });
    const e = await failure(m1.read());
    t.ok(isDriverError(e, 'MODBUS_EXCEPTION'));
    t.equal((e as { context: { exceptionCode: number } }).context.exceptionCode, code);
  }
});

t.test('an answer from another unit id is WRONG_UNIT', async (t) => {
  const { sim, m2 } = await rig(t);
  sim.setFaults(2, { wrongUnit: 9 });
  const e = await failure(m2.read());
  t.ok(isDriverError(e, 'WRONG_UNIT'), String(e));
});

t.test('a slow answer within the timeout is fine; beyond it is a timeout', async (t) => {
  const { sim, m2 } = await rig(t);
  sim.setFaults(2, { delayMs: 50 });
  t.equal((await m2.read()).flags, 0);
  sim.setFaults(2, { delayMs: 600 });
  t.ok(isDriverError(await failure(m2.read()), 'TIMEOUT'));
  sim.setFaults(2, {});
  // The late answers of the abandoned request must not be taken for the next one.
  await waitFor(() => sim.unit(2).answers >= 4, { timeout: 5000 });
  t.equal((await m2.read()).flags, 0, 'next poll is clean');
});

t.test('a block the meter refuses makes a partial reading naming the missing channels', async (t) => {
  const pty = await startPtyPair(t);
  const sim = await startModbusSimulator({
    transport: { kind: 'rtu', path: pty.a },
    units: [{ unit: 3, profile: 'eastron-sdm630' }],
  });
  t.teardown(() => sim.stop());
  // An inline map: the SDM630's registers plus one far beyond what the meter has (exception 2).
  const meter = createModbusMeter({
    id: 'inline',
    transport: { kind: 'rtu', port: pty.b },
    unit: 3,
    profile: {
      ...eastronSdm630,
      name: 'custom-sdm630x',
      registers: [
        ...eastronSdm630.registers,
        { channel: 'power_import_w', function: 'input', address: 0x0500, type: 'float32', unit: 'W' },
      ],
    },
  });
  t.teardown(() => meter.close());
  const r = await meter.read();
  t.equal(r.flags, QualityFlag.partial | QualityFlag.meterError);
  t.same(r.missing, ['power_import_w']);
  t.equal(r.errors.length, 1);
  t.ok(isDriverError(r.errors[0], 'MODBUS_EXCEPTION'));
  t.ok(r.values.voltage_l1_v, 'the rest was read');
});

t.test('an unplugged adapter is PORT_GONE; after replug the next poll works', async (t) => {
  const { pty, m1 } = await rig(t);
  t.equal((await m1.read()).flags, 0);
  await pty.unplug();
  const e = await failure(m1.read());
  t.ok(isDriverError(e, 'PORT_GONE') || isDriverError(e, 'TIMEOUT'), `unplugged: ${String(e)}`);
  const e2 = await failure(m1.read());
  t.ok(isDriverError(e2, 'PORT_GONE') || isDriverError(e2, 'BACKOFF'), `still unplugged: ${String(e2)}`);
  await pty.replug();
  // The simulator reopens its end by itself; the meter reopens on its next poll after the backoff.
  const r = await waitFor(
    async () => {
      try {
        return await m1.read();
      } catch {
        return undefined;
      }
    },
    { timeout: 15_000, interval: 200, what: 'a read after replug' },
  );
  t.equal(r.flags, 0);
});

t.test('closed meters and bad options fail clearly', async (t) => {
  const { m1, pty } = await rig(t);
  await m1.close();
  t.ok(isDriverError(await failure(m1.read()), 'CLOSED'));
  t.throws(
    () =>
      createModbusMeter({ id: 'x', transport: { kind: 'rtu', port: pty.b }, unit: 0, profile: 'abb-b23' }),
    {
      code: 'PROFILE_INVALID',
    },
  );
  t.throws(
    () =>
      createModbusMeter({
        id: 'y',
        transport: { kind: 'rtu', port: pty.b, baud: 2400 },
        unit: 4,
        profile: 'abb-b23',
      }),
    { code: 'PORT_OPEN_FAILED', message: /disagree on serial settings/ },
  );
  const missing = createModbusMeter({
    id: 'z',
    transport: { kind: 'rtu', port: '/nonexistent/tty' },
    unit: 1,
    profile: 'abb-b23',
  });
  t.ok(isDriverError(await failure(missing.read()), 'PORT_OPEN_FAILED'));
  await missing.close();
});
