/**
 * sd_notify(3) from Node without a native addon.
 *
 * Node cannot send unix datagrams, so the message has to leave through something else. Two ways, best first:
 *
 * 1. **Inherited socket (`fd` mode).** `systemd/notify-exec` (installed in front of the agent by
 *    `/usr/bin/meterlink`) connects a datagram socket to `$NOTIFY_SOCKET` and execs Node with
 *    `METERLINK_NOTIFY_FD`. A `write()` on a connected datagram socket sends one datagram, and the kernel
 *    stamps it with the writer's PID, which is the unit's main PID. systemd accepts that under
 *    `NotifyAccess=main` and can always attribute it: no short-lived sender.
 * 2. **Long-lived helper child (`helper` mode).** Without that fd, one `socat` (or `python3`) child stays up
 *    for the agent's lifetime and turns each line on its stdin into a datagram. The sender is then a child,
 *    so the unit needs `NotifyAccess=all`. Never a `systemd-notify` per message: a sender that exits before
 *    systemd reads the datagram cannot be attributed to the unit on systemd < 254 (Debian 12 has 252).
 *
 * Everything soft-fails: no `NOTIFY_SOCKET` means a silent no-op; a missing helper or a refused socket is
 * logged once and the agent carries on (systemd's start timeout or watchdog restarts it if that matters).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants as fsConstants, writeSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The two logger methods the runtime uses; a pino logger fits. */
export interface RuntimeLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export type Env = Readonly<Record<string, string | undefined>>;

export type NotifierMode = 'off' | 'fd' | 'helper';

/** The service-manager messages the agent sends. Every method is safe to call in any state. */
export interface Notifier {
  /** How messages leave: `off` (not under systemd, or disabled after a failure), `fd` or `helper`. */
  readonly mode: NotifierMode;
  /** `READY=1`: start-up finished (buffer open, drivers wired). */
  ready(): void;
  /** `STATUS=…`: one line shown by `systemctl status`. Newlines are flattened, length capped. */
  status(text: string): void;
  /** `WATCHDOG=1`: call only through `agent/runtime/watchdog.ts`, which checks for progress. */
  watchdog(): void;
  /** `STOPPING=1`: shutdown has begun. */
  stopping(): void;
  /** `EXTEND_TIMEOUT_USEC=…`: start-up or shutdown needs `ms` more (e.g. a long LevelDB repair). */
  extendTimeout(ms: number): void;
  /** Stops the helper (after it has sent what it was given) or closes the socket. */
  close(): Promise<void>;
}

export type HelperName = 'socat' | 'python3';

export interface NotifierDeps {
  env: Env;
  log: RuntimeLog;
  /** Helpers tried in order for `helper` mode, looked up on `env.PATH` (default socat, then python3). */
  helpers?: readonly HelperName[];
  /** How long `close()` waits for the helper to exit before killing it (default 2000 ms). */
  closeTimeoutMs?: number;
}

/** Longest STATUS= text sent; systemd shows one line anyway. */
export const maxStatusLength = 200;

const python3Sender = [
  'import os, socket, sys',
  "a = os.environ['NOTIFY_SOCKET']",
  "a = '\\0' + a[1:] if a.startswith('@') else a",
  's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
  'for line in sys.stdin.buffer:',
  '    s.sendto(line, a)',
].join('\n');

/** Creates the notifier for this process's environment (see the module comment for the modes). */
export function createNotifier(deps: NotifierDeps): Notifier {
  const { env, log } = deps;
  const socketPath = env.NOTIFY_SOCKET;
  if (!socketPath) return offNotifier();
  const fdText = env.METERLINK_NOTIFY_FD;
  if (fdText !== undefined && /^\d+$/.test(fdText)) return fdNotifier(Number(fdText), log);
  return helperNotifier(socketPath, deps);
}

function offNotifier(): Notifier {
  return {
    mode: 'off',
    ready() {},
    status() {},
    watchdog() {},
    stopping() {},
    extendTimeout() {},
    close: () => Promise.resolve(),
  };
}

/** The message text for each call; shared by both transports. */
function messages(send: (msg: string) => void): Omit<Notifier, 'mode' | 'close'> {
  return {
    ready: () => send('READY=1'),
    status: (text) => send(`STATUS=${flattenStatus(text)}`),
    watchdog: () => send('WATCHDOG=1'),
    stopping: () => send('STOPPING=1'),
    extendTimeout: (ms) => send(`EXTEND_TIMEOUT_USEC=${Math.max(0, Math.round(ms * 1000))}`),
  };
}

/** One line, no control characters, at most `maxStatusLength` characters. */
export function flattenStatus(text: string): string {
  const line = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return line.length > maxStatusLength ? `${line.slice(0, maxStatusLength - 1)}…` : line;
}

