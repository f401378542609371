/**
 * What Linux says about a process and its descendants: CPU time (utime + stime) and resident
 * memory, from /proc. Every figure of "the adapter" is taken over its process tree, so that a
 * child it starts is not left out (one process: the tree is the process itself).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
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

/** The process and all its descendants, the root first. Processes that end meanwhile are left out. */
export function processTree(root: number): number[] {
  const children = childrenFiles(root) ? (pid: number) => childrenFiles(pid) ?? [] : parentMap();
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...children(out[i] as number));
  return out;
}

/**
 * /proc/<pid>/task/<tid>/children (the children each thread made); null where the kernel has no
 * CONFIG_PROC_CHILDREN (the file does not exist) or the process is gone.
 */
function childrenFiles(pid: number): number[] | null {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  const out: number[] = [];
  for (const tid of tids) {
    try {
      out.push(...readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
    } catch {
      return null;
    }
  }
  return out;
}

/**
 * Without children files: every process's parent, from /proc/<pid>/stat of all processes (field 4), once per call of
 * processTree.
 */
function parentMap(): (pid: number) => number[] {
  const byParent = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // ended meanwhile
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = byParent.get(ppid) ?? [];
    list.push(Number(name));
    byParent.set(ppid, list);
  }
  return (pid) => byParent.get(pid) ?? [];
}

export interface TreeSample {
  /** CPU ms so far of each process of the tree (all its threads). */
  cpuMs: Map<number, number>;
  /** Sums over the tree: VmRSS now, each process's own VmHWM (peaks at different moments: an upper bound), MB. */
  rssMB: number;
  hwmSumMB: number;
  processes: number;
}

export function sampleTree(root: number): TreeSample {
  const cpuMs = new Map<number, number>();
  let rssMB = 0;
  let hwmSumMB = 0;
  for (const pid of processTree(root)) {
    let s: ProcSample;
    try {
      s = sample(pid);
    } catch {
      continue; // ended between the listing and the read
    }
    cpuMs.set(pid, s.cpuMs);
    rssMB += s.rssMB;
    hwmSumMB += s.hwmMB;
  }
  return { cpuMs, rssMB, hwmSumMB, processes: cpuMs.size };
}

/**
 * CPU ms the tree used between two samples: each process's increase, a process that started in
 * between counted from zero. One that ended in between is not counted.
 */
export function treeCpuMs(from: TreeSample, to: TreeSample): number {
  let ms = 0;
  for (const [pid, now] of to.cpuMs) ms += now - (from.cpuMs.get(pid) ?? 0);
  return ms;
}

/** Proportional set size of the tree (shared pages split between the processes that map them), MB. */
export function treePssMB(root: number): number {
  let kb = 0;
  for (const pid of processTree(root)) {
    try {
      kb += Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? NaN);
    } catch {
      /* ended, or no smaps_rollup (kernel < 4.14) */
    }
  }
  return kb / 1024;
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
