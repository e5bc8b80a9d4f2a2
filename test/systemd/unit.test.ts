// The service unit passes `systemd-analyze verify` and the hardening target of DESIGN §6.
import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../harness/cli.js';
import { tempDir } from '../harness/tmp.js';

const run = promisify(execFile);
const unitPath = join(repoRoot, 'systemd/meterlink.service');
const unitText = readFileSync(unitPath, 'utf8');
const analyze = '/usr/bin/systemd-analyze';
const maxExposure = 1.5;

/** Active `Key=value` lines (comments dropped), in order. */
function settings(text: string): [string, string][] {
  return text
    .split('\n')
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as [string, string]);
}
const get = (key: string) =>
  settings(unitText)
    .filter(([k]) => k === key)
    .map(([, v]) => v);

t.test('systemd-analyze verify passes', async (t) => {
  // verify checks that ExecStart's program exists, and /usr/bin/meterlink is only there once install.sh has
  // run. So verify a temp copy whose ExecStart points at /usr/bin/env; everything else is the shipped unit.
  const dir = await tempDir(t);
  const copy = join(dir, 'meterlink.service');
  const patched = unitText.replace(/^ExecStart=\/usr\/bin\/meterlink /m, 'ExecStart=/usr/bin/env ');
  t.not(patched, unitText, 'ExecStart was replaced');
  writeFileSync(copy, patched);
  const { stdout, stderr } = await run(analyze, ['verify', copy]);
  t.equal(`${stdout}${stderr}`.trim(), '', 'no warnings');
});

t.test(`systemd-analyze security --offline=true: exposure ≤ ${maxExposure}`, async (t) => {
  // --threshold makes the tool itself exit non-zero above 15 (its integer scale, tenths of the printed one).
  const { stdout } = await run(analyze, [
    'security',
    '--offline=true',
    `--threshold=${Math.round(maxExposure * 10)}`,
    '--no-pager',
    unitPath,
  ]);
  const m = /Overall exposure level for meterlink\.service: (\d+\.\d)/.exec(stdout);
  t.ok(m, 'overall exposure line present');
  const exposure = Number(m?.[1]);
  t.comment(`systemd-analyze security --offline=true systemd/meterlink.service → exposure ${exposure}`);
  t.ok(exposure <= maxExposure, `exposure ${exposure} ≤ ${maxExposure}`);
  t.notMatch(stdout, /✗ (NoNewPrivileges|ProtectSystem|CapabilityBoundingSet|SystemCallFilter)/);
});

t.test('the unit keeps the settings the product depends on', async (t) => {
  t.same(get('Type'), ['notify']);
  t.same(get('NotifyAccess'), ['main'], 'notify-exec makes the main PID the sender');
  t.same(get('ExecStart'), ['/usr/bin/meterlink run --config /etc/meterlink/config.yaml']);
  t.same(get('Restart'), ['on-failure']);
  t.same(get('RestartPreventExitStatus'), ['78'], 'ExitCode.badConfig is never restarted');
  t.same(get('TimeoutStopSec'), ['15']);
  t.equal(get('WatchdogSec').length, 1);
  t.same(get('User'), ['meterlink']);
  t.same(get('SupplementaryGroups'), ['dialout']);
  t.same(get('StateDirectory'), ['meterlink']);
  t.same(get('ConfigurationDirectory'), ['meterlink']);
  t.same(get('RuntimeDirectory'), ['meterlink']);
  t.same(get('DevicePolicy'), ['closed']);
  t.same(get('DeviceAllow'), ['char-ttyUSB rw', 'char-ttyACM rw', 'char-ttyAMA rw', 'char-ttyS rw']);
  // These two break the box (DESIGN §6): dialout is mapped away, V8's JIT cannot allocate code pages.
  t.same(get('PrivateUsers'), [], 'no PrivateUsers=');
  t.same(get('MemoryDenyWriteExecute'), [], 'no MemoryDenyWriteExecute=');
  const { ExitCode } = await import('../../agent/cli.js');
  t.equal(ExitCode.badConfig, 78);
});