function fdNotifier(fd: number, log: RuntimeLog): Notifier {
  let mode: NotifierMode = 'fd';
  const warned = new Set<string>();
  const send = (msg: string) => {
    if (mode === 'off') return;
    try {
      writeSync(fd, msg);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
      // EAGAIN: systemd's queue is full for a moment; losing one ping or status line is harmless.
      if (code !== 'EAGAIN') mode = 'off';
      if (!warned.has(code)) {
        warned.add(code);
        log.warn(
          { code, fd, message: msg },
          mode === 'off'
            ? 'sd_notify: the notify socket is unusable; no more messages to systemd from this run'
            : 'sd_notify: notify socket busy, message dropped',
        );
      }
    }
  };
  return {
    get mode() {
      return mode;
    },
    ...messages(send),
    close() {
      if (mode !== 'off') {
        mode = 'off';
        try {
          closeSync(fd);
        } catch {
          // Already closed: nothing left to release.
        }
      }
      return Promise.resolve();
    },
  };
}

/** Finds an executable `name` on `PATH`, like the shell would. */
export function findOnPath(name: string, pathVar: string | undefined): string | undefined {
  for (const dir of (pathVar ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // Not here; try the next directory.
    }
  }
  return undefined;
}

function helperArgs(name: HelperName, socketPath: string): string[] {
  if (name === 'python3') return ['-c', python3Sender];
  // socat sends each read from its stdin as one datagram. Our writes are far below PIPE_BUF, so a read
  // never splits a message; it may join two, which is still a valid sd_notify datagram (one field a line).
  const address = socketPath.startsWith('@')
    ? `ABSTRACT-SENDTO:${socketPath.slice(1)}`
    : `UNIX-SENDTO:${socketPath}`;
  return ['-u', 'STDIN', address];
}

function helperNotifier(socketPath: string, deps: NotifierDeps): Notifier {
  const { env, log } = deps;
  const names = deps.helpers ?? ['socat', 'python3'];
  let found: { name: HelperName; path: string } | undefined;
  for (const name of names) {
    const path = findOnPath(name, env.PATH);
    if (path) {
      found = { name, path };
      break;
    }
  }
  if (!found) {
    log.warn(
      { tried: names, notifySocket: socketPath },
      'sd_notify: no helper found (install socat, or start the agent through systemd/notify-exec); ' +
        'systemd will not hear READY=1 or watchdog pings',
    );
    return offNotifier();
  }

  let mode: NotifierMode = 'helper';
  let closing = false;
  let stderrTail = '';
  const child: ChildProcess = spawn(found.path, helperArgs(found.name, socketPath), {
    stdio: ['pipe', 'ignore', 'pipe'],
    env: { ...env },
  });
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const failed = (why: object) => {
    if (mode === 'off') return;
    mode = 'off';
    if (!closing)
      log.warn(
        { helper: found.path, notifySocket: socketPath, ...why, stderr: stderrTail.trim() },
        'sd_notify: the helper stopped; no more messages to systemd from this run',
      );
  };
  child.once('error', (err) => failed({ error: err.message }));
  child.once('exit', (code, signal) => failed({ code, signal }));
  // EPIPE after the helper died is reported by the exit handler; it must not crash the agent.
  child.stdin?.on('error', () => {});
  child.stderr?.on('data', (b: Buffer) => {
    stderrTail = (stderrTail + b.toString('utf8')).slice(-2000);
  });
  // The helper must never keep the agent's event loop alive on its own.
  child.unref();
  (child.stderr as { unref?: () => void } | null)?.unref?.();
  (child.stdin as { unref?: () => void } | null)?.unref?.();
  log.info(
    { helper: found.path, pid: child.pid, notifySocket: socketPath },
    'sd_notify: sending through a helper child (the unit needs NotifyAccess=all)',
  );

  const send = (msg: string) => {
    if (mode === 'off' || !child.stdin?.writable) return;
    child.stdin.write(`${msg}\n`);
  };
  return {
    get mode() {
      return mode;
    },
    ...messages(send),
    async close() {
      if (closing) return exited;
      closing = true;
      // Shutdown waits for the helper to pass on what it was given, so hold the event loop open for it.
      child.ref();
      child.stdin?.end();
      const timeout = deps.closeTimeoutMs ?? 2000;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), timeout);
      });
      const late = await Promise.race([exited.then(() => false), timedOut]);
      clearTimeout(timer);
      if (late) {
        child.kill('SIGKILL');
        await exited;
      }
      mode = 'off';
    },
  };
}

/**
 * The watchdog timeout systemd set for this process (`WATCHDOG_USEC`), in ms; undefined when there is no
 * watchdog or it is meant for another process (`WATCHDOG_PID`, as sd_watchdog_enabled(3) checks).
 */
export function watchdogTimeoutMs(env: Env, pid: number = process.pid): number | undefined {
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined || !/^\d+$/.test(usec)) return undefined;
  const value = Number(usec);
  if (value <= 0) return undefined;
  const forPid = env.WATCHDOG_PID;
  if (forPid !== undefined && forPid !== '' && Number(forPid) !== pid) return undefined;
  return value / 1000;
}

/**
 * How often to ping: half the watchdog timeout (the margin sd_watchdog_enabled(3) recommends), in whole ms
 * and at least 1; undefined when there is no watchdog for this process.
 */
export function watchdogIntervalMs(env: Env, pid: number = process.pid): number | undefined {
  const timeout = watchdogTimeoutMs(env, pid);
  return timeout === undefined ? undefined : Math.max(1, Math.floor(timeout / 2));
}
