import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/** A spawned child whose stdout+stderr are kept (last 64 KiB) for error messages. */
export interface Spawned {
  readonly child: ChildProcess;
  output(): string;
  /** Resolves when the process has exited (immediately if it already has). */
  exited(): Promise<void>;
  /** Sends `signal` (default SIGKILL) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export function spawnLogged(cmd: string, args: readonly string[], opts: SpawnOptions = {}): Spawned {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let out = '';
  const keep = (b: Buffer) => {
    out += b.toString('utf8');
    if (out.length > 65_536) out = out.slice(-65_536);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  // A missing binary must fail the test with a clear message, not crash the runner.
  child.on('error', (err) => keep(Buffer.from(`\n[spawn error] ${err.message}\n`)));
  const exitedP = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  return {
    child,
    output: () => out,
    exited: () => (child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : exitedP),
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        await exitedP;
      }
    },
  };
}
