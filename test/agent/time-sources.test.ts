import t from 'tap';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createClockKeeper } from '../../agent/time/clock.js';
import {
  createTimeSource,
  describeKernel,
  detectTimeDaemon,
  fileSource,
  kernelSource,
  kernelSynced,
  parseKernelLine,
  probeKernel,
  probeKernelSync,
  STA_NANO,
  STA_UNSYNC,
  TIME_ERROR,
  trustSource,
  unsyncedCause,
} from '../../agent/time/sources.js';
import { tempDir } from '../harness/tmp.js';
import { waitFor } from '../harness/wait.js';

t.test(
  'kernel probe against this machine: adjtimex answers, and its fields agree with each other',
  async (t) => {
    const k = probeKernelSync();
    t.ok(Number.isInteger(k.status) && k.status >= 0, `status 0x${k.status.toString(16)}`);
    t.ok(k.state >= 0 && k.state <= TIME_ERROR, `clock state ${k.state}`);
    t.ok(k.maxErrorUs >= 0, `maxerror ${k.maxErrorUs} µs`);
    if (k.status & STA_UNSYNC) t.equal(k.state, TIME_ERROR, 'STA_UNSYNC set: the kernel returns TIME_ERROR');
    t.equal(kernelSynced(k), !(k.status & STA_UNSYNC) && k.maxErrorUs < 16_000_000);
    t.comment(`this machine: ${describeKernel(k, detectTimeDaemon())}`);
    const again = await probeKernel();
    t.equal(again.status & STA_UNSYNC, k.status & STA_UNSYNC, 'the asynchronous probe reads the same state');
    // Cross-check with a second, independent reader of the same syscall where python3 is on the box.
    let py: string | undefined;
    try {
      py = execFileSync(
        'python3',
        [
          '-c',
          'import ctypes,ctypes.util\n' +
            'class T(ctypes.Structure): _fields_=[("modes",ctypes.c_uint),("offset",ctypes.c_long),("freq",ctypes.c_long),("maxerror",ctypes.c_long),("esterror",ctypes.c_long),("status",ctypes.c_int),("pad",ctypes.c_char*400)]\n' +
            'x=T(); r=ctypes.CDLL(ctypes.util.find_library("c")).adjtimex(ctypes.byref(x)); print(r, x.status)',
        ],
        { encoding: 'utf8' },
      ).trim();
    } catch {
      t.comment('python3 not on this box: no second reader to cross-check with');
    }
    if (py !== undefined) {
      const [r, status] = py.split(' ').map(Number) as [number, number];
      t.equal(status & STA_UNSYNC, k.status & STA_UNSYNC, `python3 ctypes adjtimex agrees (${py})`);
      t.equal(r === TIME_ERROR, k.state === TIME_ERROR);
    }
  },
);

t.test('probe output parsing and descriptions', async (t) => {
  t.same(parseKernelLine('0 8193 12000 500 250000\n'), {
    state: 0,
    status: 8193,
    maxErrorUs: 12000,
    estErrorUs: 500,
    offsetUs: 250, // STA_NANO: the offset is in ns
  });
  t.equal(8193 & STA_NANO, STA_NANO);
  t.throws(() => parseKernelLine('garbage'), /unexpected adjtimex probe output/);
  const synced = parseKernelLine('0 1 12000 500 -3000');
  t.ok(kernelSynced(synced));
  t.match(
    describeKernel(synced, 'chronyd'),
    /^kernel \(adjtimex, chronyd running\): synchronised, max error 12 ms/,
  );
  const unsync = parseKernelLine('5 64 16000000 16000000 0');
  t.notOk(kernelSynced(unsync));
  t.notOk(
    kernelSynced(parseKernelLine('0 1 16000000 0 0')),
    'maxerror at the kernel limit is not synchronised',
  );
  t.match(describeKernel(unsync, undefined), /NOT synchronised .*no time daemon is running: install chrony/);
  t.match(unsyncedCause('chronyd'), /chronyd runs but has not synchronised yet: check the network .*UDP 123/);
  t.match(unsyncedCause('gpsd'), /pair it with chrony/);
});

