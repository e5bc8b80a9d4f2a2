/**
 * The DSMR reader end to end over a socat pty pair: the emitter writes on end A, the reader reads end B.
 */
import t from 'tap';
import { intValue, QualityFlag, type Value } from '../../cloud-contract/sample.js';
import { createDsmrMeter, type DsmrMeterOptions, type DsmrMeterReader } from '../../drivers/dsmr/index.js';
import type { MeterReading } from '../../drivers/reader.js';
import {
  startDsmrEmitter,
  type DsmrEmitterOptions,
  type EmittedTelegram,
} from '../../drivers/simulator/dsmr-emitter.js';
import type { DsmrSnapshot } from '../../drivers/simulator/dsmr-model.js';
import type { DsmrFlavour } from '../../drivers/simulator/dsmr-render.js';
import { startPtyPair } from '../harness/pty.js';
import { waitFor } from '../harness/wait.js';

type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

/** What a reading of `flavour` must say for a snapshot: the model's integers, exactly. */
function expected(f: DsmrFlavour, s: DsmrSnapshot): Record<string, Value> {
  const v: Record<string, Value> = {
    energy_import_t1_kwh: intValue(s.importWh[0], -3),
    energy_import_t2_kwh: intValue(s.importWh[1], -3),
    energy_export_t1_kwh: intValue(s.exportWh[0], -3),
    energy_export_t2_kwh: intValue(s.exportWh[1], -3),
    energy_import_kwh: intValue(s.importWh[0] + s.importWh[1], -3),
    energy_export_kwh: intValue(s.exportWh[0] + s.exportWh[1], -3),
    tariff: intValue(s.tariff),
    gas_m3: intValue(s.gasL, -3),
  };
  if (f === '2.2') {
    const imp = Math.round(s.totalImportW / 10);
    const exp = Math.round(s.totalExportW / 10);
    return {
      ...v,
      power_import_w: intValue(imp, 1),
      power_export_w: intValue(exp, 1),
      power_w: intValue(imp - exp, 1),
    };
  }
  Object.assign(v, {
    power_import_w: intValue(s.totalImportW),
    power_export_w: intValue(s.totalExportW),
    power_w: intValue(s.totalImportW - s.totalExportW),
  });
  for (let i = 0; i < 3; i++) {
    const l = `l${i + 1}`;
    v[`power_import_${l}_w`] = intValue(s.importW[i]!);
    v[`power_export_${l}_w`] = intValue(s.exportW[i]!);
    v[`power_${l}_w`] = intValue(s.importW[i]! - s.exportW[i]!);
    v[`current_${l}_a`] =
      f === 'e-mucs' ? intValue(s.currentCa[i]!, -2) : intValue(Math.round(s.currentCa[i]! / 100));
    if (f !== '4') v[`voltage_${l}_v`] = intValue(s.voltageDv[i]!, -1);
    if (f !== 'e-mucs') {
      v[`voltage_sags_${l}`] = intValue(s.sags[i]!);
      v[`voltage_swells_${l}`] = intValue(s.swells[i]!);
    }
  }
  if (f === 'e-mucs') {
    v.power_avg_demand_w = intValue(s.avgDemandW);
    v.power_max_demand_w = intValue(s.maxDemandW);
  } else {
    v.power_failures = intValue(s.powerFailures);
    v.long_power_failures = intValue(s.longPowerFailures);
  }
  return v;
}

interface Rig {
  meter: DsmrMeterReader;
  sent: EmittedTelegram[];
  emitter: Awaited<ReturnType<typeof startDsmrEmitter>>;
  pty: Awaited<ReturnType<typeof startPtyPair>>;
}

async function rig(
  t: TapTest,
  emitterOpts: Partial<DsmrEmitterOptions>,
  meterOpts: Partial<DsmrMeterOptions> = {},
): Promise<Rig> {
  const pty = await startPtyPair(t);
  const sent: EmittedTelegram[] = [];
  const meter = createDsmrMeter({ id: 'grid', port: pty.b, readTimeoutMs: 10_000, ...meterOpts });
  const emitter = await startDsmrEmitter({
    path: pty.a,
    intervalMs: 40,
    stepMs: 1000,
    startTime: Date.UTC(2024, 5, 12, 10, 0, 0),
    onTelegram: (e) => sent.push(e),
    ...emitterOpts,
  });
  // Both ends closed before socat goes, whatever order tap runs teardowns in.
  t.teardown(async () => {
    await emitter.stop();
    await meter.close();
    await pty.stop();
  });
  return { meter, sent, emitter, pty };
}

