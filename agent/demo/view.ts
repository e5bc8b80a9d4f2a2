/**
 * What `meterlink demo` shows: a full-screen frame redrawn about once a second (plain ANSI: cursor home,
 * lines, clear to end — no dependency), or one progress line per second when stdout is not a terminal.
 * Pure functions of a snapshot, so they are easy to look at and to test.
 */
import type { AgentStatus } from '../daemon/status-file.js';
import type { ConsumerStats } from './consumer.js';

export interface DemoMeter {
  id: string;
  /** What it is and how it is attached, e.g. "Eastron SDM630 · Modbus RTU over a pty". */
  what: string;
}

export interface DemoSnapshot {
  now: number;
  startedAt: number;
  durationMs: number | undefined;
  brokerPort: number;
  dir: string;
  keepDir: boolean;
  meters: readonly DemoMeter[];
  agent: AgentStatus;
  consumer: ConsumerStats;
  /** The local web dashboard, when on. */
  dashboardUrl?: string;
}

const esc = (code: string) => `\x1b[${code}`;
const bold = (s: string) => `${esc('1m')}${s}${esc('0m')}`;
const dim = (s: string) => `${esc('2m')}${s}${esc('0m')}`;
const green = (s: string) => `${esc('32m')}${s}${esc('0m')}`;
const yellow = (s: string) => `${esc('33m')}${s}${esc('0m')}`;
const red = (s: string) => `${esc('31m')}${s}${esc('0m')}`;
const visibleLength = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').length;
const pad = (s: string, n: number) => s + ' '.repeat(Math.max(0, n - visibleLength(s)));
const padStart = (s: string, n: number) => ' '.repeat(Math.max(0, n - visibleLength(s))) + s;