t.test('time daemon detection reads /proc/<pid>/comm', async (t) => {
  const proc = await tempDir(t, 'meterlink-proc-');
  const comm = async (pid: string, name: string) => {
    await mkdir(join(proc, pid), { recursive: true });
    await writeFile(join(proc, pid, 'comm'), `${name}\n`);
  };
  await comm('1', 'systemd');
  await mkdir(join(proc, 'self'));
  await mkdir(join(proc, '5')); // a process that exited: no comm
  t.equal(detectTimeDaemon(proc), undefined);
  await comm('40', 'gpsd');
  t.equal(detectTimeDaemon(proc), 'gpsd');
  await comm('41', 'chronyd');
  t.equal(detectTimeDaemon(proc), 'chronyd', 'the daemon that disciplines the clock wins over gpsd');
  await comm('7', 'systemd-timesyn');
  t.match(detectTimeDaemon(proc), /chronyd|systemd-timesyncd/);
  t.equal(detectTimeDaemon(join(proc, 'missing')), undefined);
  const here = detectTimeDaemon();
  t.comment(`time daemon on this machine: ${here ?? 'none'}`);
  t.ok(here === undefined || typeof here === 'string');
});

t.test('kernel source refreshes in the background (a real child process as the probe)', async (t) => {
  const dir = await tempDir(t, 'meterlink-probe-');
  const line = join(dir, 'line');
  const probe = join(dir, 'probe');
  await writeFile(line, '5 64 16000000 16000000 0\n');
  await writeFile(
    probe,
    `#!/bin/sh\n[ -f ${dir}/fail ] && { echo "adjtimex: Operation not permitted" >&2; exit 2; }\ncat ${line}\n`,
  );
  await chmod(probe, 0o755);
  const running: { daemon?: string } = {};
  const src = kernelSource({
    perl: probe,
    unsyncedEveryMs: 0,
    syncedEveryMs: 0,
    daemon: () => running.daemon,
  });
  t.equal(src.name, 'kernel');
  t.notOk(src.read().synced);
  t.match(src.read().detail, /no time daemon is running/);
  running.daemon = 'chronyd';
  await writeFile(line, '0 1 8000 400 0\n');
  await waitFor(() => src.read().synced, {
    what: 'the source to see the kernel synchronised',
    timeout: 10_000,
  });
  t.match(src.read().detail, /^kernel \(adjtimex, chronyd running\): synchronised, max error 8\.0 ms/);
  await writeFile(join(dir, 'fail'), '');
  await waitFor(() => /probe failed/.test(src.read().detail), {
    what: 'probe failure reported',
    timeout: 10_000,
  });
  t.match(src.read().detail, /Operation not permitted/);
  t.ok(src.read().synced, 'a failing probe keeps the last answer');
  await rm(join(dir, 'fail'));
  await writeFile(line, 'not a timex line\n');
  await waitFor(() => /unexpected adjtimex probe output/.test(src.read().detail), {
    what: 'bad output reported',
    timeout: 10_000,
  });
});

t.test('kernel source cannot run: kernel throws, auto falls back to the timesyncd file', async (t) => {
  t.throws(() => kernelSource({ perl: '/nonexistent/perl' }), /perl not found/);
  t.throws(
    () => kernelSource({ arch: 'mips' as NodeJS.Architecture }),
    /no adjtimex syscall number known for mips/,
  );
  t.throws(() => kernelSource({ perl: '/bin/false' }), /adjtimex probe failed/);
  const auto = createTimeSource({ source: 'auto' }, { perl: '/nonexistent/perl' });
  t.equal(auto.name, 'file');
  t.match(
    auto.why,
    /auto: kernel probe unavailable \(.*perl not found.*\), using the systemd-timesyncd file/,
  );
  t.throws(() => createTimeSource({ source: 'kernel' }, { perl: '/nonexistent/perl' }), /not found/);
});

