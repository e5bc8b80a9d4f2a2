/**
 * Where "the clock is synchronised" comes from (`time.source`).
 *
 * - `kernel`: the kernel's NTP state, `adjtimex(2)` with modes 0 (read only, no privilege needed). Every time
 *   daemon that disciplines the clock tells the kernel: systemd-timesyncd, chronyd, ntpd/ntpsec, openntpd,
 *   gpsd+chrony. Synchronised = STA_UNSYNC clear and maxerror below 16 s (the kernel's own limit, at which it
 *   sets STA_UNSYNC itself) — the same test systemd's `timedatectl` NTPSynchronized makes. Node has no binding,
 *   so the syscall is made by `perl` (perl-base is Essential on Debian and Raspberry Pi OS, so it is on every
 *   such box): one short child process per probe, ~6.5 ms, run asynchronously.
 * - `file`: a file's existence (`time.syncFile`, default `/run/systemd/timesync/synchronized`, which
 *   systemd-timesyncd touches).
 * - `trust`: always synchronised (a battery-backed RTC, or a clock you vouch for).
 * - `auto` (default): `file` when `time.syncFile` is set, else `kernel` when the probe runs, else `file` with
 *   the timesyncd path.
 */
import { execFile, execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';

export const timeSources = ['auto', 'kernel', 'file', 'trust'] as const;
export type TimeSourceName = (typeof timeSources)[number];

export const DEFAULT_SYNC_FILE = '/run/systemd/timesync/synchronized';

/** One answer of a source. */
export interface SyncReading {
  readonly synced: boolean;
  /** Human-readable: which source, and why ("kernel (chronyd): synchronised, max error 12 ms"). */
  readonly detail: string;
}

export interface TimeSource {
  /** The source that decides (never `auto`). */
  readonly name: Exclude<TimeSourceName, 'auto'>;
  /** The latest answer (cheap; a kernel source refreshes in the background). */
  read(): SyncReading;
  /** For `auto`: why this source was picked. */
  readonly why: string;
}

// ---- kernel: adjtimex(2)

/** `adjtimex` syscall numbers (asm-generic 171; the older ABIs 124; x86-64 159). */
const adjtimexSyscall: Partial<Record<NodeJS.Architecture, number>> = {
  x64: 159,
  arm64: 171,
  riscv64: 171,
  loong64: 171,
  arm: 124,
  ia32: 124,
  ppc64: 124,
  s390x: 124,
};

/**
 * struct timex starts: int modes; long offset, freq, maxerror, esterror; int status (longs aligned), the same on
 * 32- and 64-bit. Prints "<return> <status> <maxerror µs> <esterror µs> <offset>".
 */
const PERL_ADJTIMEX =
  'my $b = "\\0" x 512; my $r = syscall($ARGV[0], $b); if ($r < 0) { print STDERR "adjtimex: $!\\n"; exit 2 }' +
  ' my @f = unpack("i x![l!] l! l! l! l! i", $b); print "$r $f[5] $f[3] $f[4] $f[1]\\n";';

export const STA_UNSYNC = 0x0040;
export const STA_NANO = 0x2000;
export const TIME_ERROR = 5;
/** The kernel's NTP_PHASE_LIMIT in µs: at this maxerror it marks the clock unsynchronised itself. */
export const MAX_ERROR_LIMIT_US = 16_000_000;

export interface KernelTimex {
  /** adjtimex return value: TIME_OK 0 … TIME_ERROR 5. */
  readonly state: number;
  readonly status: number;
  readonly maxErrorUs: number;
  readonly estErrorUs: number;
  /** Remaining PLL offset, µs. */
  readonly offsetUs: number;
}

/** Parses the probe's output line. Throws on anything else. */
export function parseKernelLine(line: string): KernelTimex {
  const m = /^(-?\d+) (\d+) (-?\d+) (-?\d+) (-?\d+)\s*$/.exec(line);
  if (!m) throw new Error(`unexpected adjtimex probe output: ${JSON.stringify(line.slice(0, 200))}`);
  const [state, status, maxErrorUs, estErrorUs, offset] = m.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  return { state, status, maxErrorUs, estErrorUs, offsetUs: status & STA_NANO ? offset / 1000 : offset };
}

export function kernelSynced(t: KernelTimex): boolean {
  return !(t.status & STA_UNSYNC) && t.maxErrorUs >= 0 && t.maxErrorUs < MAX_ERROR_LIMIT_US;
}

const ms = (us: number) =>
  Math.abs(us) >= 10_000 ? `${Math.round(us / 1000)} ms` : `${(us / 1000).toFixed(1)} ms`;

export function describeKernel(t: KernelTimex, daemon: string | undefined): string {
  const who = `kernel (adjtimex${daemon ? `, ${daemon} running` : ', no time daemon running'})`;
  if (kernelSynced(t))
    return `${who}: synchronised, max error ${ms(t.maxErrorUs)}, estimated error ${ms(t.estErrorUs)}, offset ${ms(t.offsetUs)}`;
  return `${who}: NOT synchronised (STA_UNSYNC ${t.status & STA_UNSYNC ? 'set' : 'clear'}, max error ${ms(t.maxErrorUs)}) — ${unsyncedCause(daemon)}`;
}

/** The likely reason the kernel says unsynchronised, from which time daemon runs. */
export function unsyncedCause(daemon: string | undefined): string {
  if (daemon === undefined)
    return 'no time daemon is running: install chrony or systemd-timesyncd, or set time.source: trust if the box has a battery RTC';
  if (daemon === 'gpsd')
    return 'gpsd runs but nothing feeds the kernel clock from it: pair it with chrony (refclock SHM)';
  return `${daemon} runs but has not synchronised yet: check the network reaches its NTP servers (UDP 123) and its log`;
}

const daemonNames: Record<string, string> = {
  chronyd: 'chronyd',
  ntpd: 'ntpd',
  'systemd-timesyn': 'systemd-timesyncd',
  openntpd: 'openntpd',
  ptp4l: 'ptp4l',
  phc2sys: 'phc2sys',
  gpsd: 'gpsd',
};

/** The first time daemon found among running processes (by /proc/<pid>/comm), if any. */
export function detectTimeDaemon(proc = '/proc'): string | undefined {
  let found: string | undefined;
  let entries: string[];
  try {
    entries = readdirSync(proc);
  } catch {
    return undefined;
  }
  for (const pid of entries) {
    if (!/^\d+$/.test(pid)) continue;
    let comm: string;
    try {
      comm = readFileSync(`${proc}/${pid}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    const name = daemonNames[comm];
    // A daemon that disciplines the clock wins over gpsd, which only feeds one.
    if (name && (found === undefined || found === 'gpsd')) found = name;
  }
  return found;
}

export interface KernelProbeOptions {
  perl?: string;
  arch?: NodeJS.Architecture;
}

function probeArgs(opts: KernelProbeOptions): { file: string; args: string[] } {
  const nr = adjtimexSyscall[opts.arch ?? process.arch];
  if (nr === undefined) throw new Error(`no adjtimex syscall number known for ${opts.arch ?? process.arch}`);
  return { file: opts.perl ?? 'perl', args: ['-e', PERL_ADJTIMEX, String(nr)] };
}

/** Reads the kernel's NTP state once, synchronously (at start). Throws with a reason if it cannot. */
export function probeKernelSync(opts: KernelProbeOptions = {}): KernelTimex {
  const { file, args } = probeArgs(opts);
  let out: string;
  try {
    out = execFileSync(file, args, { encoding: 'utf8', timeout: 5_000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    throw new Error(
      e.code === 'ENOENT'
        ? `${file} not found (the kernel probe runs adjtimex through perl)`
        : `adjtimex probe failed: ${(e.stderr ?? '').trim() || e.message}`,
    );
  }
  return parseKernelLine(out);
}

/** Reads the kernel's NTP state once, without blocking. */
export function probeKernel(opts: KernelProbeOptions = {}): Promise<KernelTimex> {
  const { file, args } = probeArgs(opts);
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'utf8', timeout: 5_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`adjtimex probe failed: ${stderr.trim() || err.message}`));
      else {
        try {
          resolve(parseKernelLine(stdout));
        } catch (e) {
          reject(e as Error);
        }
      }
    });
  });
}

export interface KernelSourceOptions extends KernelProbeOptions {
  /** Re-probe at most this often while unsynchronised (default 1 s, 10 s after 5 min) and synchronised (30 s). */
  unsyncedEveryMs?: number;
  syncedEveryMs?: number;
  monoNow?: () => number;
  /** Time daemon detection (default: scan /proc). */
  daemon?: () => string | undefined;
}

/** A kernel source: probes once now (throws if the probe cannot run), then refreshes in the background. */
export function kernelSource(opts: KernelSourceOptions = {}, why = 'time.source: kernel'): TimeSource {
  const monoNow = opts.monoNow ?? (() => performance.now());
  const daemonOf = opts.daemon ?? (() => detectTimeDaemon());
  let daemon = daemonOf();
  let last = probeKernelSync(opts);
  let reading: SyncReading = { synced: kernelSynced(last), detail: describeKernel(last, daemon) };
  let probedAt = monoNow();
  let probing = false;
  let unsyncedSince = probedAt;
  return {
    name: 'kernel',
    why,
    read() {
      // Every second while unsynchronised (a daemon usually synchronises within a minute of boot), every 10 s
      // after 5 min of that (a box with no time daemon should not spawn a process a second forever), 30 s once
      // synchronised (only a lost sync is caught; the clock stays usable meanwhile).
      const unsyncedFor = reading.synced ? 0 : monoNow() - unsyncedSince;
      const every = reading.synced
        ? (opts.syncedEveryMs ?? 30_000)
        : (opts.unsyncedEveryMs ?? (unsyncedFor > 300_000 ? 10_000 : 1_000));
      if (!probing && monoNow() - probedAt >= every) {
        probing = true;
        probeKernel(opts)
          .then((t) => {
            last = t;
            daemon = daemonOf();
            if (reading.synced && !kernelSynced(t)) unsyncedSince = monoNow();
            reading = { synced: kernelSynced(t), detail: describeKernel(t, daemon) };
          })
          .catch((err: unknown) => {
            // Keep the last answer but say the probe broke; an unsynced box stays held rather than guessing.
            reading = { synced: reading.synced, detail: `kernel: probe failed (${(err as Error).message})` };
          })
          .finally(() => {
            probing = false;
            probedAt = monoNow();
          });
      }
      return reading;
    },
  };
}

// ---- file, trust

export function fileSource(path: string, why = 'time.source: file'): TimeSource {
  return {
    name: 'file',
    why,
    read() {
      try {
        statSync(path);
        return { synced: true, detail: `file: ${path} exists (synchronised)` };
      } catch {
        return {
          synced: false,
          detail: `file: ${path} does not exist (NOT synchronised) — systemd-timesyncd writes it once synchronised; with chrony or ntpd use time.source: kernel`,
        };
      }
    },
  };
}

export function trustSource(): TimeSource {
  const reading = { synced: true, detail: 'trust: the system clock is taken as right (time.source: trust)' };
  return { name: 'trust', why: 'time.source: trust', read: () => reading };
}

// ---- choosing

export interface TimeConfig {
  source: TimeSourceName;
  syncFile?: string | undefined;
}

/** Builds the configured source. `kernel` throws if the probe cannot run; `auto` falls back to the file. */
export function createTimeSource(cfg: TimeConfig, kernelOpts: KernelSourceOptions = {}): TimeSource {
  switch (cfg.source) {
    case 'trust':
      return trustSource();
    case 'file':
      return fileSource(cfg.syncFile ?? DEFAULT_SYNC_FILE);
    case 'kernel':
      return kernelSource(kernelOpts);
    case 'auto': {
      if (cfg.syncFile !== undefined) return fileSource(cfg.syncFile, 'auto: time.syncFile is set');
      try {
        return kernelSource(kernelOpts, 'auto: the kernel probe (adjtimex) answers');
      } catch (err) {
        return fileSource(
          DEFAULT_SYNC_FILE,
          `auto: kernel probe unavailable (${(err as Error).message}), using the systemd-timesyncd file`,
        );
      }
    }
  }
}
