import t from 'tap';
// The CLI first: it loads the command table that agent/commands/status.ts is part of.
import '../../agent/cli.js';
import { formatStatus } from '../../agent/commands/status.js';
import type { AgentStatus } from '../../agent/daemon/status-file.js';

const base: AgentStatus = {
  v: 1,
  pid: 42,
  thing: 'box-1',
  version: '0.1.0',
  startedAt: 1_750_000_000_000,
  updatedAt: 1_750_000_010_000,
  connection: { state: 'connected', endpoint: 'x:8883', lastError: null, since: 1_750_000_001_000 },
  buffer: { depth: 0, bytes: 0, oldestTs: null, newestSeq: null, lastSeq: 0, dropped: 0 },
  publisher: {
    batchesAcked: 0,
    samplesAcked: 0,
    bytesAcked: 0,
    inFlight: 0,
    lastAckAt: null,
    lastError: null,
    pausedUntil: null,
  },
  clock: { synced: true, lastStepMs: null },
  meters: [],
  recentErrors: [],
};

t.test('meterlink status names the clock source and why', async (t) => {
  const now = 1_750_000_012_000;
  t.match(formatStatus(base, now), /^clock: synchronised$/m, 'an older agent without source still reads');
  const synced = formatStatus(
    {
      ...base,
      clock: {
        synced: true,
        lastStepMs: null,
        source: 'kernel',
        detail: 'kernel (adjtimex, chronyd running): synchronised, max error 12 ms',
        unsyncedSince: null,
      },
    },
    now,
  );
  t.match(
    synced,
    /^clock: synchronised — kernel \(adjtimex, chronyd running\): synchronised, max error 12 ms$/m,
  );
  const unsynced = formatStatus(
    {
      ...base,
      clock: {
        synced: false,
        lastStepMs: null,
        source: 'kernel',
        detail: 'kernel (adjtimex, no time daemon running): NOT synchronised — no time daemon is running',
        unsyncedSince: 1_750_000_000_000,
      },
    },
    now,
  );
  t.match(
    unsynced,
    /^clock: NOT synchronised since 2025-06-15T15:06:40.000Z \(samples are held, flagged and corrected later\) — kernel .*no time daemon is running$/m,
  );
});
