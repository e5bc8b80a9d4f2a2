/**
 * `meterlink demo` as a user runs it: a child process with real Mosquitto, socat ptys, simulators, the agent
 * and the verifying consumer; stopped by --duration and by Ctrl-C (SIGINT), always leaving nothing behind.
 */
import t from 'tap';
import { lstat } from 'node:fs/promises';
import { runCliCaptured, spawnMeterlink } from '../harness/cli.js';
import { AGENT_START_MS, waitFor } from '../harness/wait.js';
import { billableUnits, type MeterView } from '../../agent/demo/consumer.js';
import { parseSimTime } from '../../agent/commands/demo.js';
import {
  drawFrame,
  energy,
  truncateVisible,
  progressLine,
  renderFrame,
  type DemoSnapshot,
} from '../../agent/demo/view.js';

/** The demo's first line: loading it from source is the slow part of its start on a busy machine. */
async function demoStarted(demo: ReturnType<typeof spawnMeterlink>): Promise<void> {
  await waitFor(() => /^demo: /m.test(demo.output()), {
    what: 'the demo to print its first step',
    timeout: AGENT_START_MS,
  }).catch((err: Error) => {
    throw new Error(`${err.message}\n${demo.output()}`);
  });
}

const summaryRe =
  /^summary: ran [0-9.]+ s(?<ctrlc> \(stopped by Ctrl-C\))? · batches (?<batches>\d+) received, (?<verified>\d+) verified, (?<rejected>\d+) rejected · samples (?<samples>\d+) · \S+ bytes\/sample .* · billable 5-KB units (?<units>\d+) · (?<dir>\S+) removed$/m;

async function gone(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return false;
  } catch {
    return true;
  }
}

// Power is signed (import positive): at midday the simulated balcony panel exports and `main` reads e.g. -315 W.
const meterLine = (id: string) => new RegExp(`${id} -?\\d+ W [0-9.]+ kWh`);

function dirOf(output: string): string {
  const m = /^demo: files in (\S+) \(removed on exit\)$/m.exec(output);
  if (!m?.[1]) throw new Error(`no "files in" line in:\n${output}`);
  return m[1];
}

t.test('demo --duration 12s --no-tui: batches verified, summary, exit 0, temp dir gone', async (t) => {
  // At a sunny noon (whatever the real hour): solar export makes power negative, and the view must show it.
  const demo = spawnMeterlink(['demo', '--duration', '12s', '--no-tui', '--sim-time', '12:00']);
  t.teardown(() => demo.kill('SIGKILL'));
  await demoStarted(demo);
  // Its steps and once-a-second progress lines are its progress: a slow start on a busy machine is fine, a
  // demo that stops printing for 30 s is not.
  await waitFor(() => demo.child.exitCode !== null || demo.child.signalCode !== null, {
    what: 'the demo to end',
    timeout: 30_000,
    interval: 100,
    progress: () => demo.output().length,
  }).catch((err: Error) => {
    throw new Error(`${err.message}\n${demo.output()}`);
  });
  const out = demo.output();
  t.equal(demo.child.exitCode, 0, 'exit 0', { output: out });
  t.match(out, /^demo: broker: Mosquitto with mutual TLS and MQTT 5 on 127\.0\.0\.1:\d+/m);
  t.match(out, /^demo: meters: Eastron SDM630 \(Modbus RTU\) and a DSMR 5 P1 meter/m);
  t.match(out, /^\[00:0\d\] batches \d+ received, \d+ verified, 0 rejected · samples \d+/m, 'progress lines');
  const s = summaryRe.exec(out)?.groups;
  t.ok(s, 'summary line', { output: out });
  if (!s) return;
  t.ok(Number(s.verified) >= 1, `${s.verified} batches verified`);
  t.equal(s.rejected, '0');
  t.equal(s.verified, s.batches, 'every batch received was verified');
  t.ok(Number(s.samples) > 0, `${s.samples} samples`);
  t.ok(Number(s.units) >= Number(s.verified), 'at least one billable unit per batch');
  t.notOk(s.ctrlc);
  t.equal(s.dir, dirOf(out));
  t.ok(await gone(dirOf(out)), 'temp dir removed');
  // Both meters reached the consumer with power and energy counters.
  const last =
    out
      .split('\n')
      .filter((l) => l.startsWith('['))
      .at(-1) ?? '';
  t.match(last, meterLine('main'));
  t.match(last, meterLine('grid'));
});

