/**
 * From a validated raw config to the `Config` the agent runs with: defaults from the schema put in (in raw
 * form, as a user would write them), then each schema's transform applied (durations → ms, sizes → bytes,
 * derived keys). Only ever called on a value the schema has accepted.
 */
import { TransformKind, type TSchema } from '@sinclair/typebox';

interface SchemaNode {
  type?: string | string[];
  default?: unknown;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  anyOf?: SchemaNode[];
  const?: unknown;
  [TransformKind]?: { Decode(value: unknown): unknown };
}

export function decodeWithSchema(schema: TSchema, value: unknown): unknown {
  return visit(schema as SchemaNode, value);
}

function visit(schema: SchemaNode, input: unknown): unknown {
  let value = input === undefined && 'default' in schema ? structuredClone(schema.default) : input;
  if (value === undefined) return undefined;
  if (schema.properties && isRecord(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, sub] of Object.entries(schema.properties)) {
      const v = visit(sub, value[key]);
      if (v !== undefined) out[key] = v;
    }
    value = out;
  } else if (schema.items && Array.isArray(value)) {
    const items = schema.items;
    value = value.map((v) => visit(items, v));
  } else if (schema.anyOf) {
    const branch = pickBranch(schema.anyOf, value);
    if (branch) value = visit(branch, value);
  }
  const transform = schema[TransformKind];
  return transform ? transform.Decode(value) : value;
}

/** The union member for a value: by a `const` discriminator (`driver`) for objects, else by JSON type. */
function pickBranch(branches: readonly SchemaNode[], value: unknown): SchemaNode | undefined {
  if (isRecord(value)) {
    const byConst = branches.find(
      (b) =>
        b.properties !== undefined &&
        Object.entries(b.properties).some(([k, s]) => 'const' in s && value[k] === s.const),
    );
    if (byConst) return byConst;
    return branches.find((b) => b.type === 'object');
  }
  return branches.find((b) => b.type === typeof value);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Freezes a plain data tree, so the config handed down cannot be changed by anyone. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