t.test('file, trust and the choice auto makes', async (t) => {
  const dir = await tempDir(t, 'meterlink-sync-');
  const f = join(dir, 'synchronized');
  const file = fileSource(f);
  t.notOk(file.read().synced);
  t.match(file.read().detail, /does not exist .*use time.source: kernel/);
  await writeFile(f, '');
  t.ok(file.read().synced);
  t.match(file.read().detail, /exists \(synchronised\)/);
  t.ok(trustSource().read().synced);
  t.equal(createTimeSource({ source: 'trust' }).name, 'trust');
  t.equal(createTimeSource({ source: 'file', syncFile: f }).name, 'file');
  t.equal(
    createTimeSource({ source: 'file' }).read().detail.includes('/run/systemd/timesync/synchronized'),
    true,
  );
  const explicit = createTimeSource({ source: 'auto', syncFile: f });
  t.equal(explicit.name, 'file', 'time.syncFile set: auto uses it');
  t.equal(explicit.why, 'auto: time.syncFile is set');
  const auto = createTimeSource({ source: 'auto' });
  t.equal(auto.name, 'kernel', 'on this machine auto picks the kernel (perl and adjtimex are here)');
  t.comment(`auto here: ${auto.why}; ${auto.read().detail}`);
  const kernel = createTimeSource({ source: 'kernel' });
  t.equal(kernel.read().synced, kernelSynced(probeKernelSync()));
});

t.test('the clock keeper reports which source decided and for how long it has been unsynced', async (t) => {
  let mono = 1_000;
  let synced = false;
  const clock = createClockKeeper({
    source: { name: 'kernel', why: 'test', read: () => ({ synced, detail: synced ? 'yes' : 'no daemon' }) },
    monoNow: () => mono,
    wallNow: () => 1_750_000_000_000 + mono,
    bootId: 'b',
  });
  t.match(clock.state(), { synced: false, source: 'kernel', detail: 'no daemon', unsyncedForMs: 0 });
  mono += 5_000;
  clock.check();
  t.equal(clock.state().unsyncedForMs, 5_000);
  synced = true;
  clock.check();
  t.match(clock.state(), { synced: true, detail: 'yes', unsyncedForMs: 0 });
});

t.test(
  'kernel source probes every second while unsynchronised, every 10 s after 5 min of that',
  async (t) => {
    const dir = await tempDir(t, 'meterlink-probe-');
    const count = join(dir, 'count');
    const probe = join(dir, 'probe');
    await writeFile(count, '');
    // Each call appends a line and reports its number in maxerror (15 s + n ms), still unsynchronised.
    await writeFile(
      probe,
      `#!/bin/sh\necho x >> ${count}\nn=$(wc -l < ${count})\necho "5 64 $((15000000 + n * 1000)) 0 0"\n`,
    );
    await chmod(probe, 0o755);
    let mono = 0;
    const src = kernelSource({ perl: probe, monoNow: () => mono, daemon: () => undefined });
    const probes = async () => (await readFile(count, 'utf8')).split('\n').length - 1;
    t.match(src.read().detail, /max error 15001 ms/);
    mono = 999;
    src.read();
    t.equal(await probes(), 1, 'not again within a second');
    mono = 1_000;
    src.read();
    await waitFor(() => /max error 15002 ms/.test(src.read().detail), {
      what: 'second probe',
      timeout: 10_000,
    });
    mono = 301_000; // 5 min unsynchronised
    src.read();
    await waitFor(() => /max error 15003 ms/.test(src.read().detail), {
      what: 'third probe',
      timeout: 10_000,
    });
    mono = 302_000;
    src.read();
    mono = 310_000;
    src.read();
    t.equal(await probes(), 3, 'backed off: no probe 1 s or 9 s later');
    mono = 311_000;
    src.read();
    await waitFor(() => /max error 15004 ms/.test(src.read().detail), {
      what: 'probe 10 s later',
      timeout: 10_000,
    });
  },
);
