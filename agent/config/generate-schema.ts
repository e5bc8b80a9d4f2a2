/**
 * Writes `meterlink.schema.json` from the schema (`npm run config:schema`), formatted the way the repo's
 * prettier formats JSON so `npm run lint` stays clean. `--check` only reports whether the file is current.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import { format, resolveConfig } from 'prettier';
import { configJsonSchema, jsonSchemaFile } from './json-schema.js';

const schema = configJsonSchema();
if (process.argv.includes('--check')) {
  const current: unknown = JSON.parse(await readFile(jsonSchemaFile, 'utf8'));
  if (!isDeepStrictEqual(current, schema)) {
    console.error(`${jsonSchemaFile} is out of date: run npm run config:schema`);
    process.exitCode = 1;
  } else console.log(`${jsonSchemaFile} is current`);
} else {
  const options = (await resolveConfig(jsonSchemaFile)) ?? {};
  await writeFile(jsonSchemaFile, await format(JSON.stringify(schema), { ...options, parser: 'json' }));
  console.log(`wrote ${jsonSchemaFile}`);
}
