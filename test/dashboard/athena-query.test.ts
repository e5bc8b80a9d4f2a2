/**
 * The cloud's "energy per thing per hour" (infra-cfn/templates/lake.yaml) follows the dashboard's rules:
 * duplicates removed, steps between consecutive readings per meter in the hour of the later one, a step down
 * counts 0, the same counter channels, the same 48 h window, only columns the Glue table has. cfn-lint checks
 * the template itself (test/infra/templates.test.ts).
 */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { HISTORY_COUNTERS } from '../../agent/dashboard/energy.js';
import { repoRoot } from '../harness/cli.js';

const text = await readFile(join(repoRoot, 'infra-cfn/templates/lake.yaml'), 'utf8');
// CloudFormation tags (!Ref, !Sub …) as plain values: only the shape matters here.
const tags = ['Ref', 'Sub', 'GetAtt', 'Join', 'Split', 'If', 'Equals', 'Not', 'Select', 'GetAZs'].flatMap(
  (n) => [
    { tag: `!${n}`, resolve: (v: unknown) => v },
    { tag: `!${n}`, collection: 'seq' as const, resolve: (v: unknown) => v },
  ],
);
const doc = parse(text, { customTags: tags, logLevel: 'silent' }) as {
  Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
};

t.test('energy per thing per hour: saved query with the dashboard rules', async (t) => {
  const q = doc.Resources.HourlyEnergyQuery;
  t.equal(q?.Type, 'AWS::Athena::NamedQuery');
  t.equal(q?.Properties.Name, 'energy per thing per hour');
  const sql = String(q?.Properties.QueryString).replace(/\s+/g, ' ');
  t.match(
    sql,
    /SELECT DISTINCT device, meter, seq, ts,/,
    'duplicates (at-least-once delivery) removed first',
  );
  t.match(
    sql,
    /import_kwh - lag\(import_kwh\) OVER \(PARTITION BY device, meter ORDER BY ts, seq\) AS d_import/,
    'steps between consecutive readings of one meter',
  );
  t.match(
    sql,
    /sum\(CASE WHEN d_import > 0 THEN d_import ELSE 0 END\) AS import_kwh/,
    'a step down counts 0',
  );
  t.match(sql, /sum\(CASE WHEN d_export > 0 THEN d_export ELSE 0 END\) AS export_kwh/);
  t.match(sql, /date_trunc\('hour', ts\) AS hour/, 'in the hour of the later reading');
  t.match(
    sql,
    /INTERVAL '49' HOUR.*INTERVAL '48' HOUR/,
    'one hour more read than shown: the first hour has its step',
  );
  for (const ch of HISTORY_COUNTERS) t.ok(sql.includes(`'${ch}'`), `reads ${ch}`);
  const columns = (
    (
      doc.Resources.SamplesTable?.Properties.TableInput as {
        StorageDescriptor: { Columns: { Name: string }[] };
      }
    ).StorageDescriptor.Columns ?? []
  ).map((c) => c.Name);
  for (const c of ['device', 'meter', 'seq', 'ts', 'readings'])
    t.ok(columns.includes(c), `Glue table has ${c}`);
});