t.test('Ctrl-C (SIGINT) mid-run stops everything cleanly: exit 0, summary, temp dir gone', async (t) => {
  // Without socat (as on a box that lacks it): the SDM630 over Modbus TCP, no DSMR meter.
  // At midnight, no solar (the other half of the day from the first test).
  const demo = spawnMeterlink(['demo', '--no-tui', '--sim-time', '00:00'], {
    env: { ...process.env, METERLINK_DEMO_SOCAT: '/nonexistent/socat' },
  });
  t.teardown(() => demo.kill('SIGKILL'));
  await demoStarted(demo);
  // Mid-run: batches are arriving and being verified.
  await waitFor(() => /^\[\d\d:\d\d\] batches \d+ received, [1-9]\d* verified/m.test(demo.output()), {
    what: 'a verified batch',
    timeout: 30_000,
    // Start-up steps count as progress (slow on a busy machine); once the agent runs, 30 s to a batch.
    progress: () => demo.output().match(/^demo: /gm)?.length ?? 0,
  }).catch((err: Error) => {
    throw new Error(`${err.message}\n${demo.output()}`);
  });
  await demo.kill('SIGINT');
  const out = demo.output();
  t.match(out, /^demo: meters: Eastron SDM630 over Modbus TCP \(socat not found/m);
  t.match(out, meterLine('main'));
  t.notMatch(out, /grid/);
  t.equal(demo.child.exitCode, 0, 'exit 0', { output: out });
  const s = summaryRe.exec(out)?.groups;
  t.ok(s, 'summary line', { output: out });
  t.ok(s?.ctrlc, 'says it was stopped by Ctrl-C');
  t.equal(s?.rejected, '0');
  t.ok(await gone(dirOf(out)), 'temp dir removed');
});

t.test('without mosquitto: what to install, exit 1; a bad --duration is a usage error', async (t) => {
  const before = process.env.METERLINK_DEMO_MOSQUITTO;
  process.env.METERLINK_DEMO_MOSQUITTO = '/nonexistent/mosquitto';
  t.teardown(() => {
    if (before === undefined) delete process.env.METERLINK_DEMO_MOSQUITTO;
    else process.env.METERLINK_DEMO_MOSQUITTO = before;
  });
  const r = await runCliCaptured(['demo', '--duration', '5s', '--no-tui']);
  t.equal(r.code, 1);
  t.match(r.stderr, 'mosquitto');
  t.match(r.stderr, 'install it: sudo apt-get install mosquitto (or run scripts/setup-debian.sh)');

  const bad = await runCliCaptured(['demo', '--duration', 'soon']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, '--duration soon: not a duration; write it like 30s, 5m or 1h');

  const badTime = await runCliCaptured(['demo', '--sim-time', '2026-06-21 12:00']);
  t.equal(badTime.code, 2);
  t.match(badTime.stderr, '--sim-time 2026-06-21 12:00: not a time; write HH:MM (UTC) like 12:00');
});

t.test('--sim-time: HH:MM is UTC on the current UTC day; an instant must carry its zone', async (t) => {
  const now = Date.UTC(2026, 11, 2, 23, 30); // late evening UTC: the local date may already be tomorrow
  t.equal(parseSimTime('12:00', now), Date.UTC(2026, 11, 2, 12, 0));
  t.equal(parseSimTime('00:00', now), Date.UTC(2026, 11, 2, 0, 0));
  t.equal(parseSimTime('23:59', now), Date.UTC(2026, 11, 2, 23, 59));
  t.equal(parseSimTime('2026-06-21T12:00Z'), Date.UTC(2026, 5, 21, 12, 0));
  t.equal(parseSimTime('2026-06-21T14:00:30+02:00'), Date.UTC(2026, 5, 21, 12, 0, 30));
  for (const bad of ['24:00', '7:00', '12:60', '2026-06-21T12:00', '2026-06-21', 'noon', ''])
    t.equal(parseSimTime(bad, now), undefined, `${JSON.stringify(bad)} rejected`);
});

t.test(
  'the view: meters, batches, wire cost, buffer and connection in the frame and the progress line',
  async (t) => {
    const now = Date.UTC(2026, 0, 15, 12, 0, 30);
    const snap: DemoSnapshot = {
      now,
      startedAt: now - 30_000,
      durationMs: 60_000,
      brokerPort: 18883,
      dir: '/tmp/meterlink-demo-x',
      keepDir: false,
      meters: [
        { id: 'main', what: 'Eastron SDM630 · Modbus RTU over a pty' },
        { id: 'grid', what: 'DSMR 5 smart meter · P1 port over a pty' },
      ],
      agent: {
        v: 1,
        pid: 1,
        thing: 'demo-meterbox',
        version: '0.1.0',
        startedAt: now - 31_000,
        updatedAt: now,
        connection: { state: 'connected', endpoint: '127.0.0.1:18883', lastError: null, since: now - 30_000 },
        buffer: { depth: 4, bytes: 2048, oldestTs: now - 3000, newestSeq: 60, lastSeq: 60, dropped: 0 },
        publisher: {
          batchesAcked: 9,
          samplesAcked: 56,
          bytesAcked: 7000,
          inFlight: 1,
          lastAckAt: now - 1000,
          lastError: null,
          pausedUntil: null,
        },
        clock: { synced: true, lastStepMs: null },
        meters: [
          {
            id: 'main',
            label: 'x',
            ok: true,
            polls: 30,
            failures: 0,
            skipped: 0,
            lastTs: now,
            lastValues: {},
            lastError: null,
            lastErrorAt: null,
          },
          {
            id: 'grid',
            label: 'y',
            ok: false,
            polls: 30,
            failures: 2,
            skipped: 0,
            lastTs: now,
            lastValues: {},
            lastError: 'TIMEOUT: no telegram',
            lastErrorAt: now,
          },
        ],
        recentErrors: [],
      },
      consumer: {
        connected: true,
        batches: 9,
        verified: 9,
        rejected: 0,
        lastRejection: null,
        samples: 56,
        bytes: 7000,
        billableUnits: 9,
        lastBatch: { firstSeq: 50, lastSeq: 56, samples: 7, bytes: 800, at: now - 1000 },
        meters: new Map<string, MeterView>([
          [
            'main',
            {
              samples: 28,
              lastTs: now - 1000,
              values: { power_w: 1234.4, energy_import_kwh: 20621.02, energy_export_kwh: 1.5 },
            },
          ],
          [
            'grid',
            {
              samples: 28,
              lastTs: now - 2000,
              values: { power_w: 276, energy_import_t1_kwh: 1000, energy_import_t2_kwh: 580.245 },
            },
          ],
        ]),
        events: 1,
        lastEvent: { at: now - 30_000, event: 'agent_started', message: 'meterlink 0.1.0 started' },
        healthReports: 0,
      },
    };
    const plain = renderFrame(snap, 120)
      .join('\n')
      .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
    t.match(plain, 'running 00:30 / 01:00');
    t.match(
      plain,
      /main +Eastron SDM630 · Modbus RTU over a pty +1,234 W +20,621\.020 kWh +1\.500 kWh +28 +1s ago/,
    );
    t.match(plain, /grid +DSMR 5 .* +276 W +1,580\.245 kWh +— +28 +2s ago/);
    t.match(plain, 'error: TIMEOUT: no telegram');
    t.match(
      plain,
      'connected to 127.0.0.1:18883 · buffer depth 4 (2.0 KiB) · in flight 1 · polls 60, 2 failed',
    );
    t.match(plain, '9 received, 9 verified, 0 rejected · last: seq 50–56, 7 samples, 800 B, 1s ago');
    t.match(plain, '56 samples · 125.0 bytes/sample · 9 billable 5-KB units (160.7 per 1,000 samples)');
    t.match(plain, 'agent_started: meterlink 0.1.0 started');
    t.match(drawFrame(['a', 'b']), /^\x1b\[Ha\x1b\[K\nb\x1b\[K\n\x1b\[J$/);
    t.equal(truncateVisible('\x1b[1mabcdef\x1b[0m', 3), '\x1b[1mabc\x1b[0m', 'cut to 3 visible characters');
    t.equal(truncateVisible('\x1b[1mab\x1b[0m', 3), '\x1b[1mab\x1b[0m', 'short lines unchanged');
    t.match(drawFrame(['abcdef'], 2), /^\x1b\[Hab\x1b\[0m\x1b\[K\n/);
    t.equal(
      progressLine(snap),
      '[00:30] batches 9 received, 9 verified, 0 rejected · samples 56 · 125.0 B/sample · billable 5-KB units 9 · buffer 4 · connected · main 1234 W 20621.020 kWh · grid 276 W 1580.245 kWh',
    );
    t.equal(energy({}, 'import'), undefined);
    t.equal(billableUnits(1), 1);
    t.equal(billableUnits(5120), 1);
    t.equal(billableUnits(5121), 2);
  },
);
