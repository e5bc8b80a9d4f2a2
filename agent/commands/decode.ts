/**
 * `meterlink decode FILE|- [--cert CERT.pem] [--json]`: any payload (signed batch, health or event message)
 * as readable JSON, and whether the batch signature holds for the given certificate. Exit 0 when the payload
 * is valid (and, with --cert, its signature holds), 1 when it is rejected, with the reason code.
 */
import { readCapped } from '../runtime/read-capped.js';
import {
  certificateDer,
  certificatePublicKey,
  decodePayload,
  DEFAULT_DECODE_LIMITS,
  flagNames,
  kidFromCertificate,
  kidToHex,
  valueToNumber,
  type DecodedPayload,
  type Sample,
} from '../../cloud-contract/index.js';
import { CliError, ExitCode, type CommandModule } from '../cli.js';

interface DecodeFlags {
  cert?: string;
  json?: boolean;
}

/**
 * The most input `decode` reads: the largest message the decoder accepts, as base64 text (4/3 of it), with room
 * for line breaks. A larger input is refused as TOO_LARGE before it is read (a file, by its size) or as soon as
 * more has arrived (standard input), so its size never becomes the process's.
 */
export const MAX_DECODE_INPUT_BYTES = Math.ceil((DEFAULT_DECODE_LIMITS.maxMessageBytes * 4) / 3) + 4096;

/** The input is larger than any payload: rejected as TOO_LARGE, as the decoder itself would. */
class InputTooLarge extends Error {
  readonly reason = 'TOO_LARGE' as const;
  constructor(readonly detail: string) {
    super(detail);
  }
}

/**
 * At most `max` bytes of `file` (or standard input for `-`): a regular file is measured with fstat before
 * anything is read; a pipe or device is read until one byte more than `max` has arrived.
 */
async function readInput(file: string, max = MAX_DECODE_INPUT_BYTES): Promise<Uint8Array> {
  const what = file === '-' ? 'standard input' : file;
  const over = (size: string) =>
    new InputTooLarge(
      `${what} is ${size}; the limit is ${MAX_DECODE_INPUT_BYTES} bytes (a message of at most ${DEFAULT_DECODE_LIMITS.maxMessageBytes} bytes, raw or base64)`,
    );
  try {
    if (file === '-') {
      const chunks: Buffer[] = [];
      let got = 0;
      for await (const c of process.stdin) {
        chunks.push(c as Buffer);
        got += (c as Buffer).length;
        if (got > max) {
          process.stdin.destroy();
          throw over(`more than ${max} bytes`);
        }
      }
      return new Uint8Array(Buffer.concat(chunks));
    }
    const read = await readCapped(file, max);
    if (typeof read === 'number') throw over(read > max + 1 ? `${read} bytes` : `more than ${max} bytes`);
    return new Uint8Array(read);
  } catch (err) {
    if (err instanceof InputTooLarge) throw err;
    throw new CliError(`cannot read ${what}: ${(err as Error).message}`);
  }
}

/** A payload saved as base64 text (as IoT rules and Kinesis records carry it) is accepted too. */
function unwrapBase64(bytes: Uint8Array): Uint8Array {
  const text = Buffer.from(bytes).toString('latin1').trim();
  if (text.length >= 8 && /^[A-Za-z0-9+/]+={0,2}$/.test(text)) {
    const b = Buffer.from(text, 'base64');
    if (b[0] === 0xd2 || b[0] === 0x84) return new Uint8Array(b);
  }
  return bytes;
}

function readableSample(s: Sample): Record<string, unknown> {
  const values: Record<string, number> = {};
  for (const [k, v] of Object.entries(s.values)) values[k] = valueToNumber(v);
  return {
    seq: s.seq,
    meter: s.meter,
    ts: new Date(s.ts).toISOString(),
    ...(s.flags !== 0 ? { flags: flagNames(s.flags) } : {}),
    ...(s.missing !== undefined ? { missing: s.missing } : {}),
    values,
  };
}

