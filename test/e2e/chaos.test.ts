/**
 * Chaos in one run: the agent SIGKILLed at random moments (≥ 10 times), the broker killed and
 * restarted (≥ 5 times), the serial adapter unplugged and replugged. Afterwards the cloud holds every
 * sequence number from first to last, duplicates are exact re-sends, and every gap in time is explained by
 * the agent being down (a kill) or the meter being unreadable (reported as meter_error/meter_recovered).
 * Deadlines (waitFor's, stretched by the harness) and chaos moments (scaled() here) are sized for native speed
 * and stretched by METERLINK_TEST_TIME_SCALE (test/harness/pace.ts; scripts/test-arm64.sh sets it for qemu-user
 * emulation, where the agent's start-up from source takes many seconds instead of about one).
 */
import t from 'tap';
import { setTimeout as delay } from 'node:timers/promises';
import { readStatusFile } from '../../agent/daemon/status-file.js';
import type { Sample } from '../../cloud-contract/index.js';
import { spawnMeterlink } from '../harness/cli.js';
import type { Spawned } from '../harness/process.js';
import { endAfterMqtt } from '../harness/exit.js';
import { scaled } from '../harness/pace.js';
import { AGENT_START_MS, waitFor } from '../harness/wait.js';
import { startRig } from './helpers.js';

/** Deterministic dice so a failure can be replayed. */
function dice(seed: number) {
  let s = seed >>> 0;
  return (min: number, max: number) => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return min + (s / 2 ** 32) * (max - min);
  };
}

const INTERVAL_MS = 200;

await t.test(
  'SIGKILL ×10, broker restarts ×5, serial unplug/replug: nothing lost, gaps explained',
  async (t) => {
    const rnd = dice(20261127);
    const rig = await startRig(t, { interval: `${INTERVAL_MS}ms`, maxDelay: '300ms' });
    let agent: Spawned | undefined;
    const downs: { from: number; to: number }[] = []; // agent not running
    const start = () => {
      agent = spawnMeterlink(['run', '--config', rig.configFile]);
    };
    t.teardown(() => agent?.kill('SIGKILL'));
    start();
    const firstSample = () => rig.cloud.samples.length > 0;
    await waitFor(firstSample, { what: 'first samples', timeout: AGENT_START_MS });

    let kills = 0;
    let brokerRestarts = 0;
    for (let round = 0; round < 10; round++) {
      // Chaos timing: a random moment once the agent is up (start-up from source takes about a second at
      // native speed, so some kills land during start-up, most while it runs).
      await delay(scaled(rnd(1500, 3500)));
      const from = Date.now();
      await agent?.kill('SIGKILL');
      kills++;
      if (round % 2 === 0) {
        await rig.broker.kill();
        await delay(rnd(50, 400));
        await rig.broker.start();
        brokerRestarts++;
      }
      start();
      downs.push({ from, to: Date.now() });
      if (round === 4) {
        // The adapter is pulled out for a while and put back, with the agent running.
        await delay(scaled(500));
        await rig.pty.unplug();
        // The agent was restarted just above: its start-up (AGENT_START_MS) comes before it can see the port gone.
        await waitFor(() => rig.cloud.events.some((e) => e.event === 'meter_error'), {
          what: 'meter_error event',
          timeout: AGENT_START_MS,
        });
        await rig.pty.replug();
        await waitFor(() => rig.cloud.events.some((e) => e.event === 'meter_recovered'), {
          what: 'meter_recovered event',
          timeout: 30_000,
        });
      }
    }
    t.ok(kills >= 10 && brokerRestarts >= 5, `${kills} agent kills, ${brokerRestarts} broker restarts`);

    // Let it settle: everything the buffer held a moment ago reaches the cloud (new samples keep coming).
    const snapshotAfter = Date.now();
    const snap = await waitFor(
      async () => {
        const st = await readStatusFile(rig.statusFile).catch(() => undefined);
        return st && st.updatedAt > snapshotAfter && st.buffer.lastSeq > 0 ? st : undefined;
      },
      { what: 'a fresh status file', timeout: 20_000, interval: 100 },
    );
    const target = snap.buffer.lastSeq;
    // Progress: how many of 1..target have arrived (not all seqs: new samples keep coming even if a hole stays).
    const arrivedUpToTarget = () => {
      const seen = rig.cloud.seqs();
      let n = 0;
      for (let s = 1; s <= target; s++) if (seen.has(s)) n++;
      return n;
    };
    await waitFor(() => arrivedUpToTarget() === target, {
      what: `every seq up to ${target} at the cloud`,
      timeout: 60_000,
      interval: 200,
      progress: arrivedUpToTarget,
    });
    await agent?.kill('SIGTERM');
    t.equal(agent?.child.exitCode, 0, 'final SIGTERM exits 0');

    t.same(rig.cloud.rejected, [], 'every payload verified');
    const seen = rig.cloud.seqs();
    const max = Math.max(...seen);
    t.ok(max >= target);
    const holes: number[] = [];
    for (let s = 1; s <= max; s++) if (!seen.has(s)) holes.push(s);
    t.same(holes, [], `every sequence number 1..${max} arrived`);

    const first = new Map<number, Sample>();
    let dupCount = 0;
    for (const s of rig.cloud.samples) {
      const f = first.get(s.seq);
      if (!f) first.set(s.seq, s);
      else {
        dupCount++;
        if (JSON.stringify(f) !== JSON.stringify(s))
          t.fail(`duplicate of seq ${s.seq} differs from its first delivery`);
      }
    }
    t.pass(`${dupCount} duplicates, each an exact re-send`);

    // Time gaps: consecutive samples more than 3 intervals apart (a deadline for the poll loop, stretched by
    // the time scale) must fall where the agent was down or the meter was reported unreadable.
    const maxGap = scaled(3 * INTERVAL_MS);
    const ordered = [...first.values()].sort((a, b) => a.seq - b.seq);
    const errors = rig.cloud.events.filter((e) => e.event === 'meter_error' || e.event === 'meter_recovered');
    const unexplained: string[] = [];
    for (let i = 1; i < ordered.length; i++) {
      const a = ordered[i - 1] as Sample;
      const b = ordered[i] as Sample;
      if (b.ts - a.ts <= maxGap) continue;
      const agentDown = downs.some((d) => d.to >= a.ts && d.from <= b.ts);
      const meterDown = errors.some((e) => e.ts >= a.ts - 1000 && e.ts <= b.ts + 1000);
      if (!agentDown && !meterDown) unexplained.push(`seq ${a.seq}→${b.seq}: ${b.ts - a.ts} ms`);
    }
    t.same(unexplained, [], 'every gap in time is an agent restart or a reported meter outage');
    t.ok(
      ordered.every((s, i) => i === 0 || s.ts >= (ordered[i - 1] as Sample).ts - 5),
      'time runs forward with seq',
    );
  },
);

await endAfterMqtt(t);