const canonical = (v: Readonly<Record<string, Value>>) =>
  JSON.stringify(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)));

/**
 * The reading must be exactly what one of the good telegrams sent said. (The emitter reports a telegram after
 * its write drained, which can be a moment after the reader already has it: wait for the report.)
 */
async function assertMatchesSent(
  t: TapTest,
  f: DsmrFlavour,
  r: MeterReading,
  sent: readonly EmittedTelegram[],
) {
  const find = () =>
    sent
      .filter((e) => e.kind === 'good')
      .find((e) =>
        f === '2.2'
          ? canonical(expected(f, e.snapshot)) === canonical(r.values)
          : e.snapshot.time === r.meterTime,
      );
  const match = await waitFor(find, { what: 'the emitter to report the telegram read', timeout: 5000 }).catch(
    () => undefined,
  );
  t.ok(match, 'the reading is one the emitter sent');
  if (!match) return;
  t.same(r.values, expected(f, match.snapshot), 'every value exact');
  t.equal(r.flags, 0);
  t.same(r.missing, []);
  t.equal(r.serial, 'MLSIM0000000001');
  t.equal(r.channelTimes?.gas_m3, match.snapshot.gasTime, 'gas capture time');
}

for (const flavour of ['5', '4', 'e-mucs', '2.2'] as const) {
  t.test(`DSMR ${flavour} through a pty: readings equal the emitted model values`, async (t) => {
    const version = flavour === '2.2' ? '2.2' : flavour;
    const { meter, sent } = await rig(t, { flavour }, { version });
    let lastImport = -1;
    for (let i = 0; i < 3; i++) {
      const r = await meter.read();
      await assertMatchesSent(t, flavour, r, sent);
      const imp = r.values.energy_import_kwh!.mantissa;
      t.ok(imp >= lastImport, 'energy never goes backwards');
      lastImport = imp;
    }
    t.equal(meter.stats().crcErrors, 0);
    t.ok(meter.lastTelegram(), 'last telegram kept');
  });
}

t.test(
  'faults: corrupt CRCs, truncation and garbage are dropped and counted; good telegrams get through',
  async (t) => {
    const { meter, sent } = await rig(t, {
      flavour: '5',
      faults: { corruptCrcEvery: 2, truncateEvery: 5, garbageEvery: 3, garbageBytes: 64 },
    });
    for (let i = 0; i < 6; i++) await assertMatchesSent(t, '5', await meter.read(), sent);
    await waitFor(
      () => meter.stats().crcErrors >= 2 && meter.stats().truncated + meter.stats().badTelegrams >= 1,
      {
        what: 'fault counters',
      },
    );
    const s = meter.stats();
    t.ok(s.garbageBytes >= 64, `garbage counted (${s.garbageBytes} bytes)`);
    t.ok(s.telegrams >= 6);
  },
);

t.test('watchdog: a stalled meter gets its port reopened, and reads resume', async (t) => {
  const { meter, emitter, sent } = await rig(t, { flavour: '5' }, { watchdogMs: 300, readTimeoutMs: 250 });
  await meter.read();
  emitter.stall();
  await waitFor(() => meter.stats().watchdogReopens >= 2, { what: 'two watchdog reopens', timeout: 15_000 });
  await t.rejects(meter.read(), { code: 'TIMEOUT' }, 'a read during the stall times out');
  // watchdogReopens counts when the watchdog fires, opens once the new port is open: the second reopen can
  // still be under way (slow machines, emulation), so wait for it rather than assume 250 ms were enough.
  await waitFor(() => meter.stats().opens >= 3, { what: 'the second watchdog reopen to open the port' });
  t.ok(meter.stats().opens >= 3, 'the port was reopened');
  emitter.resume();
  const r = await waitFor(() => meter.read().catch(() => undefined), { what: 'a read after the stall' });
  await assertMatchesSent(t, '5', r, sent);
});

