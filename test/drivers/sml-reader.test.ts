import t from 'tap';
import { createSmlMeter, startSmlEmitter } from '../../drivers/index.js';
import { QualityFlag } from '../../cloud-contract/sample.js';
import { runCliCaptured } from '../harness/cli.js';
import { startPtyPair } from '../harness/pty.js';
import { waitFor } from '../harness/wait.js';

await t.test(
  'meterlink simulate sml with faults: the reader gets the good files, counts the bad',
  async (t) => {
    const pty = await startPtyPair(t);
    const meter = createSmlMeter({ id: 'ehz', port: pty.b, readTimeoutMs: 10_000 });
    t.teardown(() => meter.close());
    const first = meter.read();
    // The port must be open before the simulator writes (a file nobody listens to is gone).
    await waitFor(() => meter.stats().opens === 1, { what: 'the reader opened the port', timeout: 30_000 });
    const cli = runCliCaptured([
      'simulate',
      'sml',
      '--port',
      pty.a,
      '--interval',
      '40',
      '--count',
      '12',
      '--bad-crc-every',
      '2',
      '--truncate-every',
      '5',
      '--noise-every',
      '3',
      '--server-id',
      '0A01484C5902000424A0',
    ]);
    const r = await first;
    t.equal(r.serial, '0a01484c5902000424a0');
    t.ok(r.values.power_l1_w, 'per-phase power');
    t.equal(r.flags, 0);
    const res = await cli;
    t.equal(res.code, 0, res.stderr);
    t.match(res.stdout, /simulating an SML meter/);
    t.match(res.stdout, /file 2 bad-crc/);
    t.match(res.stdout, /file 5 truncated/);
    t.match(res.stdout, /sent 12 files \(5 good\)/);
  },
);

await t.test('PIN locked again: power stops, readings are partial with the channels missing', async (t) => {
  const pty = await startPtyPair(t);
  const meter = createSmlMeter({ id: 'ehz', port: pty.b, readTimeoutMs: 10_000 });
  t.teardown(() => meter.close());
  const first = meter.read();
  await waitFor(() => meter.stats().opens === 1, { what: 'the reader opened the port', timeout: 30_000 });
  const emitter = await startSmlEmitter({ path: pty.a, intervalMs: 50, faults: { counterOnlyFrom: 4 } });
  t.teardown(() => emitter.stop());
  const full = await first;
  t.equal(full.flags, 0);
  let r = await meter.read();
  while (r.missing.length === 0) r = await meter.read();
  t.equal(r.flags & QualityFlag.partial, QualityFlag.partial);
  t.same([...r.missing].sort(), ['power_l1_w', 'power_l2_w', 'power_l3_w', 'power_w']);
  t.match(r.errors, [{ code: 'BAD_FRAME', context: { reason: 'incomplete' } }]);
  t.ok(r.values.energy_import_kwh, 'counters still there');
  t.equal(meter.stats().counterOnly, false);
  t.ok(meter.stats().good >= 2);
});

await t.test(
  'no meter: TIMEOUT names the IR head; a missing port is PORT_OPEN_FAILED; closed is CLOSED',
  async (t) => {
    const pty = await startPtyPair(t);
    const silent = createSmlMeter({ id: 'ehz', port: pty.b, readTimeoutMs: 300, watchdogMs: 1000 });
    await t.rejects(silent.read(), { code: 'TIMEOUT', message: /IR head/ });
    t.equal(silent.stats().counterOnly, true);
    await silent.close();
    await t.rejects(silent.read(), { code: 'CLOSED' });
    const missing = createSmlMeter({ id: 'x', port: '/nonexistent/ttyIR', readTimeoutMs: 2000 });
    await t.rejects(missing.read(), { code: 'PORT_OPEN_FAILED' });
    await missing.close();
    const aborted = createSmlMeter({ id: 'y', port: pty.b, readTimeoutMs: 5000 });
    const ac = new AbortController();
    const p = aborted.read(ac.signal);
    ac.abort();
    await t.rejects(p, { code: 'TIMEOUT', context: { aborted: true } });
    const pending = aborted.read();
    await aborted.close();
    await t.rejects(pending, { code: 'CLOSED' });
  },
);

await t.test('usage errors name the option', async (t) => {
  const bad = async (args: string[], re: RegExp) => {
    const r = await runCliCaptured(['simulate', 'sml', '--port', '/tmp/x', ...args]);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, re);
  };
  await bad(['--interval', 'soon'], /--interval soon: expected a whole number/);
  await bad(['--count', '0'], /--count 0/);
  await bad(['--server-id', 'xyz'], /--server-id xyz: expected hex bytes/);
  const missing = await runCliCaptured(['simulate', 'sml', '--port', '/nonexistent/ttyIR', '--quiet']);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /cannot open \/nonexistent\/ttyIR/);
  const help = await runCliCaptured(['simulate', 'sml', '--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /Examples:[\s\S]*--bad-crc-every/);
});

await t.test(
  'meterlink read: an sml meter from the config, values exactly one pushed file, serial',
  async (t) => {
    const { decodeSmlFile } = await import('../../drivers/sml/index.js');
    const { valueToNumber } = await import('../../cloud-contract/sample.js');
    const { tempDir } = await import('../harness/tmp.js');
    const { writeFile } = await import('node:fs/promises');
    const pty = await startPtyPair(t);
    const sent: Record<string, number>[] = [];
    // A push meter: it sends every 200 ms whether anyone listens, so the read takes whichever file comes first.
    const emitter = await startSmlEmitter({
      path: pty.a,
      intervalMs: 200,
      serverId: '0A01484C5902000424A0',
      onFile: (f) => {
        const d = decodeSmlFile(f.bytes);
        if (d.ok)
          sent.push(Object.fromEntries(Object.entries(d.data.values).map(([k, v]) => [k, valueToNumber(v)])));
      },
    });
    t.teardown(() => emitter.stop());
    const config = `${await tempDir(t)}/config.yaml`;
    await writeFile(config, `thing: box-1\nmeters:\n  - { id: ehz, driver: sml, port: ${pty.b} }\n`);
    const r = await runCliCaptured(['read', '--config', config, '--json']);
    t.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim()) as {
      meter: string;
      serial: string;
      values: Record<string, number>;
    };
    t.equal(out.meter, 'ehz');
    t.equal(out.serial, '0a01484c5902000424a0');
    t.ok(out.values.power_l1_w !== undefined && out.values.energy_import_kwh !== undefined);
    const canonical = (v: Record<string, number>) =>
      JSON.stringify(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)));
    await waitFor(() => sent.some((v) => canonical(v) === canonical(out.values)), {
      what: 'the read values to be exactly those of one file the simulator pushed',
    });
    const text = await runCliCaptured(['read', '--config', config]);
    t.equal(text.code, 0, text.stderr);
    t.match(text.stdout, /^ehz \(sml /);
  },
);
