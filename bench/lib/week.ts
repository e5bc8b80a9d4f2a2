/**
 * A meter's readings as the agent would have buffered them: the simulator's apartment model, sampled at 1 Hz,
 * pushed through the profile's register codec exactly as the Modbus driver decodes it. Shared by bench:drain
 * and bench:footprint (backlog mode).
 */
import type { SampleInput, Value } from '../../cloud-contract/sample.js';
import { decodeRegister, encodeRegister } from '../../drivers/modbus/codec.js';
import type { ModbusProfile } from '../../drivers/modbus/profile.js';
import { createApartmentModel } from '../../drivers/simulator/apartment-model.js';

export function* readings(
  profile: ModbusProfile,
  n: number,
  start: number,
  meter = 'main',
): Generator<SampleInput> {
  const model = createApartmentModel(42, { start });
  for (let i = 0; i < n; i++) {
    const t = start + i * 1000;
    model.advanceTo(t);
    const ch = model.channels();
    const values: Record<string, Value> = {};
    for (const reg of profile.registers) {
      const d = decodeRegister(reg, encodeRegister(reg, ch[reg.channel] ?? 0));
      if (d.ok) values[reg.channel] = d.value;
    }
    // A poll loop's timestamps jitter by a few ms.
    yield { meter, ts: t + ((i * 7919) % 7) - 3, values, flags: 0 };
  }
}
