import t from 'tap';
import { join } from 'node:path';
import { openLevelBuffer } from '../../buffer/index.js';
import { tempDir } from '../harness/tmp.js';
import { bufferSuite } from './buffer.suite.js';

let n = 0;
bufferSuite(t, async (t, opts) => {
  const dir = await tempDir(t, 'meterlink-buf-');
  const b = await openLevelBuffer({ ...opts, path: join(dir, `db${n++}`) });
  t.teardown(() => b.close());
  return b;
});
