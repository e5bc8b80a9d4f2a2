/**
 * The agent's local status, written atomically (temp file + rename) to the runtime directory for
 * `meterlink status`. Plain JSON; secrets never appear in it.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface MeterStatus {
  id: string;
  label: string;
  ok: boolean;
  polls: number;
  failures: number;
  skipped: number;
  lastTs: number | null;
  lastValues: Record<string, number>;
  lastError: string | null;
  lastErrorAt: number | null;
}

export interface AgentStatus {
  v: 1;
  pid: number;
  thing: string;
  version: string;
  startedAt: number;
  updatedAt: number;
  connection: {
    state: 'disabled' | 'connecting' | 'connected' | 'disconnected';
    endpoint: string | null;
    lastError: string | null;
    since: number | null;
  };
  buffer: {
    depth: number;
    bytes: number;
    oldestTs: number | null;
    newestSeq: number | null;
    /** Highest sequence number ever assigned (the buffer may already have delivered it). */
    lastSeq: number;
    dropped: number;
  };
  publisher: {
    batchesAcked: number;
    samplesAcked: number;
    bytesAcked: number;
    inFlight: number;
    lastAckAt: number | null;
    lastError: string | null;
    pausedUntil: number | null;
  };
  clock: {
    synced: boolean;
    lastStepMs: number | null;
    /** Which source decided (kernel, file, trust) and why; absent in status files of older agents. */
    source?: string;
    detail?: string;
    unsyncedSince?: number | null;
  };
  meters: MeterStatus[];
  recentErrors: { at: number; source: string; message: string }[];
}

export async function writeStatusFile(path: string, status: AgentStatus): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(status, null, 2) + '\n', { mode: 0o644 });
  await rename(tmp, path);
}

export async function readStatusFile(path: string): Promise<AgentStatus> {
  return JSON.parse(await readFile(path, 'utf8')) as AgentStatus;
}
