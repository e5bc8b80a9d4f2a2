/**
 * BatchBuilder: fills one signed batch message up to a byte budget without re-encoding on every sample.
 *
 * Compressed size is not additive (columns interleave, deflate adapts), so the builder proves sizes by real
 * encodes, but only when a pessimistic estimate from the last proof says the budget might be crossed: far from
 * the limit it just appends, near it each proof leaves ~1/3 of the remaining headroom unclaimed, so a full
 * 128 KB batch costs a handful of encodes. `finish()` always proves the final message and, should an
 * unproven tail not fit after all, gives those samples back as `deferred` — the message never exceeds the budget.
 *
 * Samples are kept in columns (`ColumnSet`), not as the objects they came in: `tryAddWith` takes a sample's head
 * and a function that gives its values to a `ValueSink`, so a caller holding stored bytes (the agent's buffer)
 * never builds a `Value` per value.
 */
import {
  ColumnSet,
  assertDevice,
  assertFollows,
  fillFromSample,
  validateHead,
  validateSample,
  type SampleHead,
  type ValueSink,
} from './batch.js';
import { createBatchSigner, type BatchSigner, type SignOptions } from './cose.js';
import { ContractError } from './errors.js';
import type { Sample } from './sample.js';

/** IoT Core's largest message: 128 KB. */
export const IOT_MAX_MESSAGE_BYTES = 128 * 1024;
/** IoT Core meters messages in 5 KB units. */
export const IOT_BILLING_UNIT_BYTES = 5 * 1024;
/**
 * Default batch budget: the most whole 5-KB billing units under the 128 KB limit (25 × 5 KB = 125 KiB), so a
 * full batch never pays for a 26th unit it only fills by half.
 */
export const DEFAULT_BATCH_MAX_BYTES =
  Math.floor(IOT_MAX_MESSAGE_BYTES / IOT_BILLING_UNIT_BYTES) * IOT_BILLING_UNIT_BYTES;
/**
 * Largest uncompressed document the builder makes. Every CBOR data item takes at least one byte, so a document
 * of at most 1,000,000 bytes holds at most 1,000,000 items: the decoder's default item limit, and below its
 * 2 MiB document cap. A meter that does not move deflates to almost nothing (80,000 flat integer samples fit in
 * 3 KB), so this cap, not the message budget, is what ends such a batch.
 */
export const DEFAULT_MAX_DOCUMENT_BYTES = 1_000_000;

/** Billable IoT Core messaging units for a message of `bytes` bytes (at least one). */
export function billingUnits(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / IOT_BILLING_UNIT_BYTES));
}

export interface BatchBuilderOptions {
  readonly device: string;
  /** A signer from `createBatchSigner`, or the options to make one. */
  readonly signer: BatchSigner | SignOptions;
  /** Budget for the whole signed message. Default `DEFAULT_BATCH_MAX_BYTES`; at most 128 KiB. */
  readonly maxBytes?: number;
  /** Budget for the uncompressed document. Default `DEFAULT_MAX_DOCUMENT_BYTES`. */
  readonly maxDocumentBytes?: number;
  /** Most samples per batch. Default 100,000 (the decoder's default limit). */
  readonly maxSamples?: number;
}

export interface BuiltBatch {
  /** The signed COSE_Sign1 message, ≤ maxBytes. */
  readonly message: Uint8Array;
  /** How many samples it carries: the first `count` added, in seq order. */
  readonly count: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
  /** Uncompressed document size. */
  readonly documentBytes: number;
  /**
   * How many of the samples added last did not fit after all (usually 0); start the next batch with them.
   */
  readonly deferred: number;
}

interface Proof {
  count: number;
  message: Uint8Array;
  documentBytes: number;
  /** Bytes per sample to assume for samples added after this proof. */
  rate?: number;
  docRate?: number;
}

/** How much worse than the average so far the next samples may compress before a proof is forced. */
const SAFETY_EARLY = 1.5;
const SAFETY = 1.1;
const TAIL_MARGIN = 256;

function isSigner(x: BatchSigner | SignOptions): x is BatchSigner {
  return typeof (x as BatchSigner).sign === 'function';
}

export class BatchBuilder {
  readonly device: string;
  readonly maxBytes: number;
  readonly maxDocumentBytes: number;
  readonly maxSamples: number;
  private readonly signer: BatchSigner;
  private set = new ColumnSet();
  private proof: Proof | undefined;
  /** Real encodes done so far (for benchmarks and tests). */
  encodes = 0;

  constructor(opts: BatchBuilderOptions) {
    assertDevice(opts.device);
    this.device = opts.device;
    this.maxBytes = opts.maxBytes ?? DEFAULT_BATCH_MAX_BYTES;
    this.maxDocumentBytes = opts.maxDocumentBytes ?? DEFAULT_MAX_DOCUMENT_BYTES;
    this.maxSamples = opts.maxSamples ?? 100_000;
    if (!(this.maxBytes >= 512 && this.maxBytes <= IOT_MAX_MESSAGE_BYTES))
      throw new ContractError('TOO_LARGE', `batch maxBytes ${this.maxBytes} must be within [512, 131072]`, {
        maxBytes: this.maxBytes,
      });
    this.signer = isSigner(opts.signer) ? opts.signer : createBatchSigner(opts.signer);
  }

