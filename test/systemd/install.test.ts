// install.sh / uninstall.sh in a throwaway root file system (--root): never the real machine.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../harness/cli.js';
import { tempDir } from '../harness/tmp.js';

const exec = promisify(execFile);
const install = join(repoRoot, 'systemd/install.sh');
const uninstall = join(repoRoot, 'systemd/uninstall.sh');

interface Run {
  code: number;
  out: string;
}
async function sh(script: string, args: string[]): Promise<Run> {
  try {
    const { stdout, stderr } = await exec('bash', [script, ...args], { timeout: 60_000 });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** Every path under `dir` with type, mode, owner and content hash: equal snapshots = nothing changed. */
function snapshot(dir: string): string[] {
  const rows: string[] = [];
  const walk = (rel: string) => {
    const abs = join(dir, rel);
    const st = lstatSync(abs);
    const mode = (st.mode & 0o7777).toString(8);
    let what = 'dir';
    if (st.isSymbolicLink()) what = `-> ${readlinkSync(abs)}`;
    else if (st.isFile()) what = createHash('sha256').update(readFileSync(abs)).digest('hex').slice(0, 16);
    rows.push(`${rel} ${mode} ${st.uid}:${st.gid} ${what}`);
    if (st.isDirectory()) for (const name of readdirSync(abs).sort()) walk(join(rel, name));
  };
  walk('.');
  // useradd keeps backups (passwd-) and a lock file; they are not part of the installed state.
  return rows.filter((r) => !/^etc\/(passwd-|group-|shadow-|gshadow-|\.pwd\.lock) /.test(r));
}

/** A minimal root: the user database with a dialout group, as on Debian. */
async function makeRoot(t: Test): Promise<string> {
  const root = await tempDir(t, 'ml-root-');
  mkdirSync(join(root, 'etc'));
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\ndialout:x:20:\n');
  writeFileSync(join(root, 'etc/shadow'), 'root:*:19000:0:99999:7:::\n', { mode: 0o640 });
  writeFileSync(join(root, 'etc/gshadow'), 'root:*::\ndialout:*::\n', { mode: 0o640 });
  return root;
}

/** A source tree like a built checkout: dist/ (a stand-in bundle), package files, the real systemd/ files. */
async function makeSource(t: Test): Promise<string> {
  const src = await tempDir(t, 'ml-src-');
  mkdirSync(join(src, 'dist/bundle'), { recursive: true });
  mkdirSync(join(src, 'systemd'));
  writeFileSync(
    join(src, 'dist/bundle/meterlink.js'),
    'console.log(JSON.stringify({ args: process.argv.slice(2), fd: process.env.METERLINK_NOTIFY_FD ?? null, ' +
      'nodeOptions: process.env.NODE_OPTIONS, arenas: process.env.MALLOC_ARENA_MAX, ' +
      'mmapThreshold: process.env.MALLOC_MMAP_THRESHOLD_, flags: process.execArgv }));\n',
  );
  writeFileSync(join(src, 'package.json'), '{"name":"meterlink","type":"module"}\n');
  writeFileSync(join(src, 'package-lock.json'), '{}\n');
  writeFileSync(join(src, 'README.md'), '# meterlink\n');
  for (const f of ['meterlink.service', 'notify-exec'])
    copyFileSync(join(repoRoot, 'systemd', f), join(src, 'systemd', f));
  chmodSync(join(src, 'systemd/notify-exec'), 0o755);
  return src;
}

t.test('both scripts are bash -n clean and explain themselves', async (t) => {
  for (const script of [install, uninstall]) {
    await exec('bash', ['-n', script]);
    const help = await sh(script, ['--help']);
    t.equal(help.code, 0);
    t.match(help.out, /Usage:.*\n[\s\S]*--root DIR[\s\S]*--dry-run[\s\S]*Example:/);
    const bad = await sh(script, ['--frobnicate']);
    t.equal(bad.code, 1);
    t.match(bad.out, /unknown option: --frobnicate/);
    const noRoot = await sh(script, ['--root', '/nonexistent/meterlink', '--dry-run']);
    t.match(noRoot.out, /no such directory/);
    const badPrefix = await sh(script, ['--prefix', '/usr', '--dry-run']);
    t.match(badPrefix.out, /must be an absolute path containing "meterlink"/);
  }
  const unbuilt = await sh(install, ['--source', await tempDir(t), '--dry-run']);
  t.match(unbuilt.out, /dist\/bundle\/meterlink\.js not found: build first with "npm ci && npm run build"/);
});

t.test('install, idempotent, then uninstall keeping data, then purge', async (t) => {
  const root = await makeRoot(t);
  const src = await makeSource(t);
  const common = ['--root', root, '--source', src, '--skip-deps', '--node', process.execPath];

  // --dry-run: says what it would do and changes nothing.
  const before = snapshot(root);
  const dry = await sh(install, [...common, '--dry-run']);
  t.equal(dry.code, 0, dry.out);
  t.match(dry.out, /would run: useradd --root \S+ --system --user-group --groups dialout/);
  t.match(dry.out, /would write: \S+\/etc\/systemd\/system\/meterlink\.service/);
  t.match(dry.out, /would run: systemctl --root=\S+ enable meterlink\.service/);
  t.same(snapshot(root), before, 'dry run touched nothing');

  const first = await sh(install, common);
  t.equal(first.code, 0, first.out);
  t.match(first.out, /Installed, not started: .*config\.yaml does not exist yet/);
  const passwd = readFileSync(join(root, 'etc/passwd'), 'utf8');
  const user = /^meterlink:x:(\d+):(\d+):[^:]*:\/var\/lib\/meterlink:\/usr\/sbin\/nologin$/m.exec(passwd);
  t.ok(user, `system user created: ${passwd}`);
  const uid = Number(user?.[1]);
  const gid = Number(user?.[2]);
  t.ok(uid < 1000, 'a system uid');
  t.match(readFileSync(join(root, 'etc/group'), 'utf8'), /^dialout:x:20:meterlink$/m);

  const st = (p: string) => statSync(join(root, p));
  t.match(st('etc/meterlink'), { uid: 0, gid }, '/etc/meterlink root:meterlink');
  t.equal(st('etc/meterlink').mode & 0o7777, 0o750);
  t.match(st('var/lib/meterlink'), { uid, gid });
  t.equal(st('var/lib/meterlink').mode & 0o7777, 0o750);
  t.equal(st('usr/bin/meterlink').mode & 0o7777, 0o755);
  t.equal(st('opt/meterlink/libexec/notify-exec').mode & 0o7777, 0o755);
  t.ok(existsSync(join(root, 'opt/meterlink/dist/bundle/meterlink.js')));
  t.equal(
    readFileSync(join(root, 'etc/systemd/system/meterlink.service'), 'utf8'),
    readFileSync(join(repoRoot, 'systemd/meterlink.service'), 'utf8'),
  );
  t.equal(
    readlinkSync(join(root, 'etc/systemd/system/multi-user.target.wants/meterlink.service')),
    '/etc/systemd/system/meterlink.service',
    'enabled',
  );
  t.match(
    readFileSync(join(root, 'etc/modules-load.d/meterlink.conf'), 'utf8'),
    /^usbserial$[\s\S]*^cdc_acm$/m,
  );

  // The wrapper: through notify-exec under systemd, node directly otherwise. Run it against the root.
  const wrapper = readFileSync(join(root, 'usr/bin/meterlink'), 'utf8');
  t.match(
    wrapper,
    `exec /opt/meterlink/libexec/notify-exec ${process.execPath} $flags /opt/meterlink/dist/bundle/meterlink.js "$@"`,
  );
  const rooted = join(root, 'wrapper-in-root');
  writeFileSync(rooted, wrapper.replaceAll('/opt/meterlink', join(root, 'opt/meterlink')), { mode: 0o755 });
  // `env -u`: the test runner adds its own NODE_OPTIONS to every child it spawns; the wrapper must see none.
  const direct = await exec('env', ['-u', 'NODE_OPTIONS', rooted, 'run', '--config', 'x y.yaml'], {
    env: { PATH: process.env.PATH },
  });
  // The unit's memory settings, taken from the unit file at install time, for commands run by hand too.
  const unitFile = readFileSync(join(root, 'etc/systemd/system/meterlink.service'), 'utf8');
  const unitNodeOptions = /^Environment="NODE_OPTIONS=(.*)"$/m.exec(unitFile)?.[1];
  t.match(unitNodeOptions, /--max-old-space-size=\d+/);
  const memory = {
    nodeOptions: unitNodeOptions,
    arenas: /^Environment=MALLOC_ARENA_MAX=(\d+)$/m.exec(unitFile)?.[1],
    mmapThreshold: /^Environment=MALLOC_MMAP_THRESHOLD_=(\d+)$/m.exec(unitFile)?.[1],
    // the unit's METERLINK_NODE_FLAGS, as separate words on node's command line
    flags: /^Environment="METERLINK_NODE_FLAGS=(.*)"$/m.exec(unitFile)?.[1]?.split(' '),
  };
  // and, for `run` only, its METERLINK_RUN_NODE_FLAGS after them
  const runFlags = /^Environment="METERLINK_RUN_NODE_FLAGS=(.*)"$/m.exec(unitFile)?.[1]?.split(' ') ?? [];
  t.equal(memory.arenas, '2');
  t.match(memory.mmapThreshold, /^\d+$/, "the unit fixes glibc's mmap threshold (its value: unit.test.ts)");
  t.ok(memory.flags?.includes('--optimize-for-size'));
  t.ok(runFlags.includes('--max-opt=1'));
  t.same(
    JSON.parse(direct.stdout),
    { args: ['run', '--config', 'x y.yaml'], fd: null, ...memory, flags: [...memory.flags!, ...runFlags] },
    'the daemon gets the run-only flags after the others',
  );
  const runOwn = await exec('env', ['-u', 'NODE_OPTIONS', rooted, 'run'], {
    env: { PATH: process.env.PATH, METERLINK_NODE_FLAGS: '--no-opt', METERLINK_RUN_NODE_FLAGS: '' },
  });
  t.same(JSON.parse(runOwn.stdout).flags, ['--no-opt'], "the caller's own (empty) run-only flags win too");
  const own = await exec(rooted, ['buffer'], {
    env: {
      PATH: process.env.PATH,
      NODE_OPTIONS: '--max-old-space-size=512',
      MALLOC_ARENA_MAX: '4',
      MALLOC_MMAP_THRESHOLD_: '131072',
      METERLINK_NODE_FLAGS: '--stack-size=900 --no-opt',
    },
  });
  const ownEnv = JSON.parse(own.stdout) as {
    nodeOptions: string;
    arenas: string;
    mmapThreshold: string;
    flags: string[];
  };
  t.match(
    ownEnv,
    { arenas: '4', mmapThreshold: '131072', nodeOptions: /--max-old-space-size=512/ },
    "the caller's own settings win",
  );
  t.same(ownEnv.flags, ['--stack-size=900', '--no-opt'], "the caller's own node flags replace the unit's");
  const none = await exec('env', ['-u', 'NODE_OPTIONS', rooted, 'read'], {
    env: { PATH: process.env.PATH, METERLINK_NODE_FLAGS: '' },
  });
  t.same(JSON.parse(none.stdout).flags, [], 'METERLINK_NODE_FLAGS= (empty) turns them off');
  t.notMatch(ownEnv.nodeOptions, /max-semi-space-size/);
  const viaNotify = await exec('env', ['-u', 'NODE_OPTIONS', rooted, 'status'], {
    env: { PATH: process.env.PATH, NOTIFY_SOCKET: join(root, 'nope') },
  });
  t.same(
    JSON.parse(viaNotify.stdout),
    { args: ['status'], fd: null, ...memory },
    'notify-exec soft-fails, runs the agent',
  );
  t.match(viaNotify.stderr, /cannot connect to NOTIFY_SOCKET/);

  // The operator provisions: config and a key with loose permissions appear; the next install fixes them.
  writeFileSync(join(root, 'etc/meterlink/config.yaml'), 'thing: t\n', { mode: 0o644 });
  writeFileSync(join(root, 'etc/meterlink/device.key'), 'KEY\n', { mode: 0o644 });
  const second = await sh(install, common);
  t.equal(second.code, 0, second.out);
  t.match(second.out, /exists, in group dialout/);
  t.match(second.out, /start: skipped \(--root\)/);
  t.notMatch(second.out, /Installed, not started/);
  t.match(st('etc/meterlink/device.key'), { uid, gid });
  t.equal(st('etc/meterlink/device.key').mode & 0o7777, 0o600, 'key 0600, owned by meterlink');
  t.match(st('etc/meterlink/config.yaml'), { uid: 0, gid });
  t.equal(st('etc/meterlink/config.yaml').mode & 0o7777, 0o640);

  // Idempotent: a third run changes nothing at all.
  const settled = snapshot(root);
  const third = await sh(install, common);
  t.equal(third.code, 0, third.out);
  t.same(snapshot(root), settled, 'third install changed nothing');
  t.equal(readFileSync(join(root, 'etc/passwd'), 'utf8').match(/^meterlink:/gm)?.length, 1, 'one user');

  // A user that exists but lost dialout gets it back.
  writeFileSync(
    join(root, 'etc/group'),
    readFileSync(join(root, 'etc/group'), 'utf8').replace(/^dialout:x:20:meterlink$/m, 'dialout:x:20:'),
  );
  const regroup = await sh(install, common);
  t.equal(regroup.code, 0, regroup.out);
  t.match(readFileSync(join(root, 'etc/group'), 'utf8'), /^dialout:x:20:meterlink$/m);

  // Uninstall: dry run first, then for real (twice), data kept.
  const uCommon = ['--root', root];
  const kept = snapshot(root);
  const uDry = await sh(uninstall, [...uCommon, '--dry-run']);
  t.equal(uDry.code, 0, uDry.out);
  t.match(uDry.out, /would run: systemctl --root=\S+ disable meterlink\.service/);
  t.match(uDry.out, /would run: rm -rf -- \S+\/opt\/meterlink/);
  t.same(snapshot(root), kept, 'dry run touched nothing');
  for (let i = 0; i < 2; i++) {
    const u = await sh(uninstall, uCommon);
    t.equal(u.code, 0, u.out);
    t.match(u.out, /Kept: .*\/var\/lib\/meterlink/);
    if (i === 1) t.match(u.out, /not installed/);
  }
  for (const gone of [
    'etc/systemd/system/meterlink.service',
    'etc/systemd/system/multi-user.target.wants/meterlink.service',
    'usr/bin/meterlink',
    'opt/meterlink',
    'etc/modules-load.d/meterlink.conf',
  ])
    t.notOk(existsSync(join(root, gone)), `${gone} removed`);
  t.equal(readFileSync(join(root, 'etc/meterlink/device.key'), 'utf8'), 'KEY\n', 'key kept');
  t.ok(existsSync(join(root, 'var/lib/meterlink')), 'buffer kept');
  t.match(readFileSync(join(root, 'etc/passwd'), 'utf8'), /^meterlink:/m, 'user kept');

  // --purge, twice: everything gone, the rest of the root untouched.
  for (let i = 0; i < 2; i++) {
    const p = await sh(uninstall, [...uCommon, '--purge']);
    t.equal(p.code, 0, p.out);
    t.match(p.out, /nothing of meterlink is left/);
  }
  t.notOk(existsSync(join(root, 'etc/meterlink')));
  t.notOk(existsSync(join(root, 'var/lib/meterlink')));
  t.notMatch(readFileSync(join(root, 'etc/passwd'), 'utf8'), /meterlink/);
  t.notMatch(readFileSync(join(root, 'etc/group'), 'utf8'), /meterlink/);
  t.match(readFileSync(join(root, 'etc/group'), 'utf8'), /^dialout:x:20:$/m);
});
