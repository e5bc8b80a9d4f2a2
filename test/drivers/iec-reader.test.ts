import t from 'tap';
import { QualityFlag } from '../../cloud-contract/sample.js';
import { createIecMeter } from '../../drivers/iec62056/index.js';
import { iecModelStates, startIecEmitter } from '../../drivers/simulator/iec-emitter.js';
import { iecSimValues } from '../../drivers/simulator/iec-render.js';
import { runCliCaptured } from '../harness/cli.js';
import { startPtyPair } from '../harness/pty.js';
import { waitFor } from '../harness/wait.js';
import { tempDir } from '../harness/tmp.js';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

await t.test(
  'mode C over a pty: sign-on at 300, identification Z=5, ACK asks 9600 after the ACK left the line, values exact',
  async (t) => {
    const pty = await startPtyPair(t);
    const asked: { z?: string | undefined; baud?: number | undefined }[] = [];
    const emitter = await startIecEmitter({
      path: pty.a,
      mode: 'c',
      z: '5',
      seed: 3,
      stepMs: 1000,
      onMessage: (m) => asked.push({ z: m.askedZ, baud: m.askedBaud }),
    });
    t.teardown(() => emitter.stop());
    const meter = createIecMeter({ id: 'd0', port: pty.b, readTimeoutMs: 20_000, signOnTimeoutMs: 10_000 });
    t.teardown(() => meter.close());
    const states = iecModelStates(3, 1000);
    for (let k = 1; k <= 3; k++) {
      const r = await meter.read();
      t.same(r.values, iecSimValues(states(k)), `readout ${k}: every value exact`);
      t.equal(r.serial, '001SIM0012345678');
      t.equal(r.flags, 0);
    }
    const s = meter.stats();
    t.equal(s.signOns, 3);
    t.equal(s.blocks, 3);
    t.same(s.identification, { manufacturer: 'SIM', z: '5', mode: 'C', baud: 9600, ident: 'ML100' });
    t.same(
      s.baudLog.map((b) => [b.step, b.baud, b.z]),
      [
        ['sign-on', 300, undefined],
        ['ack', 9600, '5'],
        ['sign-on', 300, undefined],
        ['ack', 9600, '5'],
        ['sign-on', 300, undefined],
        ['ack', 9600, '5'],
      ],
    );
    // The ACK is 6 characters: 200 ms at 300 baud 7E1 before the speed may change.
    for (const b of s.baudLog.filter((x) => x.step === 'ack'))
      t.ok((b.afterMs as number) >= 195, `${b.afterMs} ms`);
    // The simulator records a message once its write has drained, which can be after the reader has it all.
    await waitFor(() => asked.length >= 3, { what: 'the simulator to record its third answer' });
    t.same(asked, [
      { z: '5', baud: 9600 },
      { z: '5', baud: 9600 },
      { z: '5', baud: 9600 },
    ]);
  },
);

await t.test('mode C with baud: 2400 the reader asks Z=3 though the meter offers 19200', async (t) => {
  const pty = await startPtyPair(t);
  const asked: (string | undefined)[] = [];
  const emitter = await startIecEmitter({ path: pty.a, z: '6', onMessage: (m) => asked.push(m.askedZ) });
  t.teardown(() => emitter.stop());
  const meter = createIecMeter({ id: 'd0', port: pty.b, baud: 2400, signOnTimeoutMs: 10_000 });
  t.teardown(() => meter.close());
  await meter.read();
  await waitFor(() => asked.length >= 1, { what: 'the simulator to record its answer' });
  t.same(asked, ['3']);
  t.match(meter.stats().baudLog, [
    { step: 'sign-on', baud: 300 },
    { step: 'ack', baud: 2400, z: '3' },
  ]);
});

await t.test(
  'mode C faults: bad BCC is CRC, truncated is BAD_FRAME, silence is TIMEOUT; the next read recovers',
  async (t) => {
    const pty = await startPtyPair(t);
    const kinds: string[] = [];
    const emitter = await startIecEmitter({
      path: pty.a,
      faults: { badBccEvery: 2, truncateEvery: 3, silentEvery: 4, noiseEvery: 5 },
      onMessage: (m) => kinds.push(`${m.index}:${m.kind}`),
    });
    t.teardown(() => emitter.stop());
    // Short per-step timeouts so the silent and truncated requests fail fast; the pty answers in ms.
    const meter = createIecMeter({ id: 'd0', port: pty.b, signOnTimeoutMs: 3000, readTimeoutMs: 8000 });
    t.teardown(() => meter.close());
    const outcome = async () => {
      try {
        const r = await meter.read();
        return r.flags === 0 ? 'ok' : 'flags';
      } catch (err) {
        const e = err as { code: string; context: { reason?: string } };
        return `${e.code}${e.context.reason ? `/${e.context.reason}` : ''}`;
      }
    };
    const got: string[] = [];
    for (let i = 1; i <= 5; i++) got.push(await outcome());
    t.same(got, ['ok', 'CRC/bcc', 'BAD_FRAME/truncated', 'TIMEOUT/no-identification', 'ok']);
    // The simulator records a message once its write has drained, which can be after the reader has it all.
    await waitFor(() => kinds.length >= 5, { what: 'the simulator to record message 5' });
    t.same(kinds, ['1:good', '2:corrupt', '3:truncated', '4:silent', '5:good']);
    const s = meter.stats();
    t.equal(s.bccErrors, 1);
    t.equal(s.noAnswer, 1);
    t.ok(s.garbageBytes >= 29, 'noise before message 5 skipped');
  },
);

