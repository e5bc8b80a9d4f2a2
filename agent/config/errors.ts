/**
 * A bad config: every problem at once, each with where (file, line, column, field path), what and the fix.
 * The agent refuses to start on one of these (exit 78, which systemd is told not to restart on).
 */

/** Stable codes for what is wrong; match on these, never on message text. */
export type ConfigProblemCode =
  /** The file does not exist. */
  | 'FILE_MISSING'
  /** The file exists but cannot be read (permissions, a directory). */
  | 'FILE_UNREADABLE'
  /** The file is larger than any config may be (checked before it is read). */
  | 'FILE_TOO_LARGE'
  /** Not valid YAML (or a duplicate key in one mapping). */
  | 'YAML_SYNTAX'
  /** The YAML nests too deep or stands for too many nodes (aliases expanded): refused before it is used. */
  | 'YAML_LIMIT'
  /** A key the schema does not know (a typo, or a key in the wrong section). */
  | 'UNKNOWN_KEY'
  /** A required key is absent. */
  | 'MISSING_KEY'
  /** Wrong kind of value (a number where a string belongs, …). */
  | 'WRONG_TYPE'
  /** Not one of the allowed values. */
  | 'NOT_ALLOWED'
  /** Malformed (a duration without a unit, a relative path, …). */
  | 'BAD_FORMAT'
  /** Outside the allowed range. */
  | 'OUT_OF_RANGE'
  /** `dashboard.listen` is reachable from the network but `dashboard.token` is missing. */
  | 'DASHBOARD_TOKEN'
  /** Two meters with the same id. */
  | 'DUPLICATE_ID'
  /** Two meters that would answer to the same address (same bus and unit id, same host and unit id). */
  | 'ADDRESS_CLASH'
  /** Meters on one serial port that cannot share it (DSMR + Modbus, different line settings). */
  | 'PORT_CLASH'
  /** The meter profile is unknown or the inline register map is invalid. */
  | 'BAD_PROFILE'
  /** A file the config names (CA, certificate, key) is missing or unreadable. */
  | 'CLOUD_FILE'
  /** The private key can be read by others than its owner. */
  | 'KEY_PERMISSIONS';

export interface ConfigProblem {
  readonly code: ConfigProblemCode;
  /** The config file. */
  readonly file: string;
  /** 1-based line and column of the offending key or value (0 when the problem is the file itself). */
  readonly line: number;
  readonly col: number;
  /** Field path, e.g. `meters[1].baud` (empty for the file itself). */
  readonly field: string;
  /** What is wrong, including what was found. */
  readonly message: string;
  /** What to do about it, when we know. */
  readonly fix?: string;
}

/** `file:line:col field: message (fix)` — one problem, one line, as `config check` and the daemon print it. */
export function formatProblem(p: ConfigProblem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.col}` : p.file;
  const field = p.field ? ` ${p.field}:` : ':';
  return `${where}${field} ${p.message}${p.fix ? ` (${p.fix})` : ''}`;
}

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID' as const;
  readonly file: string;
  readonly problems: readonly ConfigProblem[];

  constructor(file: string, problems: readonly ConfigProblem[], opts: { cause?: unknown } = {}) {
    const n = problems.length;
    super(
      `${file}: ${n} problem${n === 1 ? '' : 's'} in the config\n${problems.map(formatProblem).join('\n')}`,
      opts.cause === undefined ? undefined : { cause: opts.cause },
    );
    this.name = 'ConfigError';
    this.file = file;
    this.problems = Object.freeze([...problems]);
  }
}

export function isConfigError(err: unknown): err is ConfigError {
  return err instanceof ConfigError;
}
