/**
 * The cloud contract (v1): topics, channel registry, sample types, the batch document (CBOR, batch.cddl)
 * inside COSE_Sign1, health/event messages, and the hostile-input decoders. Shared by agent and cloud.
 */
export * from './channels.js';
export * from './sample.js';
export * from './errors.js';
export * from './reject.js';
export * from './topics.js';
export {
  BATCH_VERSION,
  LIMITS as SAMPLE_LIMITS,
  encodeBatch,
  validateSample,
  type BatchInput,
  type BatchV1,
  type SampleHead,
  type ValueSink,
} from './batch.js';
export * from './cose.js';
export * from './builder.js';
export * from './decode.js';
export * from './messages.js';
export * from './payload.js';
