/**
 * Schema validation with Ajv (all errors, not just the first) and the translation of Ajv's errors into
 * problems a person can act on: the field path, what was found, what is allowed, and a "did you mean".
 */
import { Ajv, type ErrorObject, type KeywordDefinition, type ValidateFunction } from 'ajv';
import { closest } from './suggest.js';
import { formatDuration, formatSize, parseDuration, parseSize } from './units.js';
import { ConfigSchema, meterDrivers } from './schema.js';
import type { ConfigProblemCode } from './errors.js';
import type { FieldPath } from './locate.js';

/** A schema problem before it is placed in the file. */
export interface SchemaProblem {
  code: ConfigProblemCode;
  path: FieldPath;
  /** Point at the key rather than the value (unknown keys). */
  atKey?: boolean;
  message: string;
  fix?: string;
}

interface Range {
  min?: number;
  max?: number;
}

function rangeKeyword(
  keyword: string,
  parse: (v: string | number) => number | undefined,
  show: (n: number) => string,
): KeywordDefinition {
  return {
    keyword,
    schemaType: 'object',
    errors: true,
    validate: function check(range: Range, data: unknown): boolean {
      const self = check as { errors?: Partial<ErrorObject>[] };
      if (typeof data !== 'string' && typeof data !== 'number') return true;
      const n = parse(data);
      if (n === undefined) return true; // the pattern reports malformed values
      const bad =
        range.min !== undefined && n < range.min
          ? `must be at least ${show(range.min)}`
          : range.max !== undefined && n > range.max
            ? `must be at most ${show(range.max)}`
            : undefined;
      self.errors = bad ? [{ keyword, message: bad, params: range }] : [];
      return bad === undefined;
    },
  };
}

/**
 * The compiled validator, held weakly: a config is loaded once at start-up, and Ajv with the code it generated
 * for the schema is then garbage the daemon need not carry for months. Loads close together (tests,
 * `config check` of several files) still share one compile while it is alive.
 */
let compiled: WeakRef<ValidateFunction> | undefined;

function validator(): ValidateFunction {
  const alive = compiled?.deref();
  if (alive) return alive;
  const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true });
  // `errorMessage` is what VS Code's YAML/JSON support shows for a failed pattern; here an annotation.
  ajv.addKeyword({ keyword: 'errorMessage', schemaType: 'string' });
  ajv.addKeyword(
    rangeKeyword('x-duration', (v) => (typeof v === 'string' ? parseDuration(v) : undefined), formatDuration),
  );
  ajv.addKeyword(rangeKeyword('x-size', parseSize, formatSize));
  const validate = ajv.compile(ConfigSchema);
  compiled = new WeakRef(validate);
  return validate;
}

/** Every problem Ajv finds in `raw`, as person-readable problems (empty when the config is valid). */
export function validateRaw(raw: unknown): SchemaProblem[] {
  const validate = validator();
  if (validate(raw)) return [];
  const errors = relevant(validate.errors ?? [], raw);
  const problems = errors.map((e) => explain(e));
  // One problem per field and code is enough (e.g. `type` and `pattern` on the same value).
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.path.join('\0')}|${p.code}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function pathOf(instancePath: string): (string | number)[] {
  if (!instancePath) return [];
  return instancePath
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
}

/**
 * Drops Ajv's noise from unions. A meter is judged only against the variant its `driver` names (so a
 * Modbus meter is not told it lacks DSMR keys); a meter without a known driver gets one problem on
 * `driver`. Other unions (`profile`) report once, with the union's own message.
 */
