/**
 * The live part of the dashboard, from the agent's status (the same document `meterlink status` reads):
 * power per meter and phase, energy counters, last reading age, buffer depth and age, connection, clock,
 * and the latest events.
 */
import type { AgentStatus } from '../daemon/status-file.js';

export interface DashboardEvent {
  ts: number;
  event: string;
  severity: string;
  message: string;
}

export interface LiveMeter {
  id: string;
  label: string;
  ok: boolean;
  lastTs: number | null;
  /** ms since the last reading, or null. */
  ageMs: number | null;
  powerW: number | null;
  /** L1, L2, L3 (null where the meter has no such phase). */
  phasesW: [number | null, number | null, number | null];
  importKwh: number | null;
  exportKwh: number | null;
  polls: number;
  failures: number;
  lastError: string | null;
}

export interface LiveView {
  now: number;
  thing: string;
  version: string;
  startedAt: number;
  /** When the status was taken (the status file may be a few seconds old). */
  updatedAt: number;
  connection: AgentStatus['connection'];
  buffer: AgentStatus['buffer'] & { ageMs: number | null };
  publisher: AgentStatus['publisher'];
  clock: AgentStatus['clock'];
  meters: LiveMeter[];
  events: DashboardEvent[];
  recentErrors: AgentStatus['recentErrors'];
}

const num = (v: number | undefined): number | null => (v === undefined || !Number.isFinite(v) ? null : v);

/** Import/export total: the meter's own, else the sum of its tariff registers (DSMR). */
function counter(values: Record<string, number>, dir: 'import' | 'export'): number | null {
  const total = values[`energy_${dir}_kwh`];
  if (total !== undefined) return num(total);
  const t1 = values[`energy_${dir}_t1_kwh`];
  const t2 = values[`energy_${dir}_t2_kwh`];
  return t1 === undefined && t2 === undefined ? null : (t1 ?? 0) + (t2 ?? 0);
}

export function liveView(s: AgentStatus, events: readonly DashboardEvent[], now: number): LiveView {
  return {
    now,
    thing: s.thing,
    version: s.version,
    startedAt: s.startedAt,
    updatedAt: s.updatedAt,
    connection: s.connection,
    buffer: { ...s.buffer, ageMs: s.buffer.oldestTs === null ? null : Math.max(0, now - s.buffer.oldestTs) },
    publisher: s.publisher,
    clock: s.clock,
    meters: s.meters.map((m) => {
      const v = m.lastValues;
      return {
        id: m.id,
        label: m.label,
        ok: m.ok,
        lastTs: m.lastTs,
        ageMs: m.lastTs === null ? null : Math.max(0, now - m.lastTs),
        powerW: num(v.power_w),
        phasesW: [num(v.power_l1_w), num(v.power_l2_w), num(v.power_l3_w)],
        importKwh: counter(v, 'import'),
        exportKwh: counter(v, 'export'),
        polls: m.polls,
        failures: m.failures,
        lastError: m.lastError,
      };
    }),
    events: [...events],
    recentErrors: s.recentErrors,
  };
}
