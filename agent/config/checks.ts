/**
 * Checks one key at a time cannot make: meters that collide with each other, profiles the drivers do not
 * know, and (for the daemon) the certificate files the cloud section names.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { listenProblem, tokenProblem } from '../dashboard/listen.js';
import { closest } from './suggest.js';
import { formatPath } from './locate.js';
import type { CloudConfig, MeterConfig } from './schema.js';
import type { SchemaProblem } from './validate.js';

const at = (i: number, m: MeterConfig) => `meters[${i}] (${m.id})`;

/** Duplicate ids, two meters on one address, and serial ports that two kinds of meter claim. */
export function checkMeters(meters: readonly (MeterConfig | undefined)[]): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  const ids = new Map<string, number>();
  const addresses = new Map<string, number>();
  const serialPorts = new Map<string, number>();
  meters.forEach((m, i) => {
    if (!m) return; // a meter the schema rejected has its own problems already
    const firstWithId = ids.get(m.id);
    if (firstWithId === undefined) ids.set(m.id, i);
    else
      problems.push({
        code: 'DUPLICATE_ID',
        path: ['meters', i, 'id'],
        message: `duplicate meter id ${JSON.stringify(m.id)}, already used by meters[${firstWithId}]`,
        fix: 'give every meter its own id; the id labels its samples',
      });

    if (m.driver === 'modbus-tcp') {
      const key = `${m.host}:${m.port}#${m.unit}`;
      const other = addresses.get(key);
      if (other === undefined) addresses.set(key, i);
      else
        problems.push({
          code: 'ADDRESS_CLASH',
          path: ['meters', i, 'unit'],
          message: `unit ${m.unit} at ${m.host}:${m.port} is already ${at(other, meters[other] as MeterConfig)}`,
          fix: 'each meter behind one host needs its own unit id',
        });
      return;
    }

    const other = serialPorts.get(m.port);
    if (other === undefined) {
      serialPorts.set(m.port, i);
      if (m.driver === 'modbus-rtu') addresses.set(`${m.port}#${m.unit}`, i);
      return;
    }
    const first = meters[other] as MeterConfig;
    if (
      first.driver === 'sml' ||
      m.driver === 'sml' ||
      first.driver === 'iec62056-21' ||
      m.driver === 'iec62056-21'
    ) {
      problems.push({
        code: 'PORT_CLASH',
        path: ['meters', i, 'port'],
        message: `${m.port} is already used by ${at(other, first)}: an optical read head serves one meter`,
        fix: 'check the device paths (ls -l /dev/serial/by-id/); each IR head is its own device',
      });
      return;
    }
    if (first.driver === 'dsmr' || m.driver === 'dsmr') {
      problems.push({
        code: 'PORT_CLASH',
        path: ['meters', i, 'port'],
        message:
          first.driver === 'dsmr' && m.driver === 'dsmr'
            ? `${m.port} is already the P1 port of ${at(other, first)}; a P1 port serves one meter`
            : `${m.port} is already used by ${at(other, first)}: a DSMR P1 port and a Modbus bus cannot share a serial port`,
        fix: 'check the device paths (ls -l /dev/serial/by-id/); the P1 cable and the RS-485 adapter are separate devices',
      });
      return;
    }
    if (first.driver !== 'modbus-rtu' || m.driver !== 'modbus-rtu') return;
    const key = `${m.port}#${m.unit}`;
    const sameUnit = addresses.get(key);
    if (sameUnit === undefined) addresses.set(key, i);
    else
      problems.push({
        code: 'ADDRESS_CLASH',
        path: ['meters', i, 'unit'],
        message: `unit ${m.unit} on ${m.port} is already ${at(sameUnit, meters[sameUnit] as MeterConfig)}; two meters on one bus cannot share a unit id`,
        fix: 'set a different Modbus address on one meter (its front panel or setup menu) and use it as unit',
      });
    for (const k of ['baud', 'parity', 'dataBits', 'stopBits'] as const) {
      if (m[k] !== first[k])
        problems.push({
          code: 'PORT_CLASH',
          path: ['meters', i, k],
          message: `${at(other, first)} on ${m.port} uses ${k} ${first[k]}; got ${m[k]}`,
          fix: 'every meter on one RS-485 bus must use the same baud, parity, dataBits and stopBits',
        });
    }
  });
  return problems;
}

/**
 * Duplicate ids among meters the schema rejected for other reasons (checkMeters covers the valid ones), so
 * a duplicated id is reported even while the meter has another problem.
 */
