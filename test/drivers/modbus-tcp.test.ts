/** Modbus TCP (MBAP) and RTU-over-TCP against the simulator's TCP server. */
import t from 'tap';
import { valueToNumber } from '../../cloud-contract/sample.js';
import { isDriverError } from '../../drivers/errors.js';
import { createModbusMeter } from '../../drivers/modbus/meter.js';
import { startModbusSimulator } from '../../drivers/simulator/modbus-simulator.js';

for (const framing of ['mbap', 'rtu'] as const) {
  t.test(`TCP with ${framing} framing: reads, faults, and a server that goes away`, async (t) => {
    const fixed = Date.UTC(2024, 0, 15, 8);
    const sim = await startModbusSimulator({
      transport: { kind: 'tcp', port: 0, framing },
      units: [
        { unit: 1, profile: 'carlo-gavazzi-em340' },
        { unit: 2, profile: 'schneider-iem3155' },
      ],
      now: () => fixed,
    });
    let stopped = false;
    t.teardown(() => (stopped ? undefined : sim.stop()));
    const transport =
      framing === 'mbap'
        ? ({ kind: 'tcp', host: '127.0.0.1', port: sim.port! } as const)
        : ({ kind: 'rtu-over-tcp', host: '127.0.0.1', port: sim.port! } as const);
    const mk = (unit: number, profile: string) =>
      createModbusMeter({
        id: `${profile}`,
        transport,
        unit,
        profile,
        timeout: 500,
        retries: 0,
        backoffMs: 0,
      });
    const a = mk(1, 'carlo-gavazzi-em340');
    const b = mk(2, 'schneider-iem3155');
    t.teardown(() => Promise.all([a.close(), b.close()]));
    const [ra, rb] = await Promise.all([a.read(), b.read()]);
    for (const [r, unit] of [
      [ra, 1],
      [rb, 2],
    ] as const) {
      t.equal(r.flags, 0);
      const exp = sim.unit(unit).expected();
      for (const [ch, v] of Object.entries(r.values))
        t.equal(valueToNumber(v), exp[ch], `unit ${unit} ${ch}`);
    }
    sim.setFaults(1, { exception: 4 });
    t.ok(isDriverError(await a.read().catch((e: unknown) => e), 'MODBUS_EXCEPTION'));
    sim.setFaults(1, { wrongUnit: 7 });
    t.ok(isDriverError(await a.read().catch((e: unknown) => e), 'WRONG_UNIT'));
    sim.setFaults(1, { dropRate: 1 });
    t.ok(isDriverError(await a.read().catch((e: unknown) => e), 'TIMEOUT'));
    sim.setFaults(1, {});
    t.equal((await a.read()).flags, 0, 'recovers');
    await sim.stop();
    stopped = true;
    const gone = await b.read().catch((e: unknown) => e);
    t.ok(isDriverError(gone, 'PORT_GONE') || isDriverError(gone, 'TIMEOUT'), `server gone: ${String(gone)}`);
  });
}
