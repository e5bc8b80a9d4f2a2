/**
 * The lake as Athena sees it, on this machine: Parquet files in the Glue table `samples`' exact schema and
 * partition layout (infra-cfn/templates/lake.yaml), read by DuckDB, and the template's saved queries run on
 * them through a small, explicit Trino → DuckDB translation.
 *
 * Types: one table maps each Glue (Hive) type the table uses to its DuckDB type (`duckDbType`). Timestamps
 * arrive in the rows as epoch milliseconds (what Firehose's HiveJsonSerDe reads with TimestampFormats
 * ["millis"]) and are written as Parquet timestamps, as Firehose's Parquet conversion does.
 *
 * Translation (`athenaToDuckDb` + `installTrinoMacros`), the only differences between what Athena engine v3
 * runs and what DuckDB runs here:
 * 1. `current_timestamp` / `current_date` become literals of a fixed "now" (UTC), so a test decides the window;
 * 2. `lag(x) IGNORE NULLS OVER (…)` (Trino and SQL:2011 place the null treatment after the call) becomes
 *    `lag(x IGNORE NULLS) OVER (…)`, the only placement DuckDB parses;
 * 3. Trino functions DuckDB lacks or defines differently become DuckDB macros with Trino's meaning:
 *    `element_at(map, key)` → the value or NULL (DuckDB's own returns a list), `date_format(d, '%Y-%m-%d')`
 *    → `strftime` (the specifiers used here mean the same in both), `bitwise_and(a, b)` → `a & b`.
 * Everything else in the queries is written in the common subset of both dialects.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { parse } from 'yaml';
import type { SampleRow } from '../../infra-cfn/lambda/rows.js';
import { repoRoot } from '../harness/cli.js';

interface GlueColumn {
  Name: string;
  Type: string;
}

interface Template {
  Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
}

// CloudFormation tags (!Ref, !Sub …) as plain values: the test reads strings and shapes, not resolved ARNs.
const cfnTags = ['Ref', 'Sub', 'GetAtt', 'Join', 'Split', 'If', 'Equals', 'Not', 'Select', 'GetAZs'].flatMap(
  (n) => [
    { tag: `!${n}`, resolve: (v: unknown) => v },
    { tag: `!${n}`, collection: 'seq' as const, resolve: (v: unknown) => v },
  ],
);

export async function readLakeTemplate(): Promise<Template> {
  const text = await readFile(join(repoRoot, 'infra-cfn/templates/lake.yaml'), 'utf8');
  return parse(text, { customTags: cfnTags, logLevel: 'silent' }) as Template;
}

export interface GlueSamplesTable {
  columns: GlueColumn[];
  partitionKeys: GlueColumn[];
  /** `storage.location.template` below the bucket, e.g. `samples/dt=${dt}/`. */
  locationTemplate: string;
}

export function glueSamplesTable(doc: Template): GlueSamplesTable {
  const table = Object.values(doc.Resources).find(
    (r) => r.Type === 'AWS::Glue::Table' && (r.Properties.TableInput as { Name: string }).Name === 'samples',
  );
  if (!table) throw new Error('lake.yaml has no Glue table samples');
  const input = table.Properties.TableInput as {
    Parameters: Record<string, string>;
    PartitionKeys: GlueColumn[];
    StorageDescriptor: { Columns: GlueColumn[] };
  };
  const location = String(input.Parameters['storage.location.template']);
  const m = /^s3:\/\/\$\{Bucket\}\/(.*)$/.exec(location);
  if (!m) throw new Error(`unexpected storage.location.template ${location}`);
  return {
    columns: input.StorageDescriptor.Columns,
    partitionKeys: input.PartitionKeys,
    locationTemplate: (m[1] as string).replaceAll('${!', '${'),
  };
}

export interface SavedQuery {
  resource: string;
  name: string;
  sql: string;
}

export function savedQueries(doc: Template): SavedQuery[] {
  return Object.entries(doc.Resources)
    .filter(([, r]) => r.Type === 'AWS::Athena::NamedQuery')
    .map(([resource, r]) => ({
      resource,
      name: String(r.Properties.Name),
      sql: String(r.Properties.QueryString),
    }));
}

/** Glue/Hive column type → DuckDB type: the one place the two type systems meet. */
export function duckDbType(hive: string): string {
  const t = hive.trim().toLowerCase();
  const scalar: Record<string, string> = {
    string: 'VARCHAR',
    bigint: 'BIGINT',
    int: 'INTEGER',
    smallint: 'SMALLINT',
    tinyint: 'TINYINT',
    double: 'DOUBLE',
    float: 'FLOAT',
    boolean: 'BOOLEAN',
    timestamp: 'TIMESTAMP',
    date: 'DATE',
  };
  if (scalar[t]) return scalar[t];
  const arr = /^array<(.+)>$/.exec(t);
  if (arr) return `${duckDbType(arr[1] as string)}[]`;
  const map = /^map<([^,<>]+),(.+)>$/.exec(t);
  if (map) return `MAP(${duckDbType(map[1] as string)}, ${duckDbType(map[2] as string)})`;
  throw new Error(`no DuckDB type for Glue type ${hive}`);
}

