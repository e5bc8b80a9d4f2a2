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
