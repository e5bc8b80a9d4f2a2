/**
 * Every built-in profile read end to end over a kernel pty against the simulator: eight meters on one
 * RS-485 "bus", polled concurrently through one shared connection and queue.
 */
import t from 'tap';
import { valueToNumber } from '../../cloud-contract/sample.js';
import { openBuses } from '../../drivers/modbus/bus.js';
import { createModbusMeter } from '../../drivers/modbus/meter.js';
import { builtinProfiles } from '../../drivers/profiles/index.js';
import { startModbusSimulator } from '../../drivers/simulator/modbus-simulator.js';
import { startPtyPair } from '../harness/pty.js';

t.test('all built-in profiles on one bus read exactly what the simulator serves', async (t) => {
  const pty = await startPtyPair(t);
  const fixed = Date.UTC(2024, 6, 1, 12);
  const names = Object.keys(builtinProfiles);
  const sim = await startModbusSimulator({
    transport: { kind: 'rtu', path: pty.a, baud: 19200 },
    units: names.map((profile, i) => ({ unit: i + 1, profile })),
    now: () => fixed, // frozen values: what was served is what must be read
  });
  t.teardown(() => sim.stop());
  const meters = names.map((profile, i) =>
    createModbusMeter({
      id: profile,
      transport: { kind: 'rtu', port: pty.b, baud: 19200 },
      unit: i + 1,
      profile,
      timeout: 2000,
    }),
  );
  t.teardown(() => Promise.all(meters.map((m) => m.close())));
  const readings = await Promise.all(meters.map((m) => m.read()));
  t.same(
    openBuses().filter((k) => k.includes(pty.b)),
    [`rtu:${pty.b}`],
    'one shared bus',
  );
  for (const [i, r] of readings.entries()) {
    const name = names[i]!;
    const unit = sim.unit(i + 1);
    const expected = unit.expected();
    t.equal(r.flags, 0, `${name}: clean read`);
    t.same(r.missing, []);
    t.same(Object.keys(r.values).sort(), builtinProfiles[name]!.registers.map((x) => x.channel).sort());
    for (const [ch, v] of Object.entries(r.values)) {
      t.equal(valueToNumber(v), expected[ch], `${name} ${ch}`);
      t.equal(valueToNumber(v), unit.served[ch], `${name} ${ch} as served`);
    }
    // Realistic values: mains voltage and frequency, counters that make sense.
    t.ok(Math.abs(valueToNumber(r.values.voltage_l1_v!) - 230) < 15, `${name} voltage ~230 V`);
    t.ok(Math.abs(valueToNumber(r.values.frequency_hz!) - 50) < 0.2, `${name} frequency ~50 Hz`);
    t.ok(valueToNumber(r.values.energy_import_kwh!) > 1000, `${name} import counter`);
  }
  // Lossless values: an int register keeps its raw mantissa, a float register stays f32.
  t.same(readings[names.indexOf('abb-b23')]!.values.frequency_hz, {
    type: 'int',
    mantissa: Math.round(sim.unit(names.indexOf('abb-b23') + 1).served.frequency_hz! * 100),
    exponent: -2,
  });
  t.equal(readings[names.indexOf('eastron-sdm630')]!.values.power_w!.type, 'f32');
  t.equal(
    readings[names.indexOf('schneider-iem3155')]!.values.power_w!.exponent,
    3,
    'kW → W in the exponent',
  );
  t.equal(readings[names.indexOf('schneider-iem3155')]!.values.energy_import_kwh!.exponent, -3, 'Wh → kWh');
  // Each poll cost exactly the planned number of requests.
  for (const [i, name] of names.entries())
    t.equal(sim.unit(i + 1).requests, expectedBlocks(name), `${name}: requests per poll`);
  await Promise.all(meters.map((m) => m.close()));
  t.same(
    openBuses().filter((k) => k.includes(pty.b)),
    [],
    'the bus closes with its last meter',
  );
});

function expectedBlocks(name: string): number {
  return (
    { 'abb-b23': 2, 'schneider-iem3155': 4, 'finder-7m38': 2, 'eastron-sdm120': 2, 'eastron-sdm230': 2 }[
      name
    ] ?? 3
  );
}

t.test('energy counters rise with the power the simulator serves between polls', async (t) => {
  const pty = await startPtyPair(t);
  let now = Date.UTC(2024, 6, 1, 18);
  const sim = await startModbusSimulator({
    transport: { kind: 'rtu', path: pty.a },
    units: [{ unit: 5, profile: 'eastron-sdm630', seed: 42 }],
    now: () => now,
  });
  t.teardown(() => sim.stop());
  const meter = createModbusMeter({
    id: 'm',
    transport: { kind: 'rtu', port: pty.b },
    unit: 5,
    profile: 'eastron-sdm630',
  });
  t.teardown(() => meter.close());
  const first = await meter.read();
  const p0 = valueToNumber(first.values.power_w!);
  now += 1000; // one model second: the counter integrates the power over it
  const second = await meter.read();
  const dE = valueToNumber(second.values.energy_import_kwh!) - valueToNumber(first.values.energy_import_kwh!);
  const expectedKwh = Math.max(0, valueToNumber(second.values.power_w!)) / 3.6e6;
  t.ok(p0 !== 0);
  // float32 counters resolve ~1 Wh at this size; the rise must match the power within that.
  t.ok(Math.abs(dE - expectedKwh) < 0.002, `counter rose ${dE} kWh for ${expectedKwh} kWh of power`);
});