const quoteIdent = (s: string) => `"${s.replaceAll('"', '""')}"`;
const quoteText = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** One Parquet object as Firehose would deliver it: a partition value and the rows in it. */
export interface LakeFile {
  dt: string;
  rows: readonly SampleRow[];
}

/**
 * Writes `files` under `root` in the table's location layout (`samples/dt=…/part-N.parquet`), each row
 * converted to the Glue column types. Rows must have exactly the Glue columns.
 */
export async function writeLakeParquet(
  conn: DuckDBConnection,
  root: string,
  table: GlueSamplesTable,
  files: readonly LakeFile[],
): Promise<string[]> {
  const names = table.columns.map((c) => c.Name);
  const jsonColumns = table.columns
    .map((c) => `${quoteText(c.Name)}: ${quoteText(c.Type === 'timestamp' ? 'BIGINT' : duckDbType(c.Type))}`)
    .join(', ');
  const select = table.columns
    .map((c) =>
      c.Type === 'timestamp'
        ? `epoch_ms(${quoteIdent(c.Name)}) AS ${quoteIdent(c.Name)}`
        : `CAST(${quoteIdent(c.Name)} AS ${duckDbType(c.Type)}) AS ${quoteIdent(c.Name)}`,
    )
    .join(', ');
  const written: string[] = [];
  for (const [i, f] of files.entries()) {
    for (const r of f.rows) {
      const keys = Object.keys(r).sort().join(',');
      if (keys !== [...names].sort().join(','))
        throw new Error(`row columns ${keys} are not the Glue table's ${names.join(',')}`);
    }
    const dir = join(root, table.locationTemplate.replace('${dt}', f.dt));
    await mkdir(dir, { recursive: true });
    const json = join(root, `rows-${i}.ndjson`);
    await writeFile(json, f.rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const out = join(dir, `part-${String(i).padStart(5, '0')}.snappy.parquet`);
    await conn.run(
      `COPY (SELECT ${select} FROM read_json(${quoteText(json)}, format = 'newline_delimited', columns = {${jsonColumns}}))
       TO ${quoteText(out)} (FORMAT parquet, COMPRESSION snappy)`,
    );
    written.push(out);
  }
  return written;
}

/** Trino functions as DuckDB macros with Trino's meaning (translation rule 3). */
export async function installTrinoMacros(conn: DuckDBConnection): Promise<void> {
  await conn.run('CREATE OR REPLACE MACRO element_at(m, k) AS map_extract_value(m, k)');
  await conn.run('CREATE OR REPLACE MACRO date_format(d, f) AS strftime(d, f)');
  await conn.run('CREATE OR REPLACE MACRO bitwise_and(a, b) AS (a & b)');
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');
const sqlTimestamp = (ms: number) => {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}`;
};

/** Translation rules 1 and 2 (see the file comment); `nowMs` is the query's "now", UTC. */
export function athenaToDuckDb(sql: string, nowMs: number): string {
  const out = sql
    .replace(/\bcurrent_timestamp\b/gi, `TIMESTAMP '${sqlTimestamp(nowMs)}'`)
    .replace(/\bcurrent_date\b/gi, `DATE '${new Date(nowMs).toISOString().slice(0, 10)}'`)
    .replace(/\b(lag|lead)\(([^()]*)\)\s+IGNORE\s+NULLS\s+OVER\b/gi, '$1($2 IGNORE NULLS) OVER');
  if (/IGNORE\s+NULLS\s+OVER/i.test(out))
    throw new Error('an IGNORE NULLS the translation does not cover (only lag/lead of a plain column)');
  return out;
}

export interface Lake {
  conn: DuckDBConnection;
  /** Runs a saved query's Athena SQL at `nowMs`; rows as plain JSON-able objects. */
  query(sql: string, nowMs: number): Promise<Record<string, unknown>[]>;
  close(): void;
}

/**
 * A DuckDB database whose `samples` is the Parquet under `root` read the way the Glue table reads it:
 * the files of every `dt=` folder, partition columns typed as the Glue partition keys.
 */
export async function openLake(root: string, table: GlueSamplesTable): Promise<Lake> {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  await installTrinoMacros(conn);
  const glob = join(root, table.locationTemplate.replace('${dt}', '*'), '*.parquet');
  const hiveTypes = table.partitionKeys
    .map((k) => `${quoteText(k.Name)}: ${quoteText(duckDbType(k.Type))}`)
    .join(', ');
  await conn.run(
    `CREATE VIEW samples AS SELECT * FROM read_parquet(${quoteText(glob)}, hive_partitioning = true, hive_types = {${hiveTypes}})`,
  );
  return {
    conn,
    async query(sql, nowMs) {
      const reader = await conn.runAndReadAll(athenaToDuckDb(sql, nowMs).replace(/;\s*$/, ''));
      return reader.getRowObjectsJson() as Record<string, unknown>[];
    },
    close() {
      conn.closeSync();
      db.closeSync();
    },
  };
}
