/**
 * One reading of a process from /proc: resident memory split the way the kernel counts it, and CPU ticks.
 * `RssAnon` is the memory the process owns (heap, malloc arenas, stacks); `RssFile` is file pages mapped into
 * it (the node binary, shared libraries, and LevelDB's table files, which it reads through mmap): clean page
 * cache the kernel can drop at any time and re-read, so it does not bring a box nearer to the OOM killer.
 */
import { readFile } from 'node:fs/promises';

export interface ProcSample {
  t: number;
  rssKiB: number;
  anonKiB: number;
  fileKiB: number;
  cpuTicks: number;
}

const field = (status: string, name: string): number =>
  Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);

/** Rejects when the process has gone (killed, or exited between the caller's check and the read). */
export async function procSample(pid: number): Promise<ProcSample> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
  // Fields after "comm)": state is [0]; utime is field 14 overall → index 11 here, stime index 12.
  return {
    t: Date.now(),
    rssKiB: field(status, 'VmRSS'),
    anonKiB: field(status, 'RssAnon'),
    fileKiB: field(status, 'RssFile') + field(status, 'RssShmem'),
    cpuTicks: Number(stat[11]) + Number(stat[12]),
  };
}

export const mib = (kib: number): number => +(kib / 1024).toFixed(1);

/** Node flags as the wrapper's unquoted `$flags` gives them to node: split at whitespace, empty words dropped. */
export const flagWords = (text: string): string[] => text.split(/\s+/).filter(Boolean);

/**
 * The memory settings of systemd/meterlink.service, so the bench runs the agent as the box does: its
 * `Environment=` lines (NODE_OPTIONS heap limits, glibc's MALLOC_* settings), `MemoryMax=`/`MemoryHigh=` (bytes), and
 * `nodeFlagsFor(command)`: the V8 flags /usr/bin/meterlink puts on node's command line for that command (flags
 * NODE_OPTIONS refuses; systemd/install.sh), split into words: METERLINK_NODE_FLAGS for every command, then
 * METERLINK_RUN_NODE_FLAGS for `run`. A bench spawning node itself must pass them.
 */
export async function unitMemorySettings(unitFile: string) {
  const text = await readFile(unitFile, 'utf8');
  const env: Record<string, string> = {};
  for (const m of text.matchAll(/^Environment=(.*)$/gm)) {
    const v = m[1]!.trim().replace(/^"(.*)"$/, '$1');
    const eq = v.indexOf('=');
    if (eq > 0) env[v.slice(0, eq)] = v.slice(eq + 1);
  }
  const size = (key: string) => {
    const m = new RegExp(`^${key}=(\\d+)([KMG]?)$`, 'm').exec(text);
    if (!m) return undefined;
    return Number(m[1]) * ({ '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 } as Record<string, number>)[m[2]!]!;
  };
  const nodeFlagsFor = (command: string): string[] =>
    flagWords(
      `${env.METERLINK_NODE_FLAGS ?? ''} ${command === 'run' ? (env.METERLINK_RUN_NODE_FLAGS ?? '') : ''}`,
    );
  return { env, nodeFlagsFor, memoryMax: size('MemoryMax'), memoryHigh: size('MemoryHigh') };
}