await t.test('mode D push (bare blocks, as EasyMeter/Hager send): values exact, noise skipped', async (t) => {
  const pty = await startPtyPair(t);
  const meter = createIecMeter({ id: 'd0', port: pty.b, mode: 'd', readTimeoutMs: 10_000 });
  t.teardown(() => meter.close());
  const first = meter.read();
  // The port must be open before the emitter pushes (a push nobody listens to is gone).
  await waitFor(() => meter.stats().opens === 1, { what: 'the reader opened the port', timeout: 30_000 });
  const emitter = await startIecEmitter({
    path: pty.a,
    mode: 'd',
    bare: true,
    intervalMs: 50,
    seed: 9,
    faults: { noiseEvery: 2 },
  });
  t.teardown(() => emitter.stop());
  const states = iecModelStates(9, 1000);
  const r = await first;
  const k = Array.from({ length: 200 }, (_, i) => i + 1).find(
    (i) => JSON.stringify(iecSimValues(states(i))) === JSON.stringify(r.values),
  );
  t.ok(k, 'the values of a pushed block, exactly');
  t.equal(r.serial, '001SIM0012345678');
  t.equal(meter.stats().baudLog.length, 0, 'mode D never switches');
});

await t.test(
  'no meter on the port: TIMEOUT no-identification; missing port: PORT_OPEN_FAILED; closed',
  async (t) => {
    const pty = await startPtyPair(t);
    const meter = createIecMeter({ id: 'd0', port: pty.b, signOnTimeoutMs: 300, readTimeoutMs: 5000 });
    await t.rejects(meter.read(), {
      code: 'TIMEOUT',
      context: { reason: 'no-identification' },
      message: /optical head/,
    });
    await meter.close();
    await t.rejects(meter.read(), { code: 'CLOSED' });
    const missing = createIecMeter({ id: 'x', port: '/nonexistent/ttyD0', readTimeoutMs: 1500 });
    await t.rejects(missing.read(), { code: 'PORT_OPEN_FAILED' });
    await missing.close();
  },
);

await t.test('meterlink simulate iec62056-21: usage errors, help, a missing port', async (t) => {
  const bad = async (args: string[], re: RegExp) => {
    const r = await runCliCaptured(['simulate', 'iec62056-21', '--port', '/tmp/x', ...args]);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, re);
  };
  await bad(['--mode', 'x'], /--mode x: expected c/);
  await bad(['--z', '9'], /--z 9: expected a mode C baud character/);
  await bad(['--interval', 'soon'], /--interval soon: expected a duration/);
  await bad(['--count', '0'], /--count 0: expected a whole number/);
  await bad(['--serial', ''], /--serial : expected/);
  const missing = await runCliCaptured([
    'simulate',
    'iec62056-21',
    '--port',
    '/nonexistent/ttyD0',
    '--quiet',
  ]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /cannot open \/nonexistent\/ttyD0/);
  const help = await runCliCaptured(['simulate', 'iec62056-21', '--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /Examples:/);
});

await t.test(
  'meterlink simulate iec62056-21 mode D --count: pushes, reports each message, exits',
  async (t) => {
    const pty = await startPtyPair(t);
    const meter = createIecMeter({ id: 'd0', port: pty.b, mode: 'd', readTimeoutMs: 10_000 });
    t.teardown(() => meter.close());
    const first = meter.read();
    await waitFor(() => meter.stats().opens === 1, { what: 'the reader opened the port', timeout: 30_000 });
    const cli = runCliCaptured([
      'simulate',
      'iec62056-21',
      '--port',
      pty.a,
      '--mode',
      'd',
      '--interval',
      '40ms',
      '--count',
      '6',
      '--bad-bcc-every',
      '2',
    ]);
    const r = await first;
    t.equal(r.flags & QualityFlag.partial, 0);
    const res = await cli;
    t.equal(res.code, 0, res.stderr);
    t.match(res.stdout, /mode D/);
    t.match(res.stdout, /message 2 corrupt/);
    t.match(res.stdout, /sent 6 data messages \(3 good\)/);
  },
);

await t.test('meterlink read: an iec62056-21 meter from the config, values exact, serial', async (t) => {
  const pty = await startPtyPair(t);
  const emitter = await startIecEmitter({ path: pty.a, seed: 4 });
  t.teardown(() => emitter.stop());
  const dir = await tempDir(t);
  const config = join(dir, 'config.yaml');
  await writeFile(
    config,
    `thing: box-1\nmeters:\n  - { id: d0, driver: iec62056-21, port: ${pty.b}, baud: 4800 }\n`,
  );
  const r = await runCliCaptured(['read', '--config', config, '--json']);
  t.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim()) as {
    meter: string;
    values: Record<string, number>;
    serial: string;
  };
  t.equal(out.meter, 'd0');
  t.equal(out.serial, '001SIM0012345678');
  const want = iecSimValues(iecModelStates(4, 1000)(1));
  t.equal(out.values.energy_import_kwh, (want.energy_import_kwh?.mantissa as number) / 1000);
  t.equal(out.values.power_w, want.power_w?.mantissa);
  const text = await runCliCaptured(['read', '--config', config]);
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, `d0 (iec62056-21 ${pty.b} mode C) at `);
  t.match(text.stdout, /\n {2}voltage_l1_v +[0-9.]+ V\n/);
});