t.test('memory: MemoryHigh < MemoryMax, and the Node heap limits fit well inside them', async (t) => {
  const bytes = (v: string | undefined) => {
    const m = /^(\d+)([KMG])$/.exec(v ?? '');
    return m ? Number(m[1]) * { K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2] as 'K' | 'M' | 'G'] : NaN;
  };
  const max = bytes(get('MemoryMax')[0]);
  const high = bytes(get('MemoryHigh')[0]);
  t.ok(max > 0 && max <= 384 * 1024 ** 2, `MemoryMax ${get('MemoryMax')[0]} set, ≤ 384M (a 1 GB Pi)`);
  t.ok(high > 0 && high < max, `MemoryHigh ${get('MemoryHigh')[0]} below MemoryMax`);
  const env = get('Environment').map((v) => v.replace(/^"(.*)"$/, '$1'));
  const nodeOptions = env.find((v) => v.startsWith('NODE_OPTIONS='));
  t.ok(nodeOptions, 'NODE_OPTIONS set');
  const oldSpace = Number(/--max-old-space-size=(\d+)/.exec(nodeOptions ?? '')?.[1]);
  const semi = Number(/--max-semi-space-size=(\d+)/.exec(nodeOptions ?? '')?.[1]);
  // V8 keeps old space + 3 semi-spaces; the rest of MemoryHigh is native (LevelDB, aws-crt, OpenSSL, code).
  t.ok(oldSpace > 0 && semi > 0, 'old space and semi-space capped');
  t.ok((oldSpace + 3 * semi) * 1024 ** 2 <= high / 2, 'the heap is at most half of MemoryHigh');
  t.ok(env.includes('MALLOC_ARENA_MAX=2'), 'glibc malloc arenas capped');
  // A fixed threshold (which also stops glibc raising it): blocks of 16 KiB and more are mmapped, and returned
  // to the kernel when freed, instead of leaving free holes resident inside the heap.
  t.ok(env.includes('MALLOC_MMAP_THRESHOLD_=16384'), "glibc's mmap threshold fixed at 16 KiB");
  // --v8-pool-size=1 in NODE_OPTIONS: the agent's process runs fewer threads (V8's workers: 1, not 4).
  const threads = async (nodeOptions: string) =>
    Number(
      (
        await run(
          process.execPath,
          ['-e', 'process.stdout.write(String(require("fs").readdirSync("/proc/self/task").length))'],
          {
            env: { ...process.env, NODE_OPTIONS: nodeOptions },
          },
        )
      ).stdout,
    );
  const [withUnit, without] = [await threads(nodeOptions!.slice('NODE_OPTIONS='.length)), await threads('')];
  t.equal(without - withUnit, 3, `V8 worker threads 4 → 1 (${without} → ${withUnit} threads)`);
  // The V8 flags /usr/bin/meterlink puts on node's command line: this node must accept every one of them (a
  // misspelt flag stops node before the agent starts: the unit would restart forever), and each is one
  // NODE_OPTIONS refuses (else it belongs in NODE_OPTIONS, which commands run by hand inherit as well).
  const unitVar = (name: string) =>
    (env.find((v) => v.startsWith(`${name}=`)) ?? '').split('=').slice(1).join('=');
  const everyCommand = unitVar('METERLINK_NODE_FLAGS');
  const daemonOnly = unitVar('METERLINK_RUN_NODE_FLAGS');
  t.match(everyCommand, /--optimize-for-size/, 'V8 grows its heap conservatively');
  t.match(daemonOnly, /(^| )--max-opt=1( |$)/, 'no TurboFan: its code and zones stay out of the steady RSS');
  t.notMatch(everyCommand, /--max-opt/, 'commands run by hand (buffer export) keep TurboFan');
  const flags = `${everyCommand} ${daemonOnly}`.trim();
  // (NODE_OPTIONS emptied: the test runner puts its own loader in it for every child.)
  const accepted = await run(process.execPath, [...flags.split(/\s+/), '-e', 'process.stdout.write("ok")'], {
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  t.same([accepted.stdout, accepted.stderr], ['ok', ''], `node ${flags} starts clean`);
  for (const flag of flags.split(/\s+/)) {
    const refused = await run(process.execPath, ['-e', '0'], {
      env: { ...process.env, NODE_OPTIONS: flag },
    }).then(
      () => '',
      (err: { stderr?: string }) => err.stderr ?? '',
    );
    t.match(refused, /not allowed in NODE_OPTIONS/, `${flag} is refused in NODE_OPTIONS`);
  }
});
