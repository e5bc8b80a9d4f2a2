/**
 * The publisher's real batch encoding: samples → one signed cloud-contract batch (CBOR document, deflated,
 * COSE_Sign1 ES256 with kid = SHA-256 of the device certificate) of at most `maxBytes`.
 *
 * The encoder reports only the samples actually in the message: `BatchBuilder.finish()` may give back an
 * unproven tail as `deferred`, and those samples stay in the buffer for the next batch.
 *
 * `createStoredBatchEncoder` takes the buffer's `StoredSample`s (head decoded, values still bytes) and decodes
 * their values straight into the builder's columns: a backlog drain holds no object per value.
 */
import type { KeyObject } from 'node:crypto';
import {
  BatchBuilder,
  IOT_MAX_MESSAGE_BYTES,
  createBatchSigner,
  isContractError,
  type BatchSigner,
  type Compression,
} from '../../cloud-contract/index.js';
import type { Sample } from '../../cloud-contract/sample.js';
import { decodeStoredValues, type StoredSample } from '../../buffer/index.js';
import type { BatchEncoder, SampleRef } from './batch-publisher.js';

export interface BatchEncoderOptions {
  /** Thing name: the batch document's `device`. */
  device: string;
  /** The device's P-256 private key (KeyObject or PEM). */
  privateKey: KeyObject | string;
  /** The device certificate (DER or PEM); its SHA-256 is the `kid`. */
  certDer: Uint8Array | string;
  /** Default `auto` (deflate when it makes the message smaller). */
  compression?: Compression;
  /** Most samples per batch (default: the contract's 100,000, which the decoder accepts). */
  maxSamples?: number;
  /** Told about samples that no batch can carry (invalid); the publisher then drops them with an event. */
  onUnencodable?: (seq: number, error: string) => void;
}

/** The builder needs a budget of at least this many bytes. */
const MIN_BUDGET = 512;

/**
 * Creates the `BatchEncoder` for `createBatchPublisher`. Returns `count: 0` when the first sample cannot be
 * carried at all (too large alone, or invalid): the publisher drops it loudly rather than block the queue.
 * An invalid sample later in the range ends the batch before it, so it becomes the first of the next one.
 */
export function createBatchEncoder(opts: BatchEncoderOptions): BatchEncoder<Sample> {
  return makeEncoder<Sample>(opts, (builder, s) => builder.tryAdd(s));
}

/** The same encoder for the buffer's `StoredSample`s (`readStored`): values decoded into the batch's columns. */
export function createStoredBatchEncoder(opts: BatchEncoderOptions): BatchEncoder<StoredSample> {
  return makeEncoder<StoredSample>(opts, (builder, s) =>
    builder.tryAddWith(s, (sink) => decodeStoredValues(s, sink)),
  );
}

function makeEncoder<S extends SampleRef>(
  opts: BatchEncoderOptions,
  add: (builder: BatchBuilder, s: S) => boolean,
): BatchEncoder<S> {
  const signer: BatchSigner = createBatchSigner({
    privateKey: opts.privateKey,
    certDer: opts.certDer,
    ...(opts.compression !== undefined ? { compression: opts.compression } : {}),
  });
  const encode = (samples: readonly S[], maxBytes: number) => {
    const empty = { payload: new Uint8Array(0), count: 0 };
    if (samples.length === 0 || maxBytes < MIN_BUDGET) return empty;
    const builder = new BatchBuilder({
      device: opts.device,
      signer,
      maxBytes: Math.min(Math.floor(maxBytes), IOT_MAX_MESSAGE_BYTES),
      ...(opts.maxSamples !== undefined ? { maxSamples: opts.maxSamples } : {}),
    });
    for (const s of samples) {
      let added: boolean;
      try {
        added = add(builder, s);
      } catch (err) {
        if (!isContractError(err)) throw err;
        if (builder.isEmpty) {
          opts.onUnencodable?.(s.seq, err.message);
          return empty;
        }
        break;
      }
      if (!added) break;
    }
    const built = builder.finish();
    if (built === undefined) return empty;
    return { payload: built.message, count: built.count };
  };
  return async (samples, maxBytes) => encode(samples, maxBytes);
}
