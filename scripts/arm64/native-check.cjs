// Loads the three native dependencies the way the agent does (their own loaders pick the prebuild for this
// platform), records every .node file process.dlopen is given, checks each is an ELF for this CPU, and uses
// each module once so a wrong or broken binary cannot pass by loading only:
//   classic-level            open a LevelDB, write a batch, read it back
//   @serialport/bindings-cpp open both ends of a socat pty pair, set the speed, write one end, read the other
//   aws-crt                  CRC-32 of a known string through the CRT's native checksums
// Prints one "native: <module> <path> <ELF machine>" line per binary and "native: ok", or exits 1.
// Usage: node scripts/arm64/native-check.cjs   (from the repo root; scripts/test-arm64.sh runs it under arm64)
/* eslint-disable @typescript-eslint/no-require-imports -- CommonJS on purpose: loaded with --require and plain node */
'use strict';
const { readFileSync, mkdtempSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join, relative } = require('node:path');

const loaded = [];
const dlopen = process.dlopen;
process.dlopen = function (module, filename, ...rest) {
  loaded.push(filename);
  return dlopen.call(this, module, filename, ...rest);
};

// e_machine at offset 18 of an ELF header.
const MACHINES = { 0x3e: 'x86-64', 0xb7: 'aarch64', 0x28: 'arm' };
const expected = { x64: 'x86-64', arm64: 'aarch64', arm: 'arm' }[process.arch];

function elfMachine(file) {
  const b = readFileSync(file).subarray(0, 20);
  if (b.readUInt32BE(0) !== 0x7f454c46) return 'not-elf';
  return MACHINES[b.readUInt16LE(18)] ?? `machine-0x${b.readUInt16LE(18).toString(16)}`;
}

async function main() {
  const failures = [];
  const check = async (name, use) => {
    const before = loaded.length;
    try {
      const detail = await use();
      const files = loaded.slice(before);
      if (files.length === 0) failures.push(`${name}: no .node file was loaded`);
      for (const f of files) {
        const m = elfMachine(f);
        console.log(`native: ${name} ${relative(process.cwd(), f)} ${m} (${detail})`);
        if (m !== expected)
          failures.push(`${name}: ${f} is ${m}, this node is ${process.arch} (${expected})`);
        if (!f.includes(`${join('node_modules', '')}`))
          failures.push(`${name}: ${f} is not under node_modules`);
      }
    } catch (e) {
      failures.push(`${name}: ${e && e.stack ? e.stack : e}`);
    }
  };

  await check('classic-level', async () => {
    const { ClassicLevel } = require('classic-level');
    const dir = mkdtempSync(join(tmpdir(), 'meterlink-native-'));
    try {
      const db = new ClassicLevel(join(dir, 'db'), { valueEncoding: 'json' });
      await db.open();
      await db.batch([
        { type: 'put', key: 'a', value: { kwh: 1.5 } },
        { type: 'put', key: 'b', value: { kwh: 2.5 } },
      ]);
      const got = await db.get('b');
      await db.close();
      if (!got || got.kwh !== 2.5) throw new Error(`read back ${JSON.stringify(got)}`);
      return 'LevelDB batch written and read back';
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  await check('@serialport/bindings-cpp', async () => {
    // Not list(): on Linux it runs udevadm (a separate program; absent on a bare CI machine) and uses no native
    // code. open() is the binding's C++ (open, termios, flock), the poller is its uv_poll, update() sets the
    // speed with ioctls: both ends of a socat pty pair, bytes written on one end are read on the other.
    const { autoDetect } = require('@serialport/bindings-cpp');
    const { spawn } = require('node:child_process');
    const { existsSync } = require('node:fs');
    const dir = mkdtempSync(join(tmpdir(), 'meterlink-native-pty-'));
    const [a, b] = [join(dir, 'a'), join(dir, 'b')];
    const socat = spawn('socat', [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], {
      stdio: 'ignore',
    });
    try {
      for (const end = Date.now() + 30_000; !(existsSync(a) && existsSync(b));) {
        if (socat.exitCode !== null || Date.now() > end) throw new Error('socat made no pty pair');
        await new Promise((r) => setTimeout(r, 20));
      }
      const binding = autoDetect();
      const pa = await binding.open({ path: a, baudRate: 9600 });
      const pb = await binding.open({ path: b, baudRate: 9600 });
      await pa.update({ baudRate: 19200 });
      const msg = Buffer.from('/ISK5MT174-0001\r\n');
      await pa.write(msg);
      const got = Buffer.alloc(msg.length);
      let n = 0;
      while (n < msg.length) n += (await pb.read(got, n, msg.length - n)).bytesRead;
      await pa.close();
      await pb.close();
      if (!got.equals(msg)) throw new Error(`read back ${JSON.stringify(got.toString())}`);
      return `pty pair opened, 19200 baud set, ${msg.length} bytes written and read back`;
    } finally {
      socat.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  await check('aws-crt', async () => {
    const crt = require('aws-crt');
    const crc = crt.checksums.crc32('123456789');
    // The CRC-32 check value of "123456789" (IEEE 802.3).
    if (crc !== 0xcbf43926) throw new Error(`crc32 gave 0x${crc.toString(16)}`);
    return 'crc32("123456789") = 0xcbf43926';
  });

  console.log(
    `native: node ${process.version} ${process.platform}-${process.arch}, execPath ${process.execPath}`,
  );
  if (failures.length) {
    for (const f of failures) console.error(`native: FAIL ${f}`);
    process.exit(1);
  }
  console.log('native: ok');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
