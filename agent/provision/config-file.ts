/**
 * Writes the `thing` and `cloud:` part of the YAML config and leaves everything else — other keys, their
 * order, every comment — as the installer wrote it (yaml's Document API edits nodes in place). The file is
 * replaced atomically, so the agent never reads a half-written config.
 */
import { stat } from 'node:fs/promises';
import { Document, isMap, parseDocument } from 'yaml';
import { ProvisionError } from './errors.js';
import { readIfExists, writeFileAtomic } from './fs-util.js';

export interface CloudSettings {
  endpoint: string;
  port: number;
  ca: string;
  cert: string;
  key: string;
}

export interface ConfigUpdate {
  thing: string;
  cloud: CloudSettings;
}

// yaml writes a comment as "#" + text, so each line starts with a space.
const NEW_FILE_HEADER =
  ' meterlink configuration (DESIGN §8). "thing" and "cloud" were written by meterlink provision;\n' +
  ' add your meters under "meters:" (meterlink scan finds Modbus meters on an RS-485 bus).';

function parse(path: string, text: string): Document {
  const doc = parseDocument(text, { keepSourceTokens: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const line = e?.linePos?.[0]?.line;
    throw new ProvisionError(
      'CONFIG_INVALID',
      `${path}${line === undefined ? '' : `:${line}`} is not valid YAML (${e?.message.split('\n')[0] ?? ''}): ` +
        'fix it, then run this again',
      { path, line },
    );
  }
  if (doc.contents !== null && !isMap(doc.contents))
    throw new ProvisionError('CONFIG_INVALID', `${path} must be a YAML mapping (key: value lines)`, { path });
  return doc;
}

/** The thing/cloud values the config holds now (whatever is there), for checks and idempotency. */
export async function readProvisioned(
  path: string,
): Promise<{ thing?: unknown; cloud?: Partial<Record<keyof CloudSettings, unknown>> } | undefined> {
  const text = await readIfExists(path);
  if (text === undefined) return undefined;
  const js = (parse(path, text).toJS() ?? {}) as Record<string, unknown>;
  const cloud = js.cloud;
  return {
    thing: js.thing,
    ...(cloud && typeof cloud === 'object' ? { cloud: cloud as Record<string, unknown> } : {}),
  };
}

/** Applies `update`; returns false (and writes nothing) when the file already says exactly that. */
export async function updateConfigFile(
  path: string,
  update: ConfigUpdate,
  opts: { dryRun?: boolean } = {},
): Promise<boolean> {
  const text = await readIfExists(path);
  const doc = text === undefined ? new Document({}) : parse(path, text);
  if (text === undefined) doc.commentBefore = NEW_FILE_HEADER;
  if (doc.contents === null) doc.contents = doc.createNode({}) as never;

  let changed = text === undefined;
  const set = (keyPath: string[], value: string | number) => {
    if (doc.getIn(keyPath) === value) return;
    changed = true;
    doc.setIn(keyPath, value);
  };
  set(['thing'], update.thing);
  if (!isMap(doc.get('cloud', true))) {
    changed = true;
    doc.set('cloud', doc.createNode({}));
  }
  for (const k of ['endpoint', 'port', 'ca', 'cert', 'key'] as const) set(['cloud', k], update.cloud[k]);
  if (!changed || opts.dryRun) return changed;
  // Keep the installer's mode (and the file's owner is root's business, not ours); new files 0644.
  const mode = text === undefined ? 0o644 : (await stat(path)).mode & 0o777;
  await writeFileAtomic(path, doc.toString(), { mode });
  return true;
}
