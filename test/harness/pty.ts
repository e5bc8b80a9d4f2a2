/**
 * A kernel pseudo-terminal pair made by socat: two linked device paths, bytes written to one come out of
 * the other, exactly like the two ends of an RS-485 adapter cable. `unplug()` kills socat (both ends
 * vanish, like pulling the USB adapter) and `replug()` brings the same paths back.
 * The pair itself is `meterlink demo`'s (agent/demo/pty.ts); this wires it to the test's teardown.
 */
import { startSocatPty, type PtyPair } from '../../agent/demo/pty.js';
import { tempDir, type Teardown } from './tmp.js';

export type { PtyPair } from '../../agent/demo/pty.js';

export async function startPtyPair(t: Teardown, opts: { dir?: string } = {}): Promise<PtyPair> {
  const dir = opts.dir ?? (await tempDir(t, 'meterlink-pty-'));
  const pair = await startSocatPty({ dir, name: 'tty' });
  t.teardown(() => pair.stop());
  return pair;
}
