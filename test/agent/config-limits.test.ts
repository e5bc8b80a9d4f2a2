/**
 * Hostile config and payload files through the real CLI: an alias bomb, deep nesting, a file larger than any
 * config, an endless one (/dev/zero), thousands of unknown keys, and `decode` of a huge file and of endless
 * standard input. Each is refused as a config problem (exit 78, `--json` still JSON; `run` too) or TOO_LARGE,
 * before the input's size becomes the process's; problem location is linear in the number of problems.
 */
import t from 'tap';
import { openSync, closeSync } from 'node:fs';
import { truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCliCaptured, spawnMeterlink } from '../harness/cli.js';
import { tempDir } from '../harness/tmp.js';
import { waitFor } from '../harness/wait.js';

const base =
  'thing: apt-1\nmeters:\n  - { id: main, driver: modbus-tcp, host: 10.0.0.2, profile: eastron-sdm630 }\n';

// Nine levels of nine aliases each: 9^9 (387 million) nodes once expanded, from 400 bytes of text.
const bomb =
  base +
  'x:\n' +
  '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' +
  ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']
    .map((n, k) => {
      const prev = String.fromCharCode(97 + k);
      return `  ${n}: &${n} [${Array(9).fill(`*${prev}`).join(',')}]\n`;
    })
    .join('');

interface CheckJson {
  ok: boolean;
  problems: { code: string; line: number; field: string; message: string }[];
}

async function check(file: string) {
  const r = await runCliCaptured(['config', 'check', '--json', file]);
  return { code: r.code, json: JSON.parse(r.stdout) as CheckJson };
}

t.test('an alias bomb is one problem, exit 78 and JSON; `run` exits 78 too', async (t) => {
  const dir = await tempDir(t, 'meterlink-limits-');
  const file = join(dir, 'bomb.yaml');
  await writeFile(file, bomb);
  const r = await check(file);
  t.equal(r.code, 78);
  t.equal(r.json.ok, false);
  t.match(r.json.problems, [{ code: 'YAML_LIMIT', message: /aliases expand the document beyond 100000/ }]);
  t.ok((r.json.problems[0]?.line ?? 0) > 4, 'at the alias that crosses the bound');

  // The daemon checks its config in a worker thread: the same problem, the exit status systemd does not
  // restart on.
  const run = spawnMeterlink(['run', '--config', file]);
  t.teardown(() => run.kill('SIGKILL'));
  await run.exited();
  t.equal(run.child.exitCode, 78, run.output());
  t.match(run.output(), /YAML_LIMIT|aliases expand the document/);
});

t.test('deep nesting is refused before the parser recurses into it', async (t) => {
  const dir = await tempDir(t, 'meterlink-limits-');
  const flow = join(dir, 'flow.yaml');
  await writeFile(flow, `${base}x: ${'['.repeat(200_000)}${']'.repeat(200_000)}\n`);
  const r = await check(flow);
  t.equal(r.code, 78);
  t.match(r.json.problems, [{ code: 'YAML_LIMIT', message: /nest more than 64 deep/ }]);
  const block = join(dir, 'block.yaml');
  let text = base;
  for (let i = 0; i < 100; i++) text += `${' '.repeat(i)}k${i}:\n`;
  await writeFile(block, `${text}${' '.repeat(100)}v: 1\n`);
  const b = await check(block);
  t.equal(b.code, 78);
  t.match(b.json.problems, [{ code: 'YAML_LIMIT', message: /mappings and lists nest more than 64 deep/ }]);
});

t.test(
  'a file larger than any config is refused by its size, an endless one by a bounded read',
  async (t) => {
    const dir = await tempDir(t, 'meterlink-limits-');
    const huge = join(dir, 'huge.yaml');
    await writeFile(huge, base);
    // 8 GiB, sparse: reading it whole would take the machine's memory (and Node refuses > 2 GiB anyway).
    await truncate(huge, 8 * 1024 ** 3);
    const r = await check(huge);
    t.equal(r.code, 78);
    t.match(r.json.problems, [{ code: 'FILE_TOO_LARGE', line: 0, message: /more than the 1024 KiB/ }]);
    const endless = await check('/dev/zero');
    t.equal(endless.code, 78, '/dev/zero: read up to the bound, then refused');
    t.match(endless.json.problems, [{ code: 'FILE_TOO_LARGE' }]);
  },
);

t.test('unknown keys: problem location grows linearly with their number', async (t) => {
  const dir = await tempDir(t, 'meterlink-limits-');
  const write = async (n: number) => {
    let extra = '';
    for (let i = 0; i < n; i++) extra += `unknown_key_${i}: ${i}\n`;
    const file = join(dir, `keys-${n}.yaml`);
    await writeFile(file, base + extra);
    return file;
  };
  // CPU time of this process (not wall clock, which a busy machine stretches), the least of three runs.
  const cpuMs = async (file: string, n: number) => {
    let best = Infinity;
    for (let i = 0; i < 3; i++) {
      const before = process.cpuUsage();
      const r = await check(file);
      const used = process.cpuUsage(before);
      t.equal(r.json.problems.length, n, `${n} keys: each one reported`);
      best = Math.min(best, (used.user + used.system) / 1000);
    }
    return best;
  };
  const small = await write(2_000);
  const large = await write(32_000);
  await check(small); // compile the schema validator once, outside the measurement
  const a = await cpuMs(small, 2_000);
  const b = await cpuMs(large, 32_000);
  // Sixteen times the keys: about 16 times the work when linear, about 60 times for the quadratic location
  // this replaced (measured: 2k 0.35 s, 32k 21.6 s). 32 is the geometric middle.
  t.ok(
    b / a < 32,
    `32k keys take ${(b / a).toFixed(1)} × the CPU of 2k keys (${b.toFixed(0)} / ${a.toFixed(0)} ms)`,
  );
  const dup = join(dir, 'dup.yaml');
  await writeFile(dup, `${base}buffer: {}\nbuffer: {}\n`);
  const d = await check(dup);
  t.match(d.json.problems, [{ code: 'YAML_SYNTAX', line: 5, message: /keys must be unique/ }]);
});

t.test('decode: a huge file and endless standard input are refused as TOO_LARGE, unread', async (t) => {
  const dir = await tempDir(t, 'meterlink-limits-');
  const huge = join(dir, 'huge.cbor');
  await writeFile(huge, '');
  await truncate(huge, 200 * 1024 ** 2);
  const r = await runCliCaptured(['decode', huge, '--json']);
  t.equal(r.code, 1);
  t.match(JSON.parse(r.stdout), {
    valid: false,
    reason: 'TOO_LARGE',
    detail: /is 209715200 bytes; the limit/,
  });
  const plain = await runCliCaptured(['decode', huge]);
  t.match(plain.stderr, /REJECTED: TOO_LARGE/);

  const zero = openSync('/dev/zero', 'r');
  t.teardown(() => closeSync(zero));
  const cmd = spawnMeterlink(['decode', '-', '--json'], { stdio: [zero, 'pipe', 'pipe'] });
  t.teardown(() => cmd.kill('SIGKILL'));
  await waitFor(() => !cmd.running, { what: 'decode - to give up on endless input', timeout: 60_000 });
  t.equal(cmd.child.exitCode, 1);
  t.match(cmd.output(), /"reason":"TOO_LARGE"/);
});