export function clock(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 ** 2).toFixed(1)} MiB`;
}

function num(v: number | undefined, digits: number): string {
  if (v === undefined || !Number.isFinite(v)) return '—';
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Total import/export counter: the meter's own total, else the sum of its tariff registers (DSMR). */
export function energy(values: Record<string, number>, dir: 'import' | 'export'): number | undefined {
  const total = values[`energy_${dir}_kwh`];
  if (total !== undefined) return total;
  const t1 = values[`energy_${dir}_t1_kwh`];
  const t2 = values[`energy_${dir}_t2_kwh`];
  return t1 === undefined && t2 === undefined ? undefined : (t1 ?? 0) + (t2 ?? 0);
}

export function bytesPerSample(c: ConsumerStats): number | undefined {
  return c.samples > 0 ? c.bytes / c.samples : undefined;
}

function connection(a: AgentStatus, color: boolean): string {
  const st = a.connection.state;
  const text = st === 'connected' ? `connected to ${a.connection.endpoint ?? ''}` : st;
  if (!color) return text;
  return st === 'connected' ? green(text) : st === 'disconnected' ? red(text) : yellow(text);
}

function ago(now: number, ts: number): string {
  if (!ts) return '—';
  const s = Math.max(0, Math.round((now - ts) / 1000));
  return s < 1 ? 'now' : `${s}s ago`;
}

/** The full-screen frame (without the escape codes that position it). */
export function renderFrame(s: DemoSnapshot, width = 100): string[] {
  const c = s.consumer;
  const a = s.agent;
  const w = Math.max(60, Math.min(width, 120));
  const title = bold('meterlink demo');
  const timer = `running ${clock(s.now - s.startedAt)}${s.durationMs ? ` / ${clock(s.durationMs)}` : ''}`;
  const lines: string[] = [];
  lines.push(pad(`${title} — the whole pipeline on this machine`, w - timer.length - 1) + ' ' + dim(timer));
  lines.push(
    dim(
      `simulated meters → meterlink agent (LevelDB buffer) → Mosquitto mTLS 127.0.0.1:${s.brokerPort} → consumer (decode + verify ES256)`,
    ),
  );
  if (s.dashboardUrl)
    lines.push(
      `${bold('dashboard')}  ${s.dashboardUrl}  ${dim('(power curve, energy per hour and day, health)')}`,
    );
  lines.push('');
  // The meter description gives way first on a narrow terminal.
  const whatWidth = Math.max(14, Math.min(40, w - 72));
  const head = [
    pad('meter', 7),
    pad('what', whatWidth),
    padStart('power', 11),
    padStart('import', 16),
    padStart('export', 15),
    padStart('samples', 8),
    padStart('latest', 8),
  ];
  lines.push(bold(head.join(' ')));
  for (const m of s.meters) {
    const v = c.meters.get(m.id);
    const st = a.meters.find((x) => x.id === m.id);
    const values = v?.values ?? {};
    const power = values.power_w;
    const row = [
      pad(st && !st.ok ? red(m.id) : m.id, 7),
      pad(m.what.slice(0, whatWidth), whatWidth),
      padStart(power === undefined ? '—' : `${num(power, 0)} W`, 11),
      padStart(energy(values, 'import') === undefined ? '—' : `${num(energy(values, 'import'), 3)} kWh`, 16),
      padStart(energy(values, 'export') === undefined ? '—' : `${num(energy(values, 'export'), 3)} kWh`, 15),
      padStart(String(v?.samples ?? 0), 8),
      padStart(ago(s.now, v?.lastTs ?? 0), 8),
    ];
    lines.push(row.join(' '));
    if (st && !st.ok && st.lastError) lines.push(`        ${red(`error: ${st.lastError}`.slice(0, w - 8))}`);
  }
  lines.push('');
  const label = (l: string) => bold(pad(l, 11));
  const polls = a.meters.reduce((n, m) => n + m.polls, 0);
  const failed = a.meters.reduce((n, m) => n + m.failures, 0);
  lines.push(
    `${label('agent')}${connection(a, true)} · buffer depth ${a.buffer.depth} (${formatBytes(a.buffer.bytes)}) · in flight ${a.publisher.inFlight} · polls ${polls}, ${failed} failed · clock ${a.clock.synced ? 'synced' : 'not synced'}`,
  );
  const verified =
    c.rejected > 0
      ? `${c.verified} verified, ${red(`${c.rejected} rejected`)}`
      : `${green(`${c.verified} verified`)}, 0 rejected`;
  const last = c.lastBatch
    ? ` · last: seq ${c.lastBatch.firstSeq}–${c.lastBatch.lastSeq}, ${c.lastBatch.samples} samples, ${formatBytes(c.lastBatch.bytes)}, ${ago(s.now, c.lastBatch.at)}`
    : dim(' · waiting for the first batch (one every few seconds)');
  lines.push(`${label('batches')}${c.batches} received, ${verified}${last}`);
  const bps = bytesPerSample(c);
  lines.push(
    `${label('wire')}${c.samples} samples · ${bps === undefined ? '—' : bps.toFixed(1)} bytes/sample · ${c.billableUnits} billable 5-KB units${c.samples > 0 ? ` (${((c.billableUnits * 1000) / c.samples).toFixed(1)} per 1,000 samples)` : ''}`,
  );
  lines.push(
    `${label('last event')}${c.lastEvent ? `${new Date(c.lastEvent.at).toTimeString().slice(0, 8)} ${c.lastEvent.event}: ${c.lastEvent.message}`.slice(0, w - 11) : '—'}`,
  );
  if (c.lastRejection) lines.push(`${label('rejected')}${red(c.lastRejection.slice(0, w - 11))}`);
  lines.push('');
  lines.push(
    dim(
      `files in ${s.dir}${s.keepDir ? ' (kept)' : ' (removed on exit)'} · agent log: agent.log · Ctrl-C stops`,
    ),
  );
  return lines;
}

/** Cuts a line with colour codes to `width` visible characters (a wrapped line would garble the frame). */
export function truncateVisible(line: string, width: number): string {
  let out = '';
  let seen = 0;
  for (let i = 0; i < line.length;) {
    const m = /^\x1b\[[0-9;?]*[A-Za-z]/.exec(line.slice(i, i + 16));
    if (m) {
      out += m[0];
      i += m[0].length;
      continue;
    }
    if (seen >= width) return `${out}${esc('0m')}`;
    out += line[i];
    seen++;
    i++;
  }
  return out;
}

/**
 * Escape codes + frame: cursor home, each line (cut to `width`) cleared to its end, the rest of the screen
 * cleared. Redrawing over the old frame rather than clearing first keeps it from flickering.
 */
export function drawFrame(lines: readonly string[], width = Infinity): string {
  return `${esc('H')}${lines.map((l) => `${truncateVisible(l, width)}${esc('K')}`).join('\n')}\n${esc('J')}`;
}

export const enterScreen = `${esc('?25l')}${esc('2J')}${esc('H')}`;
export const leaveScreen = `${esc('?25h')}`;

/** One line per second for logs and pipes (`--no-tui`, or stdout not a terminal). */
export function progressLine(s: DemoSnapshot): string {
  const c = s.consumer;
  const a = s.agent;
  const bps = bytesPerSample(c);
  const meters = s.meters.map((m) => {
    const v = c.meters.get(m.id)?.values ?? {};
    const imp = energy(v, 'import');
    return `${m.id} ${v.power_w === undefined ? '—' : `${Math.round(v.power_w)} W`} ${imp === undefined ? '—' : `${imp.toFixed(3)} kWh`}`;
  });
  return `[${clock(s.now - s.startedAt)}] ${[
    `batches ${c.batches} received, ${c.verified} verified, ${c.rejected} rejected`,
    `samples ${c.samples}`,
    `${bps === undefined ? '—' : bps.toFixed(1)} B/sample`,
    `billable 5-KB units ${c.billableUnits}`,
    `buffer ${a.buffer.depth}`,
    a.connection.state,
    ...meters,
    ...(s.dashboardUrl ? [`dashboard ${s.dashboardUrl}`] : []),
  ].join(' · ')}`;
}
