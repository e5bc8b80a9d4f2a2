/**
 * A full garbage collection from a test, without --expose-gc on the command line (the test runner's node
 * arguments are shared config). aws-crt frees a closed native MQTT client only when its JS object is
 * collected, and until then the process cannot exit.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

export async function collectGarbage(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}