  get count(): number {
    return this.set.count;
  }

  get isEmpty(): boolean {
    return this.set.count === 0;
  }

  /** Size of the message as of the last proof (a lower bound of the final size). */
  get provenBytes(): number {
    return this.proof?.message.length ?? 0;
  }

  /** The message of the first `count` samples added. */
  private encode(count: number): Proof {
    this.encodes++;
    const doc = this.set.write(this.device, count);
    // A document over its cap is never signed (and the decoder would refuse it).
    if (doc.length > this.maxDocumentBytes) return { count, message: doc, documentBytes: doc.length };
    return { count, message: this.signer.sign(doc), documentBytes: doc.length };
  }

  private fits(p: Proof): boolean {
    return p.documentBytes <= this.maxDocumentBytes && p.message.length <= this.maxBytes;
  }

  private mightOverflow(n: number): boolean {
    const p = this.proof;
    if (p === undefined) return true;
    const extra = n - p.count;
    // The average includes the fixed headers, so it overstates the per-sample cost of a large batch.
    const safety = p.count < 64 ? SAFETY_EARLY : SAFETY;
    // A short tail varies more than the average: keep a fixed margin too (costs < 0.3 % of a full batch).
    const msg = p.message.length + extra * safety * (p.rate ?? 0) + TAIL_MARGIN;
    const doc = p.documentBytes + extra * safety * (p.docRate ?? 0) + TAIL_MARGIN;
    return msg > this.maxBytes || doc > this.maxDocumentBytes;
  }

  /**
   * Adds the sample if the batch still fits its budget with it; `false` means the batch is full (finish it and
   * start the next with this sample). Throws `ContractError('BAD_SAMPLE')` for a sample no batch can carry
   * (invalid, or seq not above the previous one).
   */
  tryAdd(sample: Sample): boolean {
    validateSample(sample);
    return this.tryAddChecked(sample, (sink) => fillFromSample(sample, sink), false);
  }

  /**
   * `tryAdd` for a sample given as its head and a `fill` that gives its values and missing channels to the
   * sink (in the sample's order), each checked as `tryAdd` checks a sample object. Same result and errors.
   */
  tryAddWith(head: SampleHead, fill: (sink: ValueSink) => void): boolean {
    validateHead(head);
    return this.tryAddChecked(head, fill, true);
  }

  private tryAddChecked(head: SampleHead, fill: (sink: ValueSink) => void, validate: boolean): boolean {
    const last = this.set.lastSeq;
    if (last !== undefined) assertFollows(head, last);
    const n = this.set.count + 1;
    if (n > this.maxSamples) {
      // Still refuse a sample no batch could carry, as `tryAdd` does (it checks before counting).
      if (validate) {
        this.set.add(head, fill, true);
        this.set.truncate(n - 1);
      }
      return false;
    }
    const proven = this.proof;
    const overflow = this.mightOverflow(n);
    // Within the tail margin of the budget: call it full rather than prove sample by sample.
    if (
      overflow &&
      proven !== undefined &&
      this.maxBytes - proven.message.length < TAIL_MARGIN + (proven.rate ?? 0)
    ) {
      if (validate) {
        this.set.add(head, fill, true);
        this.set.truncate(n - 1);
      }
      return false;
    }
    this.set.add(head, fill, validate);
    if (!overflow) return true;
    const p = this.encode(n);
    if (!this.fits(p)) {
      this.set.truncate(n - 1);
      if (n === 1)
        throw new ContractError(
          'TOO_LARGE',
          `sample ${head.seq} alone does not fit a ${this.maxBytes}-byte batch`,
          {
            seq: head.seq,
          },
        );
      return false;
    }
    // Assume later samples cost the larger of the average and the marginal rate since the previous proof
    // (the latter catches data that just became less compressible).
    const prev = this.proof;
    const marginal = (a: number, b: number): number =>
      prev && p.count > prev.count ? (a - b) / (p.count - prev.count) : 0;
    p.rate = Math.max(p.message.length / p.count, marginal(p.message.length, prev?.message.length ?? 0));
    p.docRate = Math.max(p.documentBytes / p.count, marginal(p.documentBytes, prev?.documentBytes ?? 0));
    this.proof = p;
    return true;
  }

  /** The signed message for everything added (minus any `deferred` tail); resets the builder. */
  finish(): BuiltBatch | undefined {
    const added = this.set.count;
    if (added === 0) return undefined;
    let p = this.proof !== undefined && this.proof.count === added ? this.proof : this.encode(added);
    let count = added;
    if (!this.fits(p)) {
      // The estimate was beaten (data suddenly less compressible): largest prefix that fits, by bisection
      // between the last proven count (fits) and `count` (does not).
      let lo = this.proof?.count ?? 1;
      let hi = count;
      let best = this.proof ?? this.encode(1);
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        const q = this.encode(mid);
        if (this.fits(q)) {
          lo = mid;
          best = q;
        } else hi = mid;
      }
      p = best;
      count = lo;
    }
    const set = this.set;
    this.set = new ColumnSet();
    this.proof = undefined;
    return {
      message: p.message,
      count,
      firstSeq: set.seqAt(0),
      lastSeq: set.seqAt(count - 1),
      documentBytes: p.documentBytes,
      deferred: added - count,
    };
  }
}
