/**
 * The JSON Schema file for editors (`meterlink.schema.json`, shipped next to this module), made from
 * `ConfigSchema`. Regenerate with `npm run config:schema`; a test fails when the file is out of date.
 *
 * In an editor with the YAML language server, a config file opts in with its first line:
 * `# yaml-language-server: $schema=/usr/lib/node_modules/meterlink/dist/agent/config/meterlink.schema.json`
 */
import { fileURLToPath } from 'node:url';
import { ConfigSchema } from './schema.js';

export const jsonSchemaFile = fileURLToPath(new URL('./meterlink.schema.json', import.meta.url));

/** The editor schema as a plain JSON value (TypeBox's symbols, which JSON drops, are not part of it). */
export function configJsonSchema(): Record<string, unknown> {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    ...(JSON.parse(JSON.stringify(ConfigSchema)) as Record<string, unknown>),
  };
}
