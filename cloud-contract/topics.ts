/**
 * MQTT topics, built and parsed in one place (contract v1).
 *
 *   meterlink/v1/{thing}/batch | health | event
 *   $aws/rules/{rule}/meterlink/v1/{thing}/batch      (IoT Core Basic Ingest: no messaging charge)
 */
import { ContractError } from './errors.js';

export const TOPIC_PREFIX = 'meterlink/v1';

export type TopicKind = 'batch' | 'health' | 'event';

export interface ParsedTopic {
  readonly thing: string;
  readonly kind: TopicKind;
  /** Present when the topic is the Basic Ingest form `$aws/rules/{rule}/…`. */
  readonly basicIngestRule?: string;
}

// AWS IoT: thing names are 1–128 characters of [a-zA-Z0-9:_-]; rule names 1–128 of [a-zA-Z0-9_].
const THING_RE = /^[a-zA-Z0-9:_-]{1,128}$/;
const RULE_RE = /^[a-zA-Z0-9_]{1,128}$/;

export function isValidThingName(name: unknown): name is string {
  return typeof name === 'string' && THING_RE.test(name);
}

export function isValidRuleName(name: unknown): name is string {
  return typeof name === 'string' && RULE_RE.test(name);
}

export function assertThingName(thing: string): void {
  if (!isValidThingName(thing))
    throw new ContractError(
      'BAD_THING_NAME',
      `invalid thing name ${JSON.stringify(thing)}: AWS IoT thing names are 1–128 characters of ` +
        'letters, digits, ":", "_" and "-"',
      { thing },
    );
}

function assertRuleName(rule: string): void {
  if (!isValidRuleName(rule))
    throw new ContractError(
      'BAD_RULE_NAME',
      `invalid IoT rule name ${JSON.stringify(rule)}: rule names are 1–128 letters, digits and "_"`,
      { rule },
    );
}

function topic(thing: string, kind: TopicKind): string {
  assertThingName(thing);
  return `${TOPIC_PREFIX}/${thing}/${kind}`;
}

/** The batch topic; with `basicIngestRule`, the Basic Ingest form that goes straight to that rule. */
export function batchTopic(thing: string, opts: { basicIngestRule?: string } = {}): string {
  const t = topic(thing, 'batch');
  if (opts.basicIngestRule === undefined) return t;
  assertRuleName(opts.basicIngestRule);
  return `$aws/rules/${opts.basicIngestRule}/${t}`;
}

export function healthTopic(thing: string): string {
  return topic(thing, 'health');
}

export function eventTopic(thing: string): string {
  return topic(thing, 'event');
}

/** Parses any meterlink topic; `null` for anything else (including invalid thing or rule names). */
export function parseTopic(t: string): ParsedTopic | null {
  if (typeof t !== 'string') return null;
  const parts = t.split('/');
  let rule: string | undefined;
  if (parts[0] === '$aws') {
    if (parts[1] !== 'rules' || parts.length !== 7) return null;
    rule = parts[2];
    if (!isValidRuleName(rule)) return null;
    parts.splice(0, 3);
  }
  if (parts.length !== 4 || `${parts[0]}/${parts[1]}` !== TOPIC_PREFIX) return null;
  const thing = parts[2];
  const kind = parts[3];
  if (!isValidThingName(thing)) return null;
  if (kind !== 'batch' && kind !== 'health' && kind !== 'event') return null;
  // Basic Ingest is used for batches only; health and events go through the broker (rules may fan out).
  if (rule !== undefined && kind !== 'batch') return null;
  return rule === undefined ? { thing, kind } : { thing, kind, basicIngestRule: rule };
}
