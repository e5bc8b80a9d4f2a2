/**
 * Damage to the agent's store, end to end: a backlog built offline across a restart (older samples in a
 * LevelDB table, newer ones in its log), then part of the table zero-filled and 500 bytes of the log garbled,
 * as a failing SD card or a power cut leaves them. On the next start the cloud gets one `buffer_repaired`
 * event naming the exact lost seq ranges; every other seq arrives; and numbering goes on from the highest seq
 * used before, so the gap the cloud sees is exactly what the event names.
 */
import t from 'tap';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { openLevelBuffer } from '../../buffer/index.js';
import type { EventV1 } from '../../cloud-contract/index.js';
import { spawnMeterlink } from '../harness/cli.js';
import { endAfterMqtt } from '../harness/exit.js';
import { AGENT_START_MS, waitFor } from '../harness/wait.js';
import { cloudListening } from './cloud-listening.js';
import { startRig, THING } from './helpers.js';

type Repaired = Extract<EventV1, { event: 'buffer_repaired' }>;

async function overwrite(file: string, at: number, bytes: Buffer): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    await fh.write(bytes, 0, bytes.length, at);
  } finally {
    await fh.close();
  }
}

async function biggest(dir: string, ext: string): Promise<string> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(ext));
  const sized = await Promise.all(files.map(async (f) => ({ f, size: (await stat(join(dir, f))).size })));
  const f = sized.sort((a, b) => b.size - a.size)[0];
  if (!f) throw new Error(`no ${ext} in ${dir}: ${files.join(' ')}`);
  return join(dir, f.f);
}

await t.test(
  'a damaged store: the cloud gets the exact lost ranges, every other seq, and no seq jump',
  async (t) => {
    const rig = await startRig(t);
    const depth = async () =>
      (JSON.parse(await readFile(rig.statusFile, 'utf8')) as { buffer: { depth: number; lastSeq: number } })
        .buffer;

    // Online first, then a backlog offline across a restart.
    let agent = spawnMeterlink(['run', '--config', rig.configFile]);
    t.teardown(() => agent.kill('SIGKILL'));
    await waitFor(() => rig.cloud.samples.length >= 3, {
      what: `samples at the cloud\n${agent.output()}`,
      timeout: AGENT_START_MS,
    });
    await rig.broker.kill();
    // Publishes the broker took before it died may have reached the cloud without a PUBACK to the agent.
    const atKill = Math.max(0, ...rig.cloud.seqs());
    await waitFor(async () => (await depth()).depth >= 15, { what: 'a backlog', timeout: 30_000 });
    await agent.kill('SIGTERM');
    // A reopen turns the log into a table (as the next start would): the older backlog is now in an .ldb.
    await (await openLevelBuffer({ path: rig.bufferPath, maxSize: Infinity })).close();
    agent = spawnMeterlink(['run', '--config', rig.configFile]);
    const inTable = (await depth()).lastSeq;
    await waitFor(async () => (await depth()).lastSeq >= inTable + 15, {
      what: `more backlog in the log\n${agent.output()}`,
      timeout: AGENT_START_MS,
    });
    await agent.kill('SIGTERM');
    const lastBefore = (await depth()).lastSeq;

    const table = await biggest(rig.bufferPath, '.ldb');
    const size = (await stat(table)).size;
    await overwrite(table, Math.floor(size / 3), Buffer.alloc(Math.floor(size / 4)));
    const log = await biggest(rig.bufferPath, '.log');
    const junk = Buffer.from(Array.from({ length: 500 }, (_, i) => (i * 131 + 7) & 0xff));
    await overwrite(log, Math.floor((await stat(log)).size / 2), junk);

    await rig.broker.start();
    await cloudListening(rig.cloud, THING);
    agent = spawnMeterlink(['run', '--config', rig.configFile]);
    const ev = await waitFor(
      () => rig.cloud.events.find((e): e is Repaired => e.event === 'buffer_repaired'),
      { what: `buffer_repaired at the cloud\n${agent.output()}`, timeout: AGENT_START_MS },
    );
    const lost = new Set(
      ev.data.lost.flatMap((r) =>
        Array.from({ length: r.lastSeq - r.firstSeq + 1 }, (_, i) => r.firstSeq + i),
      ),
    );
    t.ok(ev.data.count > 0, `${ev.data.count} lost: ${JSON.stringify(ev.data.lost)}`);
    t.equal(ev.data.count, lost.size, 'count is the size of the ranges');
    t.equal(ev.data.exact, true);
    t.equal(ev.data.nextSeq, lastBefore + 1, `seqs go on at ${lastBefore + 1}`);
    t.equal(ev.data.action, 'repaired');

    // Everything up to the last seq before the damage arrives or is named lost; nothing named lost arrives.
    await waitFor(
      () => {
        const seqs = rig.cloud.seqs();
        for (let s = 1; s <= lastBefore; s++) if (!seqs.has(s) && !lost.has(s)) return false;
        return seqs.has(lastBefore + 1);
      },
      { what: `every seq delivered or reported\n${agent.output()}`, timeout: 30_000 },
    );
    const seqs = rig.cloud.seqs();
    t.same(
      [...lost].filter((s) => s > atKill && seqs.has(s)),
      [],
      'nothing reported lost was delivered',
    );
    t.ok(seqs.has(lastBefore + 1), `the first new sample has seq ${lastBefore + 1}: no jump`);
    t.notOk(
      [...seqs].some((s) => s > lastBefore + 1000),
      'no seq far above the last one',
    );
    t.same(rig.cloud.rejected, []);
    await agent.kill('SIGTERM');
    t.equal(agent.child.exitCode, 0);
  },
);

await endAfterMqtt(t);
