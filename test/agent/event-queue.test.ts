import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EventV1 } from '../../cloud-contract/index.js';
import { openEventQueue } from '../../agent/daemon/event-queue.js';
import { tempDir } from '../harness/tmp.js';

const ev = (n: number): EventV1 => ({
  v: 1,
  kind: 'event',
  device: 'apt-12-meterbox',
  ts: 1_700_000_000_000 + n,
  id: `e-${n}`,
  severity: 'info',
  event: 'agent_started',
  data: { version: '0.1.0' },
});

t.test('the queue survives a reopen, drops what is not a contract event, and stays bounded', async (t) => {
  const file = join(await tempDir(t), 'events.jsonl');
  const q = await openEventQueue(file, 3);
  t.same(q.items, [], 'no file yet: empty');
  for (let i = 1; i <= 4; i++) q.push(ev(i));
  q.shift();
  await q.flushed();
  t.same(
    q.items.map((e) => e.id),
    ['e-3', 'e-4'],
    'bounded to 3 (oldest dropped), then one published',
  );
  const again = await openEventQueue(file, 3);
  t.same(again.items, q.items, 'the same events after a reopen');

  await writeFile(
    file,
    `${JSON.stringify(ev(9))}\n{"torn":\nnot json\n${JSON.stringify({ ...ev(10), event: 'nope' })}\n`,
  );
  const cleaned = await openEventQueue(file);
  t.same(
    cleaned.items.map((e) => e.id),
    ['e-9'],
    'lines that are not valid events are dropped',
  );
  cleaned.shift();
  await cleaned.flushed();
  t.equal(await readFile(file, 'utf8'), '', 'an empty queue is an empty file');
});