export function checkRawIds(rawMeters: unknown, bad: ReadonlySet<unknown>): SchemaProblem[] {
  if (!Array.isArray(rawMeters)) return [];
  const problems: SchemaProblem[] = [];
  const first = new Map<string, number>();
  rawMeters.forEach((m: unknown, i) => {
    const id = typeof m === 'object' && m !== null ? (m as { id?: unknown }).id : undefined;
    if (typeof id !== 'string') return;
    const seen = first.get(id);
    if (seen === undefined) first.set(id, i);
    else if (bad.has(i) || bad.has(seen))
      problems.push({
        code: 'DUPLICATE_ID',
        path: ['meters', i, 'id'],
        message: `duplicate meter id ${JSON.stringify(id)}, already used by meters[${seen}]`,
        fix: 'give every meter its own id; the id labels its samples',
      });
  });
  return problems;
}

/** What the drivers know about profiles; given to `loadConfig` so config does not guess. */
export interface ProfileCatalog {
  /** Built-in profile names (vendor-model). */
  readonly names: readonly string[];
  /** Problems in an inline register map, each with a path inside the map. */
  validate(profile: unknown): readonly { path: readonly (string | number)[] | string; message: string }[];
}

export function checkProfiles(
  meters: readonly (MeterConfig | undefined)[],
  catalog: ProfileCatalog,
): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  meters.forEach((m, i) => {
    if (!m || m.driver === 'dsmr' || m.driver === 'sml' || m.driver === 'iec62056-21') return;
    if (typeof m.profile === 'string') {
      if (catalog.names.includes(m.profile)) return;
      const guess = closest(m.profile, catalog.names);
      problems.push({
        code: 'BAD_PROFILE',
        path: ['meters', i, 'profile'],
        message: `no built-in profile ${JSON.stringify(m.profile)}`,
        fix: guess ? `did you mean ${guess}?` : `built-in profiles: ${catalog.names.join(', ')}`,
      });
      return;
    }
    for (const p of catalog.validate(m.profile)) {
      const inner = typeof p.path === 'string' ? p.path.split(/[.[\]]+/).filter(Boolean) : [...p.path];
      const sub = inner.map((s) => (typeof s === 'string' && /^[0-9]+$/.test(s) ? Number(s) : s));
      problems.push({
        code: 'BAD_PROFILE',
        path: ['meters', i, 'profile', ...sub],
        message: p.message,
      });
    }
  });
  return problems;
}

/**
 * The daemon's checks of `cloud:`: present, its files readable, and the private key not readable by group
 * or others (DESIGN §6: the agent refuses such a key).
 */
export async function checkCloudFiles(cloud: CloudConfig | undefined): Promise<SchemaProblem[]> {
  if (!cloud)
    return [
      {
        code: 'MISSING_KEY',
        path: ['cloud'],
        message: 'is required to run the agent',
        fix: 'run meterlink provision, which writes the cloud: section (endpoint, ca, cert, key)',
      },
    ];
  const problems: SchemaProblem[] = [];
  for (const k of ['ca', 'cert', 'key'] as const) {
    const file = cloud[k];
    const path = ['cloud', k];
    try {
      const st = await stat(file);
      if (!st.isFile()) {
        problems.push({
          code: 'CLOUD_FILE',
          path,
          message: `${file} is not a file`,
          fix: `point ${formatPath(path)} at the PEM file`,
        });
        continue;
      }
      await access(file, constants.R_OK);
      if (k === 'key' && (st.mode & 0o077) !== 0)
        problems.push({
          code: 'KEY_PERMISSIONS',
          path,
          message: `${file} can be read by group or others (mode ${(st.mode & 0o777).toString(8)}); the agent refuses such a key`,
          fix: `chmod 600 ${file}`,
        });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      problems.push(
        code === 'ENOENT'
          ? {
              code: 'CLOUD_FILE',
              path,
              message: `${file} does not exist`,
              fix:
                k === 'ca'
                  ? 'download AmazonRootCA1.pem from https://www.amazontrust.com/repository/'
                  : 'run meterlink provision, or correct the path',
            }
          : {
              code: 'CLOUD_FILE',
              path,
              message: `cannot read ${file} (${code ?? String(err)})`,
              fix: 'make it readable by the meterlink user',
            },
      );
    }
  }
  return problems;
}

/**
 * `dashboard.listen` off loopback needs `dashboard.token` (anyone on the network could read the meter); the
 * token itself follows the one rule `meterlink dashboard --token` follows too (listen.ts `tokenProblem`).
 */
export function checkDashboard(raw: unknown): SchemaProblem[] {
  if (typeof raw !== 'object' || raw === null) return [];
  const d = raw as { listen?: unknown; token?: unknown };
  if (typeof d.listen !== 'string') return [];
  const p = listenProblem(d.listen, typeof d.token === 'string' ? d.token : undefined);
  if (!p) return [];
  const onToken = typeof d.token === 'string' && tokenProblem(d.token) !== undefined;
  return [{ code: 'DASHBOARD_TOKEN', path: ['dashboard', onToken ? 'token' : 'listen'], ...p }];
}