t.test('unplug and replug: PORT_GONE while away, readings again after', async (t) => {
  const { meter, pty, sent } = await rig(
    t,
    { flavour: '5' },
    { readTimeoutMs: 300, retryMs: 50, watchdogMs: 1000 },
  );
  await meter.read();
  await pty.unplug();
  // A pty (like some USB adapters) does not always report the hang-up; then the watchdog finds the port gone.
  const err = await waitFor(
    () =>
      meter.read().then(
        () => undefined,
        (e: { code?: string }) => (e.code === 'PORT_GONE' || e.code === 'PORT_OPEN_FAILED' ? e : undefined),
      ),
    { what: 'reads failing with the port error', timeout: 15_000 },
  );
  t.ok(err, `reads fail with ${err.code} while unplugged`);
  await pty.replug();
  const r = await waitFor(() => meter.read().catch(() => undefined), {
    what: 'a read after replug',
    timeout: 15_000,
  });
  await assertMatchesSent(t, '5', r, sent);
  t.ok(meter.stats().opens >= 2, 'reopened by itself');
});

t.test('close, abort, and a port that cannot be opened', async (t) => {
  const missing = createDsmrMeter({ id: 'x', port: '/nonexistent/ttyP1', readTimeoutMs: 300, retryMs: 50 });
  // The first read may time out before the first open attempt has failed on a busy machine: retry reads.
  const err = await waitFor(
    () =>
      missing.read().then(
        () => undefined,
        (e: { code?: string }) => (e.code === 'PORT_OPEN_FAILED' ? e : undefined),
      ),
    { what: 'a PORT_OPEN_FAILED read', timeout: 15_000 },
  );
  t.match(err, { code: 'PORT_OPEN_FAILED', context: { port: '/nonexistent/ttyP1' } });
  const pending = t.rejects(missing.read(), { code: 'CLOSED' }, 'a pending read ends when the reader closes');
  await missing.close();
  await pending;
  await t.rejects(missing.read(), { code: 'CLOSED' });
  await missing.close();

  const pty = await startPtyPair(t);
  const quiet = createDsmrMeter({ id: 'q', port: pty.b, readTimeoutMs: 5000 });
  t.teardown(() => quiet.close());
  const ac = new AbortController();
  const aborted = quiet.read(ac.signal);
  ac.abort();
  await t.rejects(aborted, { code: 'TIMEOUT', context: { aborted: true } });
  await t.rejects(quiet.read(AbortSignal.abort()), { code: 'TIMEOUT' }, 'already aborted');
});

t.test('a telegram with an unusable value gives a partial reading naming the channel', async (t) => {
  const pty = await startPtyPair(t);
  const meter = createDsmrMeter({ id: 'p', port: pty.b, version: 'auto', readTimeoutMs: 10_000 });
  t.teardown(() => meter.close());
  const { SerialPort } = await import('serialport');
  const a = await new Promise<InstanceType<typeof SerialPort>>((res, rej) => {
    const p = new SerialPort({ path: pty.a, baudRate: 115200 }, (e) => (e ? rej(e) : res(p)));
  });
  t.teardown(() => new Promise<void>((r) => a.close(() => r())));
  const reading = meter.read();
  // No CRC (auto accepts DSMR 2.2-style telegrams); voltage with a wrong unit.
  const bytes = Buffer.from('/ABC5 x\r\n\r\n1-0:32.7.0(230.1*kV)\r\n1-0:1.8.1(000001.000*kWh)\r\n!\r\n');
  // The reader opens its port asynchronously: repeat the telegram until a read has taken it.
  let settled = false;
  void reading.then(
    () => (settled = true),
    () => (settled = true),
  );
  await waitFor(
    () => {
      if (!settled) a.write(bytes);
      return settled;
    },
    { interval: 200, what: 'the telegram read' },
  );
  const r = await reading;
  t.same(r.missing, ['voltage_l1_v']);
  t.equal(r.flags, QualityFlag.partial | QualityFlag.outOfRange);
  t.match(r.errors[0], { code: 'BAD_FRAME', context: { line: 3, channel: 'voltage_l1_v' } });
  t.same(r.values.energy_import_t1_kwh, intValue(1000, -3));
});
