/**
 * Small process and network helpers for the demo's real parts (Mosquitto, socat): find a program, spawn it
 * with its output kept for error messages, wait for a condition, find a free loopback port.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { randomInt } from 'node:crypto';
import { createConnection, createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { DemoError } from './errors.js';

/** A spawned child whose stdout+stderr are kept (last 64 KiB) for error messages. */
export interface KeptProcess {
  readonly child: ChildProcess;
  output(): string;
  readonly running: boolean;
  /** Resolves when the process has exited (immediately if it already has). */
  exited(): Promise<void>;
  /** Sends `signal` (default SIGKILL) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export function spawnKept(cmd: string, args: readonly string[], opts: SpawnOptions = {}): KeptProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let out = '';
  const keep = (b: Buffer) => {
    out += b.toString('utf8');
    if (out.length > 65_536) out = out.slice(-65_536);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  // A missing binary must become a clear message, not an unhandled 'error' event.
  child.on('error', (err) => keep(Buffer.from(`\n[spawn error] ${err.message}\n`)));
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  let spawnFailed = false;
  const exitedP = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => {
      spawnFailed = true;
      resolve();
    });
  });
  return {
    child,
    output: () => out,
    get running() {
      return !gone() && !spawnFailed;
    },
    exited: () => (gone() || spawnFailed ? Promise.resolve() : exitedP),
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (!gone() && !spawnFailed) {
        child.kill(signal);
        await exitedP;
      }
    },
  };
}

/**
 * The absolute path of an installed program (or of `name` itself when it is a path), or undefined. Looks in PATH and in the sbin directories, which
 * a normal user's PATH on Debian leaves out (mosquitto lives in /usr/sbin).
 */
export async function findProgram(
  name: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | undefined> {
  if (name.includes('/')) return (await isExecutable(name)) ? name : undefined;
  const dirs = [...(env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'].filter(
    Boolean,
  );
  for (const dir of dirs) {
    const file = join(dir, name);
    if (await isExecutable(file)) return file;
  }
  return undefined;
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Thrown from a `waitUntil` check to stop waiting at once (the awaited thing can no longer happen). */
export class StopWaiting extends Error {}

export interface WaitUntilOptions {
  /** Give up after this many ms without success (default 10 s); with `progress`, without progress. */
  timeout?: number;
  /** Re-check this often, in ms (default 20). */
  interval?: number;
  /** Says what was awaited, for the timeout error. */
  what?: string;
  /**
   * For long work that moves in steps (a drain, a run with progress lines): a value that changes while the
   * work advances (a count, a length). Each change restarts the `timeout`, so a busy machine that works
   * slowly still gets there, while work that stops advancing fails after `timeout` as before.
   */
  progress?: () => unknown;
}

/** `waitUntil`'s timeout when none is given. */
export const WAIT_DEFAULT_TIMEOUT_MS = 10_000;

/**
 * Resolves with the first truthy value of `check()`, re-checking every `interval` ms until `timeout` (counted
 * from the last change of `progress`, when given).
 */
export async function waitUntil<T>(
  check: () => T | Promise<T>,
  opts: WaitUntilOptions = {},
): Promise<NonNullable<T>> {
  const timeout = opts.timeout ?? WAIT_DEFAULT_TIMEOUT_MS;
  let deadline = Date.now() + timeout;
  let seen = opts.progress?.();
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      if (err instanceof StopWaiting) throw err;
      lastError = err;
    }
    if (opts.progress) {
      const now = opts.progress();
      if (!Object.is(now, seen)) {
        seen = now;
        deadline = Date.now() + timeout;
      }
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      const idle = opts.progress ? ` without progress (stuck at ${String(seen)})` : '';
      throw new DemoError(
        'TIMEOUT',
        `timed out after ${timeout} ms${idle} waiting for ${opts.what ?? 'a condition'}${why}`,
        {
          cause: lastError,
        },
      );
    }
    await delay(opts.interval ?? 20);
  }
}

/** Lowest port `freePort` hands out: above the well-known and most registered service ports. */
const PORT_FLOOR = 20_000;

/** The kernel's range for outgoing connections' source ports (and for `listen(0)`). */
async function ephemeralRange(): Promise<[number, number]> {
  try {
    const [lo, hi] = (await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'))
      .trim()
      .split(/\s+/)
      .map(Number);
    if (Number.isInteger(lo) && Number.isInteger(hi)) return [lo as number, hi as number];
  } catch {
    // not Linux: assume the IANA dynamic range
  }
  return [49_152, 65_535];
}

/** Binds and closes a listener on 127.0.0.1:`port` (0 = the kernel picks); resolves with the port, or 0. */
function tryBind(port: number): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(0));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      const addr = srv.address();
      const got = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(got));
    });
  });
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago, for a server that a child process (Mosquitto, moto)
 * binds next. Chosen at random *below* the kernel's ephemeral range: a port from `listen(0)` lies inside
 * that range, so between our check and the child's bind any outgoing connection on the machine (another
 * test's client, a reconnect loop) could take it as its source port, and the child would fail to bind, or a
 * client could connect to itself. Below the range only another explicit bind can take it.
 */
export async function freePort(): Promise<number> {
  const [lo] = await ephemeralRange();
  if (lo - PORT_FLOOR >= 1_000) {
    for (let i = 0; i < 50; i++) {
      const port = await tryBind(randomInt(PORT_FLOOR, lo));
      if (port) return port;
    }
  }
  const port = await tryBind(0);
  if (!port) throw new Error('no free TCP port on 127.0.0.1');
  return port;
}

/** True when something accepts a TCP connection on host:port right now. */
export function canConnect(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ port, host });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}
