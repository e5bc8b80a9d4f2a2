/**
 * Child process of crash.test.ts: appends to the buffer at argv[2] as fast as it can (4 appends in flight,
 * 1–8 samples each) and reports every resolved append on stdout as `A <firstSeq> <lastSeq> <k0>`, where
 * sample k0 + i (meter `r<run>`, power_w = k) got seq firstSeq + i. Meanwhile it acknowledges the oldest
 * samples now and then, as the publisher does, announcing each ack before it starts as `K <from> <to>` (so the
 * kill can come while the ledger and the store are between the two writes of an ack). It runs until it is
 * SIGKILLed.
 */
import { openLevelBuffer } from '../../buffer/index.js';
import { intValue, type SampleInput } from '../../cloud-contract/sample.js';

const [path, run] = process.argv.slice(2);
if (!path || !run) throw new Error('usage: crash-writer.ts PATH RUN');

const buf = await openLevelBuffer({
  path,
  maxSize: Infinity,
  commitDelayMs: 1,
  onEvent: (e) => process.stdout.write(`E ${JSON.stringify(e)}\n`),
});
process.stdout.write(`R ${buf.stats().nextSeq}\n`);

let k = 0;
const sample = (i: number): SampleInput => ({
  meter: `r${run}`,
  ts: 1_735_689_600_000 + i,
  flags: 0,
  values: { power_w: intValue(i), voltage_l1_v: intValue(2301, -1) },
});

async function worker(): Promise<never> {
  for (;;) {
    const n = 1 + Math.floor(Math.random() * 8);
    const k0 = k;
    k += n;
    const r = await buf.append(Array.from({ length: n }, (_, i) => sample(k0 + i)));
    // Written only after the append resolved: everything reported here must survive the kill.
    process.stdout.write(`A ${r!.first} ${r!.last} ${k0}\n`);
  }
}

async function acker(): Promise<never> {
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 2));
    const st = buf.stats();
    if (st.oldestSeq === null || st.count < 40) continue;
    const to = st.oldestSeq + 15;
    process.stdout.write(`K ${st.oldestSeq} ${to}\n`);
    await buf.ack(st.oldestSeq, to);
  }
}

await Promise.all([worker(), worker(), worker(), worker(), acker()]);
