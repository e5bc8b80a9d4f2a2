/**
 * The dashboard token rule, wherever a token can be given: `meterlink dashboard --token` refuses an empty or
 * short one before serving anything, and the config refuses the same in `dashboard.token` (exit 78).
 */
import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCliCaptured } from '../harness/cli.js';
import { tempDir } from '../harness/tmp.js';

const base =
  'thing: apt-1\nmeters:\n  - { id: main, driver: modbus-tcp, host: 10.0.0.2, profile: eastron-sdm630 }\n';

t.test('--token: empty or short is refused, on any address', async (t) => {
  const dir = await tempDir(t, 'meterlink-token-');
  const cfg = join(dir, 'config.yaml');
  await writeFile(cfg, base);
  for (const [listen, token, why] of [
    ['0.0.0.0:0', '', /--token: the token is empty; use at least 16 letters/],
    ['0.0.0.0:0', 'x', /--token: the token has 1 characters, fewer than 16/],
    ['127.0.0.1:0', 'short', /--token: the token has 5 characters/],
    ['127.0.0.1:0', 'sixteen chars ok', /other than letters, digits/],
  ] as const) {
    const r = await runCliCaptured(['dashboard', '--config', cfg, '--listen', listen, '--token', token]);
    t.equal(r.code, 2, `--listen ${listen} --token '${token}': usage error`);
    t.match(r.stderr, why);
    t.equal(r.stdout, '', 'nothing served, no URL printed');
  }
});

t.test('dashboard.token: empty or short is a config problem', async (t) => {
  const dir = await tempDir(t, 'meterlink-token-');
  for (const token of ["''", 'x']) {
    const cfg = join(dir, 'config.yaml');
    await writeFile(cfg, `${base}dashboard:\n  listen: 0.0.0.0:8080\n  token: ${token}\n`);
    const r = await runCliCaptured(['config', 'check', '--json', cfg]);
    t.equal(r.code, 78, `token: ${token}`);
    const out = JSON.parse(r.stdout) as { ok: boolean; problems: { field: string; code: string }[] };
    t.equal(out.ok, false);
    t.same(
      out.problems.map((p) => p.field),
      ['dashboard.token'],
    );
    const served = await runCliCaptured(['dashboard', '--config', cfg]);
    t.equal(served.code, 78, '`meterlink dashboard` refuses the config too');
  }
});
