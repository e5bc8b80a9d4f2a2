/**
 * `loadConfig(file)`: read, parse, validate, check, default and freeze — or throw one `ConfigError` that
 * lists every problem with its line. The agent is never handed a half-valid config.
 */
import { LineCounter, parseDocument } from 'yaml';
import { CloudSchema, ConfigSchema, MeterSchema, type Config, type MeterConfig } from './schema.js';
import { decodeWithSchema, deepFreeze } from './decode.js';
import { validateRaw, type SchemaProblem } from './validate.js';
import {
  checkCloudFiles,
  checkDashboard,
  checkMeters,
  checkProfiles,
  checkRawIds,
  type ProfileCatalog,
} from './checks.js';
import { ConfigError, type ConfigProblem } from './errors.js';
import { CONFIG_LIMITS, checkDocument, checkText, tooLargeProblem } from './limits.js';
import { formatPath, locator } from './locate.js';
import { driverProfiles } from './profiles.js';
import { readCapped } from '../runtime/read-capped.js';

export interface LoadConfigOptions {
  /**
   * The daemon's mode: `cloud:` must be present and its CA, certificate and key readable, the key mode 600.
   * `read` and `config check` leave it off (an installer checks the wiring before provisioning).
   */
  requireCloud?: boolean;
  /** Built-in profile names and the inline register map validator; default: the drivers' own. */
  profiles?: ProfileCatalog;
}

/** Reads and checks `file`. Resolves to the frozen, fully defaulted config; rejects with a `ConfigError`. */
export async function loadConfig(file: string, opts: LoadConfigOptions = {}): Promise<Config> {
  let text: string;
  try {
    const read = await readCapped(file, CONFIG_LIMITS.maxBytes);
    if (typeof read === 'number') throw new ConfigError(file, [tooLargeProblem(file, read)]);
    text = read.toString('utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const problem: ConfigProblem =
      code === 'ENOENT'
        ? {
            code: 'FILE_MISSING',
            file,
            line: 0,
            col: 0,
            field: '',
            message: 'config file not found',
            fix: 'create it (see the example in README.md), or pass --config PATH',
          }
        : {
            code: 'FILE_UNREADABLE',
            file,
            line: 0,
            col: 0,
            field: '',
            message: `cannot read the config file (${code === 'EISDIR' ? 'it is a directory' : (code ?? String(err))})`,
            fix:
              code === 'EACCES'
                ? `let the meterlink user read it: chown root:meterlink ${file} && chmod 640 ${file}`
                : 'pass the path of the YAML file with --config',
          };
    throw new ConfigError(file, [problem], { cause: err });
  }
  return parseConfig(text, file, opts);
}

/** Checks config text (`file` names it in problems). Same result as `loadConfig`. */
export async function parseConfig(text: string, file: string, opts: LoadConfigOptions = {}): Promise<Config> {
  const bad = checkText(text, file);
  if (bad) throw new ConfigError(file, [bad]);
  const lines = new LineCounter();
  // Duplicate keys are found by checkDocument, in linear time (the parser's check is quadratic).
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  const structural = doc.errors.length > 0 ? [] : checkDocument(doc, lines, file);
  if (structural.some((p) => p.code === 'YAML_LIMIT')) throw new ConfigError(file, structural);
  if (doc.errors.length > 0 || structural.length > 0) {
    throw new ConfigError(file, [
      ...structural,
      ...doc.errors.map((e) => {
        const pos = lines.linePos(e.pos[0]);
        return {
          code: 'YAML_SYNTAX',
          file,
          line: pos.line,
          col: pos.col,
          field: '',
          message: `YAML syntax: ${(e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')}`,
          fix: 'check indentation (spaces, not tabs) and quoting near this line',
        } satisfies ConfigProblem;
      }),
    ]);
  }
  // checkDocument has bounded what aliases expand to; -1 leaves the parser's own, coarser count out of it.
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: -1 });
  } catch (err) {
    // An alias the composer let through but cannot resolve (yaml reports it only here).
    throw new ConfigError(
      file,
      [
        {
          code: 'YAML_SYNTAX',
          file,
          line: 0,
          col: 0,
          field: '',
          message: `YAML syntax: ${(err as Error).message}`,
          fix: 'define each anchor (&name) before its aliases (*name)',
        },
      ],
      { cause: err },
    );
  }
  const problems: SchemaProblem[] = validateRaw(raw);

  // Checks across meters run on every meter the schema accepted, so one bad meter hides nothing else.
  const rawMeters = (raw as { meters?: unknown } | null)?.meters;
  const badMeters = new Set(problems.filter((p) => p.path[0] === 'meters').map((p) => p.path[1]));
  const meters: (MeterConfig | undefined)[] = Array.isArray(rawMeters)
    ? rawMeters.map((m, i) =>
        badMeters.has(i) ? undefined : (decodeWithSchema(MeterSchema, m) as MeterConfig),
      )
    : [];
  problems.push(...checkMeters(meters), ...checkRawIds(rawMeters, badMeters));
  problems.push(...checkProfiles(meters, opts.profiles ?? driverProfiles));
  if (!problems.some((p) => p.path[0] === 'dashboard'))
    problems.push(...checkDashboard((raw as { dashboard?: unknown } | null)?.dashboard));
  if (opts.requireCloud) {
    const rawCloud = (raw as { cloud?: unknown } | null)?.cloud;
    if (!problems.some((p) => p.path[0] === 'cloud'))
      problems.push(
        ...(await checkCloudFiles(
          rawCloud === undefined ? undefined : (decodeWithSchema(CloudSchema, rawCloud) as Config['cloud']),
        )),
      );
  }

  if (problems.length > 0) {
    const find = locator(doc, lines);
    const placed = problems.map((p) => place(p, file, find));
    placed.sort((a, b) => a.line - b.line || a.col - b.col);
    throw new ConfigError(file, placed);
  }
  return deepFreeze(decodeWithSchema(ConfigSchema, raw) as Config);
}

function place(p: SchemaProblem, file: string, find: ReturnType<typeof locator>): ConfigProblem {
  const pos = find(p.path, { key: p.atKey ?? false });
  return {
    code: p.code,
    file,
    line: pos.line,
    col: pos.col,
    field: formatPath(p.path),
    message: p.message,
    ...(p.fix ? { fix: p.fix } : {}),
  };
}
