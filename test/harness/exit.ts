/**
 * For test files that used aws-crt MQTT clients: collect garbage while the process is still running normally,
 * then end the tap test and exit. aws-crt frees a closed native client only when its JS object is collected;
 * left to process exit, that can stall the exit for seconds or abort it (SIGABRT seen after clients that
 * reconnected through broker restarts). Call it at the very end, after every `await t.test(...)`.
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

export async function endAfterMqtt(t: { end(): void }): Promise<void> {
  await collectGarbage();
  t.end();
  setImmediate(() => process.exit());
}
