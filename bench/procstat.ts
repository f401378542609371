/** What Linux says about a process: CPU time (utime + stime) and resident memory, from /proc. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

let ticks = 100;
try {
  ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  /* 100 on every Linux we know */
}

export interface ProcSample {
  /** utime + stime of the process (all its threads), ms. Resolution 1000 / CLK_TCK ms. */
  cpuMs: number;
  rssMB: number;
  /** Peak resident set size since the process started. */
  hwmMB: number;
  threads: number;
}

export function sample(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name "(…)", which may itself hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return {
    cpuMs: ((utime + stime) * 1000) / ticks,
    rssMB: kb('VmRSS') / 1024,
    hwmMB: kb('VmHWM') / 1024,
    threads: Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? 0),
  };
}

/** The soft limit of open files of this process (children inherit it). */
export function openFilesLimit(): number {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
    return m?.[1] === 'unlimited' ? Infinity : Number(m?.[1] ?? 1024);
  } catch {
    return 1024;
  }
}

export function machine(): { cpus: number; model: string; memGB: number; node: string; kernel: string } {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    model: cpus[0]?.model ?? '?',
    memGB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    kernel: os.release(),
  };
}

/** CPU time of the whole machine so far, ms: busy (user + nice + system) and softirq, from /proc/stat. */
export function machineCpu(): { busyMs: number; softirqMs: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const [user = 0, nice = 0, system = 0, , , , softirq = 0] = line.split(/\s+/).slice(1).map(Number);
  return { busyMs: ((user + nice + system) * 1000) / ticks, softirqMs: (softirq * 1000) / ticks };
}
