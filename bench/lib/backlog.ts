/** A LevelDB buffer at `path` filled with `count` SDM630 samples at 1 Hz ending now (a recovery backlog). */
import { openLevelBuffer } from '../../buffer/index.js';
import { eastronSdm630 } from '../../drivers/profiles/eastron-sdm630.js';
import { readings } from './week.js';

export async function fillBacklog(path: string, count: number): Promise<void> {
  const buf = await openLevelBuffer({ path, maxSize: Infinity });
  let chunk = [];
  for (const s of readings(eastronSdm630, count, Date.now() - count * 1000, 'main')) {
    chunk.push(s);
    if (chunk.length === 1000) {
      await buf.append(chunk);
      chunk = [];
    }
  }
  if (chunk.length > 0) await buf.append(chunk);
  await buf.close();
}
