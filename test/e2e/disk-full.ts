/**
 * The disk-full end-to-end tests' shared parts: the rig with its buffer on a small real tmpfs, the cloud's
 * `disk_full` drop reports, and the check that every seq was delivered or reported.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EventV1 } from '../../cloud-contract/index.js';
import { smallDisk } from '../buffer/small-disk.js';
import type { TapTest } from '../buffer/fixtures.js';
import { startRig, type Rig } from './helpers.js';

/** The rig with its buffer (and so the event queue beside it) on a 24 MiB tmpfs. */
export async function rigOnSmallDisk(t: TapTest): Promise<Rig & { disk: string }> {
  const rig = await startRig(t);
  const disk = await smallDisk(t, '24m');
  const bufferPath = join(disk, 'buffer');
  const config = await readFile(rig.configFile, 'utf8');
  await writeFile(rig.configFile, config.replace(`path: ${rig.bufferPath}`, `path: ${bufferPath}`));
  return { ...rig, bufferPath, disk };
}

type Dropped = Extract<EventV1, { event: 'samples_dropped' }>;
export const diskFullEvents = (rig: Rig): Dropped[] =>
  rig.cloud.events.filter(
    (e): e is Dropped => e.event === 'samples_dropped' && e.data.reason === 'disk_full',
  );

/**
 * Every seq 1..max is at the cloud or in a reported drop (`samples_dropped` with its seq range): nothing
 * stored was lost silently, and no seq was skipped.
 */
export function noGap(t: TapTest, rig: Rig): number {
  const seqs = rig.cloud.seqs();
  const max = Math.max(0, ...seqs);
  const reported = (s: number) =>
    rig.cloud.events.some(
      (e) => e.event === 'samples_dropped' && e.data.count > 0 && s >= e.data.firstSeq && s <= e.data.lastSeq,
    );
  const missing: number[] = [];
  for (let s = 1; s <= max; s++) if (!seqs.has(s) && !reported(s)) missing.push(s);
  t.same(missing, [], `every seq 1…${max} delivered or reported dropped`);
  return max;
}