function report(r: DecodedPayload, certGiven: boolean, json: boolean): { text: string; ok: boolean } {
  if (!r.ok) {
    const out = { type: r.type, valid: false, reason: r.reason, detail: r.detail };
    return {
      ok: false,
      text: json ? `${JSON.stringify(out)}\n` : `${r.type} payload REJECTED: ${r.reason} (${r.detail})\n`,
    };
  }
  if (r.type !== 'batch') {
    const out = { type: r.type, valid: true, message: r.message };
    return {
      ok: true,
      text: json
        ? `${JSON.stringify(out)}\n`
        : `${r.type} message, valid\n${JSON.stringify(r.message, null, 2)}\n`,
    };
  }
  const b = r.batch;
  const head = {
    type: 'batch',
    valid: true,
    signature: r.signature,
    kid: r.kidHex,
    compressed: r.compressed,
    messageBytes: r.messageBytes,
    documentBytes: r.documentBytes,
    device: b.device,
    firstSeq: b.firstSeq,
    lastSeq: b.lastSeq,
    meters: b.meters,
    count: b.samples.length,
  };
  if (json) return { ok: true, text: `${JSON.stringify({ ...head, samples: b.samples })}\n` };
  const sig =
    r.signature === 'valid'
      ? 'signature VALID for the given certificate'
      : `signature not checked${certGiven ? '' : ' (give --cert to verify)'}`;
  return {
    ok: true,
    text:
      `batch from ${b.device}: ${b.samples.length} samples, seq ${b.firstSeq}..${b.lastSeq}, ` +
      `${r.messageBytes} bytes; ${sig}\n` +
      `${JSON.stringify({ ...head, samples: b.samples.map(readableSample) }, null, 2)}\n`,
  };
}

export const decodeCommand: CommandModule = {
  register(program, io) {
    program
      .command('decode')
      .description('print any meterlink payload (batch, health, event) as JSON and check the batch signature')
      .argument('<file>', 'payload file (raw bytes or base64 text), or - for standard input')
      .option('--cert <file>', "the device certificate (PEM or DER): verify the batch's signature against it")
      .option('--json', 'one machine-readable JSON object with exact values')
      .addHelpText(
        'after',
        '\nExamples:\n' +
          '  meterlink decode batch.cbor --cert device.crt   decode a batch and verify its signature\n' +
          '  mosquitto_sub ... -C 1 | meterlink decode -     decode a payload from standard input\n' +
          '\nExit status: 0 valid, 1 rejected (the reason code is printed).\n',
      )
      .action(async (file: string, flags: DecodeFlags) => {
        let input: Uint8Array;
        try {
          input = await readInput(file);
        } catch (err) {
          if (!(err instanceof InputTooLarge)) throw err;
          const out = { type: 'unknown', valid: false, reason: err.reason, detail: err.detail };
          if (flags.json === true) io.out(`${JSON.stringify(out)}\n`);
          throw new CliError(
            flags.json === true
              ? `rejected: ${err.reason}`
              : `payload REJECTED: ${err.reason} (${err.detail})`,
          );
        }
        const bytes = unwrapBase64(input);
        let certDer: Uint8Array | undefined;
        if (flags.cert !== undefined) {
          const raw = await readInput(flags.cert);
          const text = Buffer.from(raw).toString('latin1');
          try {
            certDer = text.includes('-----BEGIN') ? certificateDer(text) : raw;
            certificatePublicKey(certDer);
          } catch (err) {
            throw new CliError(
              `${flags.cert}: ${(err as Error).message}; give the device certificate (PEM or DER)`,
            );
          }
        }
        const cert = certDer;
        const r = await decodePayload(
          bytes,
          cert === undefined
            ? {}
            : {
                // The given certificate is the only one we know: another kid is unknown to us.
                resolveKey: (kid) =>
                  kidToHex(kid) === kidToHex(kidFromCertificate(cert)) ? cert : undefined,
              },
        );
        const { text, ok } = report(r, cert !== undefined, flags.json === true);
        if (ok) io.out(text);
        else {
          if (flags.json === true) io.out(text);
          throw new CliError(
            flags.json === true ? `rejected: ${(r as { reason: string }).reason}` : text.trimEnd(),
            ExitCode.failure,
          );
        }
      });
  },
};
