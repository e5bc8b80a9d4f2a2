import t from 'tap';
import { createMemoryBuffer } from '../../buffer/index.js';
import { bufferSuite } from './buffer.suite.js';

bufferSuite(t, async (t, opts) => {
  const b = await createMemoryBuffer(opts);
  t.teardown(() => b.close());
  return b;
});
