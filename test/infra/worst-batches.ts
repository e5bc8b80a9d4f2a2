/**
 * The largest batches the agent sends, made by the agent's own code: the simulator's apartment model read
 * through a profile's register codec (bench/lib/week.ts), packed by cloud-contract's BatchBuilder with the
 * agent's defaults (125 KiB signed, a 1,000,000-byte document). "Live" is one minute at 1 Hz (batch.maxDelay 60 s);
 * "backlog" is a full batch while a buffer drains. "Flat" is the integer profile with a meter that does not
 * move (a vacant flat at night): deflate makes every sample nearly free, so the document cap decides.
 */
import { BatchBuilder, createBatchSigner, type Sample } from '../../cloud-contract/index.js';
import { carloGavazziEm340 } from '../../drivers/profiles/carlo-gavazzi-em340.js';
import { eastronSdm630 } from '../../drivers/profiles/eastron-sdm630.js';
import type { ModbusProfile } from '../../drivers/modbus/profile.js';
import { readings } from '../../bench/lib/week.js';
import type { TestDevice } from './fixtures.js';

export interface WorstBatch {
  readonly name: string;
  readonly message: Uint8Array;
  readonly samples: number;
}

const T0 = Date.UTC(2026, 11, 1, 23, 50);

function build(dev: TestDevice, profile: ModbusProfile, maxSamples: number, flat = false): WorstBatch {
  const signer = createBatchSigner({ privateKey: dev.keyPem, certDer: dev.certDer });
  const b = new BatchBuilder({ device: dev.thing, signer, maxSamples });
  let seq = 1;
  let first: Sample | undefined;
  for (const r of readings(profile, maxSamples, T0)) {
    first ??= { ...r, seq } as Sample;
    const s: Sample = flat ? { ...first, ts: T0 + (seq - 1) * 1000, seq } : ({ ...r, seq } as Sample);
    if (!b.tryAdd(s)) break;
    seq++;
  }
  const out = b.finish();
  if (!out) throw new Error('empty batch');
  return { name: '', message: out.message, samples: out.count };
}

export function worstBatches(dev: TestDevice): WorstBatch[] {
  return [
    { ...build(dev, eastronSdm630, 60), name: 'SDM630 live' },
    { ...build(dev, eastronSdm630, 100_000), name: 'SDM630 backlog' },
    { ...build(dev, carloGavazziEm340, 60), name: 'EM340 live' },
    { ...build(dev, carloGavazziEm340, 100_000), name: 'EM340 backlog' },
    { ...build(dev, carloGavazziEm340, 100_000, true), name: 'EM340 flat backlog' },
  ];
}
