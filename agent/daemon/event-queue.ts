/**
 * Events waiting to be published, kept on disk so that a crash or power cut between "meter unreadable" and
 * "connected again" does not lose the event that explains a gap. Small by design (events are rare): the whole
 * queue is rewritten atomically (temp file + rename) on every change, as JSON lines; lines that do not parse
 * as contract events are dropped on load (a torn write can only affect the temp file).
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { parseEvent, type EventV1 } from '../../cloud-contract/index.js';

export interface EventQueue {
  /** Oldest first. */
  readonly items: readonly EventV1[];
  push(ev: EventV1): void;
  /** Removes the oldest event (it was published). */
  shift(): void;
  /** Resolves when everything so far is on disk. */
  flushed(): Promise<void>;
}

export async function openEventQueue(file: string, max = 1000): Promise<EventQueue> {
  const items: EventV1[] = [];
  try {
    for (const line of (await readFile(file, 'utf8')).split('\n')) {
      if (!line.trim()) continue;
      const r = parseEvent(line);
      if (r.ok) items.push(r.message);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  let writing = Promise.resolve();
  let dirty = false;
  const persist = () => {
    dirty = true;
    writing = writing.then(async () => {
      if (!dirty) return;
      dirty = false;
      const tmp = `${file}.tmp`;
      await writeFile(tmp, items.map((e) => JSON.stringify(e)).join('\n') + (items.length ? '\n' : ''));
      await rename(tmp, file);
    });
    // A failed write (disk full) must not stop the agent: the event is still in memory and in the log.
    writing = writing.catch(() => {});
  };
  return {
    items,
    push(ev) {
      items.push(ev);
      if (items.length > max) items.shift();
      persist();
    },
    shift() {
      items.shift();
      persist();
    },
    flushed: () => writing,
  };
}