function relevant(errors: readonly ErrorObject[], raw: unknown): ErrorObject[] {
  const meters = (raw as { meters?: unknown })?.meters;
  const branchOf = (i: number): number => {
    const m = Array.isArray(meters) ? (meters[i] as { driver?: unknown } | undefined) : undefined;
    return meterDrivers.indexOf(m?.driver as (typeof meterDrivers)[number]);
  };
  // For other unions: when the value's JSON type picks one member (a string profile), that member's own
  // errors say more than the union; otherwise the union's message stands alone.
  const unionNoise: string[] = [];
  const unionKept = new Set<ErrorObject>();
  for (const e of errors) {
    const parent = e.parentSchema as { errorMessage?: unknown; anyOf?: { type?: unknown }[] } | undefined;
    if (e.keyword !== 'anyOf' || typeof parent?.errorMessage !== 'string') continue;
    const kind = Array.isArray(e.data) ? 'array' : e.data === null ? 'null' : typeof e.data;
    const member = (parent.anyOf ?? []).findIndex((b) => b.type === kind);
    const memberPath = `${e.schemaPath}/${member}/`;
    unionNoise.push(`${e.schemaPath}/`);
    if (member < 0) unionKept.add(e);
    else for (const inner of errors) if (inner.schemaPath.startsWith(memberPath)) unionKept.add(inner);
  }
  const out: ErrorObject[] = [];
  const driverless = new Set<number>();
  for (const e of errors) {
    const m = /^#\/properties\/meters\/items\/anyOf\/([0-9]+)\//.exec(e.schemaPath);
    const meterIndex = /^\/meters\/([0-9]+)/.exec(e.instancePath);
    if (meterIndex && e.schemaPath === '#/properties/meters/items/anyOf') {
      const i = Number(meterIndex[1]);
      if (branchOf(i) < 0) driverless.add(i);
      continue;
    }
    if (m && meterIndex) {
      const i = Number(meterIndex[1]);
      if (branchOf(i) !== Number(m[1])) continue;
    }
    if (e.keyword === 'anyOf' && unionNoise.includes(`${e.schemaPath}/`) && !unionKept.has(e)) continue;
    if (unionNoise.some((prefix) => e.schemaPath.startsWith(prefix)) && !unionKept.has(e)) continue;
    out.push(e);
  }
  for (const i of driverless) {
    const meter = Array.isArray(meters) ? (meters[i] as unknown) : undefined;
    const driver =
      typeof meter === 'object' && meter !== null ? (meter as { driver?: unknown }).driver : undefined;
    out.push({
      keyword: 'x-driver',
      instancePath: `/meters/${i}${typeof meter === 'object' && meter !== null ? '/driver' : ''}`,
      schemaPath: '#/properties/meters/items',
      params: { driver, isObject: typeof meter === 'object' && meter !== null && !Array.isArray(meter) },
      data: driver,
    });
  }
  return out;
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

const typeNames: Readonly<Record<string, string>> = {
  string: 'text',
  integer: 'a whole number',
  number: 'a number',
  object: 'a mapping (key: value lines)',
  array: 'a list (lines starting with -)',
  boolean: 'true or false',
};

function explain(e: ErrorObject): SchemaProblem {
  const path = pathOf(e.instancePath);
  const parent = (e.parentSchema ?? {}) as {
    errorMessage?: string;
    pattern?: string;
    properties?: Record<string, { description?: string }>;
  };
  switch (e.keyword) {
    case 'x-driver': {
      const { driver, isObject } = e.params as { driver: unknown; isObject: boolean };
      if (!isObject)
        return {
          code: 'WRONG_TYPE',
          path,
          message: `must be a mapping with id, driver, …; got ${show(e.data)}`,
        };
      if (driver === undefined)
        return {
          code: 'MISSING_KEY',
          path,
          message: 'is required',
          fix: `add driver: ${meterDrivers.join(' | ')}`,
        };
      const guess = typeof driver === 'string' ? closest(driver, meterDrivers) : undefined;
      return {
        code: 'NOT_ALLOWED',
        path,
        message: `must be one of ${meterDrivers.join(', ')}; got ${show(driver)}`,
        ...(guess ? { fix: `did you mean ${guess}?` } : {}),
      };
    }
    case 'additionalProperties': {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys(parent.properties ?? {});
      const guess = closest(key, known);
      return {
        code: 'UNKNOWN_KEY',
        path: [...path, key],
        atKey: true,
        message: 'unknown key',
        fix: guess ? `did you mean ${guess}?` : `known keys here: ${known.join(', ')}`,
      };
    }
    case 'required': {
      const key = (e.params as { missingProperty: string }).missingProperty;
      const about = parent.properties?.[key]?.description;
      return {
        code: 'MISSING_KEY',
        path: [...path, key],
        message: 'is required',
        fix: `add ${key}${about ? ` — ${about}` : ''}`,
      };
    }
    case 'enum': {
      const allowed = e.schema as readonly (string | number)[];
      const guess = closest(String(e.data), allowed.map(String));
      return {
        code: 'NOT_ALLOWED',
        path,
        message: `must be one of ${allowed.join(', ')}; got ${show(e.data)}`,
        ...(guess ? { fix: `did you mean ${guess}?` } : {}),
      };
    }
    case 'const':
      return { code: 'NOT_ALLOWED', path, message: `must be ${show(e.schema)}; got ${show(e.data)}` };
    case 'type': {
      const want = ([] as string[]).concat(e.schema as string | string[]);
      if (parent.errorMessage)
        return {
          code: 'WRONG_TYPE',
          path,
          message: `must be ${parent.errorMessage}; got ${show(e.data)}`,
          ...(typeof e.data === 'number' && parent.pattern?.includes('ms|s')
            ? { fix: `write it with a unit, e.g. ${e.data}s or ${e.data}ms` }
            : {}),
        };
      return {
        code: 'WRONG_TYPE',
        path,
        message: `must be ${want.map((w) => typeNames[w] ?? w).join(' or ')}; got ${show(e.data)}`,
        ...(typeof e.data === 'string' && want.includes('integer') && /^[0-9]+$/.test(e.data)
          ? { fix: `write it without quotes: ${e.data}` }
          : path.length === 0
            ? { fix: 'start from the example config in README.md' }
            : {}),
      };
    }
    case 'pattern':
      return {
        code: 'BAD_FORMAT',
        path,
        message: `must be ${parent.errorMessage ?? `like ${e.schema as string}`}; got ${show(e.data)}`,
        ...formatFix(e.data),
      };
    case 'anyOf':
      return {
        code: 'WRONG_TYPE',
        path,
        message: `must be ${parent.errorMessage ?? 'another kind of value'}; got ${show(e.data)}`,
      };
    case 'minimum':
    case 'maximum':
      return {
        code: 'OUT_OF_RANGE',
        path,
        message: `must be ${e.keyword === 'minimum' ? 'at least' : 'at most'} ${String(e.schema)}; got ${show(e.data)}`,
      };
    case 'x-duration':
    case 'x-size':
      return {
        code: 'OUT_OF_RANGE',
        path,
        message: `${e.message ?? 'out of range'}; got ${show(e.data)}`,
        ...(e.keyword === 'x-size' && path.join('.') === 'batch.maxSize'
          ? { fix: 'IoT Core refuses MQTT messages over 128 KB; 128KiB is the largest batch' }
          : {}),
      };
    case 'minItems':
      return {
        code: 'MISSING_KEY',
        path,
        message: 'needs at least one entry',
        fix:
          path.join('.') === 'meters'
            ? 'add a meter: - id: main, driver: modbus-rtu, port: /dev/ttyUSB0, …'
            : undefined,
      };
    default:
      return { code: 'BAD_FORMAT', path, message: e.message ?? 'is not valid' };
  }
}

/** Suggestions for the common ways durations and sizes get written wrong (`5 sec`, `1.5 mb`, `10MIB`). */
function formatFix(data: unknown): { fix?: string } {
  if (typeof data !== 'string') return {};
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)\s*$/.exec(data);
  if (!m) return {};
  const [, n, unit = ''] = m;
  const durations: Record<string, string> = {
    sec: 's',
    secs: 's',
    second: 's',
    seconds: 's',
    mins: 'min',
    minute: 'm',
    minutes: 'm',
    hour: 'h',
    hours: 'h',
    hr: 'h',
    day: 'd',
    days: 'd',
    msec: 'ms',
    millis: 'ms',
  };
  const d = durations[unit.toLowerCase()];
  if (d) return { fix: `did you mean ${n}${d}?` };
  const sizes = ['B', 'kB', 'KB', 'KiB', 'MB', 'MiB', 'GB', 'GiB'];
  const s =
    sizes.find((u) => u.toLowerCase() === unit.toLowerCase()) ??
    sizes.find((u) => u.toLowerCase() === `${unit.toLowerCase()}b`);
  if (s) return { fix: `did you mean ${n}${s}?` };
  return {};
}
