/**
 * bench:poll — Modbus cost of one poll for every built-in profile: transactions and RTU bytes on the wire
 * for the planner's plan, against (a) the minimum the profile's rules allow (computed here independently by
 * exhaustive search over block partitions) and (b) one request per register; plus the wire time at 9600 8N1.
 */
import { planReads, rtuTransactionBytes, registerSpans, blockAllowed } from '../drivers/modbus/planner.js';
import { builtinProfiles } from '../drivers/profiles/index.js';
import type { ModbusProfile } from '../drivers/modbus/profile.js';

const BITS_PER_BYTE = 10; // 8N1: start + 8 data + stop
/** Bus time: the bytes, plus the 3.5-character silence before each of the two frames of a transaction. */
const wireMs = (bytes: number, tx: number, baud = 9600) => ((bytes + tx * 7) * BITS_PER_BYTE * 1000) / baud;

/** Independent lower bounds: fewest transactions, and fewest bytes, over every partition the rules allow. */
function minimum(profile: ModbusProfile): { tx: number; bytes: number; bytesAtMinTx: number } {
  let tx = 0;
  let bytes = 0;
  let bytesAtMinTx = 0;
  for (const spans of registerSpans(profile).values()) {
    const n = spans.length;
    const minTx = new Array<number>(n + 1).fill(Infinity);
    const minBytes = new Array<number>(n + 1).fill(Infinity);
    const lex = new Array<[number, number]>(n + 1).fill([Infinity, Infinity]);
    minTx[0] = 0;
    minBytes[0] = 0;
    lex[0] = [0, 0];
    for (let j = 1; j <= n; j++)
      for (let i = 0; i < j; i++) {
        if (!blockAllowed(profile, spans, i, j - 1)) continue;
        const count = Math.max(...spans.slice(i, j).map((s) => s.to)) - spans[i]!.from + 1;
        minTx[j] = Math.min(minTx[j]!, minTx[i]! + 1);
        minBytes[j] = Math.min(minBytes[j]!, minBytes[i]! + rtuTransactionBytes(count));
        const c: [number, number] = [lex[i]![0] + 1, lex[i]![1] + rtuTransactionBytes(count)];
        if (c[0] < lex[j]![0] || (c[0] === lex[j]![0] && c[1] < lex[j]![1])) lex[j] = c;
      }
    tx += minTx[n]!;
    bytes += minBytes[n]!;
    bytesAtMinTx += lex[n]![1];
  }
  return { tx, bytes, bytesAtMinTx };
}

interface Row {
  profile: string;
  registers: number;
  plannerTx: number;
  plannerBytes: number;
  minTx: number;
  minBytes: number;
  minBytesAtMinTx: number;
  naiveTx: number;
  naiveBytes: number;
  plannerMs9600: number;
  naiveMs9600: number;
}

const rows: Row[] = [];
const t0 = performance.now();
for (const [name, p] of Object.entries(builtinProfiles)) {
  const plan = planReads(p);
  const min = minimum(p);
  const naive = p.registers.map((r) =>
    rtuTransactionBytes(
      { int16: 1, uint16: 1, int32: 2, uint32: 2, float32: 2, int64: 4, uint64: 4, float64: 4 }[r.type],
    ),
  );
  const plannerBytes = plan.reduce((s, b) => s + rtuTransactionBytes(b.count), 0);
  const naiveBytes = naive.reduce((s, b) => s + b, 0);
  rows.push({
    profile: name,
    registers: p.registers.length,
    plannerTx: plan.length,
    plannerBytes,
    minTx: min.tx,
    minBytes: min.bytes,
    minBytesAtMinTx: min.bytesAtMinTx,
    naiveTx: naive.length,
    naiveBytes,
    plannerMs9600: Math.round(wireMs(plannerBytes, plan.length) * 10) / 10,
    naiveMs9600: Math.round(wireMs(naiveBytes, naive.length) * 10) / 10,
  });
}
const planMs = performance.now() - t0;

const header = [
  'profile',
  'regs',
  'tx plan',
  'tx min',
  'tx naive',
  'bytes plan',
  'bytes min@minTx',
  'bytes min any',
  'bytes naive',
  'vs min@minTx',
  'ms@9600 plan',
  'ms@9600 naive',
];
const table = [
  header,
  ...rows.map((r) => [
    r.profile,
    String(r.registers),
    String(r.plannerTx),
    String(r.minTx),
    String(r.naiveTx),
    String(r.plannerBytes),
    String(r.minBytesAtMinTx),
    String(r.minBytes),
    String(r.naiveBytes),
    `+${(((r.plannerBytes - r.minBytesAtMinTx) / r.minBytesAtMinTx) * 100).toFixed(1)}%`,
    r.plannerMs9600.toFixed(1),
    r.naiveMs9600.toFixed(1),
  ]),
];
const widths = header.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
console.log(
  'Modbus poll cost per profile (RTU framing; bus time = bytes + 3.5-char silences, 8N1; meter turnaround excluded)\n',
);
for (const row of table)
  console.log(
    row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '),
  );
const sum = (k: keyof Row) => rows.reduce((s, r) => s + (r[k] as number), 0);
console.log(
  `\ntotal: ${sum('plannerTx')} transactions / ${sum('plannerBytes')} bytes planned, minimum ${sum('minTx')} / ${sum('minBytes')}, ` +
    `naive ${sum('naiveTx')} / ${sum('naiveBytes')}; planning all profiles took ${planMs.toFixed(1)} ms`,
);
const allAtMinTx = rows.every((r) => r.plannerTx === r.minTx);
const worstBytesOverMin = Math.max(
  ...rows.map((r) => (r.plannerBytes - r.minBytesAtMinTx) / r.minBytesAtMinTx),
);
console.log(
  `planner at minimum transactions for every profile: ${allAtMinTx}; worst bytes over the minimum at that transaction count: ${(worstBytesOverMin * 100).toFixed(1)}% (target ≤ 10%)`,
);
console.log(
  `RESULT ${JSON.stringify({ bench: 'poll', baud: 9600, allAtMinTx, worstBytesOverMin, profiles: rows })}`,
);
