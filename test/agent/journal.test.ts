import t from 'tap';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import {
  isJournalStream,
  journalDestination,
  syslogPriority,
  withPriority,
} from '../../agent/runtime/journal.js';
import { tempDir } from '../harness/tmp.js';

t.test('pino levels map to syslog priorities', async (t) => {
  t.same(
    [10, 20, 30, 40, 50, 60].map(syslogPriority),
    [7, 7, 6, 4, 3, 2],
    'trace, debug, info, warn, error, fatal',
  );
  t.equal(withPriority('{"level":40,"msg":"x"}\n'), '<4>{"level":40,"msg":"x"}\n');
  t.equal(withPriority('not json\n'), '<6>not json\n', 'a line of another shape is info');
});

t.test('stdout is the journal only when $JOURNAL_STREAM names that very file', async (t) => {
  const dir = await tempDir(t);
  const fd = openSync(join(dir, 'stream'), 'w');
  const other = openSync(join(dir, 'other'), 'w');
  t.teardown(() => {
    closeSync(fd);
    closeSync(other);
  });
  const st = fstatSync(fd);
  const env = (v: string | undefined) => ({ JOURNAL_STREAM: v });
  t.equal(isJournalStream(fd, env(`${st.dev}:${st.ino}`)), true);
  t.equal(isJournalStream(other, env(`${st.dev}:${st.ino}`)), false, 'another file (stdout redirected)');
  t.equal(isJournalStream(fd, env(undefined)), false, 'not under systemd');
  t.equal(isJournalStream(fd, env('garbage')), false);
  t.equal(isJournalStream(9999, env(`${st.dev}:${st.ino}`)), false, 'a closed fd');
});

t.test('a pino logger on the journal destination writes each line with its level prefix', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'journal');
  const sink = pino.destination({ dest: file, sync: true });
  const log = pino({ level: 'debug', base: { thing: 'box' } }, journalDestination(sink));
  log.debug('d');
  log.info('i');
  log.warn({ days: 30 }, 'certificate expires soon');
  log.error('e');
  log.fatal('f');
  await new Promise<void>((resolve, reject) =>
    journalDestination(sink).flush((err) => (err ? reject(err) : resolve())),
  );
  const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
  t.same(
    lines.map((l) => l.slice(0, 3)),
    ['<7>', '<6>', '<4>', '<3>', '<2>'],
  );
  const warn = JSON.parse((lines[2] as string).slice(3)) as { level: number; msg: string; days: number };
  t.match(
    warn,
    { level: 40, msg: 'certificate expires soon', days: 30 },
    'the JSON after the prefix is intact',
  );
  // A sink without flush still answers a flush.
  let flushed = false;
  journalDestination({ write: () => true }).flush(() => (flushed = true));
  t.ok(flushed);
});
