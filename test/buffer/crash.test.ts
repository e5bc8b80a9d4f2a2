/**
 * Crash test: a child appends as fast as it can and reports each resolved append; it is SIGKILLed at random
 * moments, 24 times in a row on the same store. After every kill: each reported sample is present exactly
 * once with the seq it was given (unless acknowledged), seqs strictly increase, no seq is ever handed out
 * twice, and the store opens without a loss report (the seq ledger never names a seq the store legitimately
 * lacks, whatever write the kill interrupted).
 * Deadlines and kill moments are sized for native speed and stretched by METERLINK_TEST_TIME_SCALE
 * (test/harness/pace.ts; scripts/test-arm64.sh sets it for qemu-user emulation).
 */
import t from 'tap';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openLevelBuffer, type BufferEvent } from '../../buffer/index.js';
import { spawnLogged } from '../harness/process.js';
import { scaled } from '../harness/pace.js';
import { tempDir } from '../harness/tmp.js';
import { waitFor } from '../harness/wait.js';

const writer = fileURLToPath(new URL('./crash-writer.ts', import.meta.url));
const RUNS = 24;

t.test(
  'SIGKILL at random moments never loses or duplicates an accepted sample',
  { timeout: scaled(150_000) },
  async (t) => {
    const path = join(await tempDir(t, 'meterlink-crash-'), 'buffer');
    let highestSeq = 0; // the highest seq any run was ever given
    let totalAccepted = 0;
    let killedBeforeReady = 0;
    let acksStarted = 0;
    for (let run = 1; run <= RUNS; run++) {
      const child = spawnLogged(process.execPath, ['--import', 'tsx', writer, path, String(run)]);
      t.teardown(() => child.kill());
      const accepted = new Map<number, number>(); // seq → k
      const acked: [number, number][] = []; // ranges whose ack was started (done or not)
      const events: string[] = [];
      let ready = false;
      let pendingLine = '';
      child.child.stdout!.on('data', (b: Buffer) => {
        const lines = (pendingLine + b.toString('utf8')).split('\n');
        pendingLine = lines.pop()!;
        for (const line of lines) {
          const [kind, a, b2, c] = line.split(' ');
          if (kind === 'R') ready = true;
          else if (kind === 'E') events.push(line);
          else if (kind === 'K') acked.push([Number(a), Number(b2)]);
          else if (kind === 'A')
            for (let s = Number(a); s <= Number(b2); s++) accepted.set(s, Number(c) + s - Number(a));
        }
      });
      // Every 4th run dies at a random moment from spawn on (maybe while opening); the rest while appending.
      if (run % 4 === 0) {
        await new Promise((r) => setTimeout(r, Math.random() * scaled(1500)));
        if (!ready) killedBeforeReady++;
      } else {
        await waitFor(() => accepted.size > 0 || child.child.exitCode !== null, {
          timeout: 60_000, // stretched by the harness (waitFor)
          what: `run ${run}'s first accepted append`,
        });
        t.equal(child.child.exitCode, null, `run ${run} is running: ${child.output()}`);
        await new Promise((r) => setTimeout(r, Math.random() * scaled(300)));
      }
      await child.kill('SIGKILL');
      t.same(events, [], `run ${run}: no repair or drop events`);

      const seen: BufferEvent[] = [];
      const buf = await openLevelBuffer({ path, maxSize: Infinity, onEvent: (e) => seen.push(e) });
      const stored = await buf.readOldest({ maxCount: 10_000_000 });
      t.same(seen, [], `run ${run}: the store opens cleanly after SIGKILL`);
      const bySeq = new Map(stored.map((s) => [s.seq, s]));
      let missing = 0;
      let wrong = 0;
      const isAcked = (seq: number) => acked.some(([a, b]) => seq >= a && seq <= b);
      for (const [seq, k] of accepted) {
        const s = bySeq.get(seq);
        if (isAcked(seq)) {
          if (s && (s.meter !== `r${run}` || s.values.power_w?.mantissa !== k)) wrong++;
          continue;
        }
        if (!s) missing++;
        else if (s.meter !== `r${run}` || s.values.power_w?.mantissa !== k) wrong++;
      }
      t.equal(missing, 0, `run ${run}: all ${accepted.size} accepted samples present (but the acked)`);
      t.equal(wrong, 0, `run ${run}: each under the seq it was given`);
      const ids = stored.map((s) => `${s.meter}/${s.values.power_w?.mantissa}`);
      t.equal(new Set(ids).size, ids.length, `run ${run}: no sample stored twice`);
      t.ok(
        stored.every((s, i) => (i === 0 ? s.seq > highestSeq : s.seq > stored[i - 1]!.seq)),
        `run ${run}: seqs strictly increase and continue above every earlier run's (${highestSeq})`,
      );
      if (stored.length > 0) highestSeq = stored[stored.length - 1]!.seq;
      t.ok(buf.stats().nextSeq > highestSeq, 'next seq is above everything stored');
      // Keep the store small between runs; seqs must still never be reused.
      if (stored.length > 0) await buf.ack(stored[0]!.seq, highestSeq);
      highestSeq = Math.max(highestSeq, buf.stats().nextSeq - 1);
      totalAccepted += accepted.size;
      acksStarted += acked.length;
      await buf.close();
    }
    t.ok(totalAccepted > RUNS * 10, `${totalAccepted} samples accepted over ${RUNS} kills`);
    t.ok(acksStarted > RUNS, `${acksStarted} acks started, many cut short by a kill`);
    t.comment(
      `${RUNS} kills, ${totalAccepted} accepted samples, ${acksStarted} acks, ${killedBeforeReady} killed before ready`,
    );
  },
);
