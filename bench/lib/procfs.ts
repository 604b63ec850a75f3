// CPU and memory of processes from /proc, to say where the CPU went during
// a burst (API server, etcd, controllers, kwok, the manager, the harness)
// and how much memory the manager holds.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let clockTicks: number | undefined;

/** USER_HZ, the unit of /proc/<pid>/stat CPU times (100 on Linux almost everywhere). */
export function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** CPU seconds (user + system) a process has used, undefined if it is gone. */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at state, field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

/** Busy and total CPU seconds of the whole machine since boot (all cores). */
export function machineCpuSeconds(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already in user).
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = values;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy: busy / ticksPerSecond(), total: (busy + idle + iowait) / ticksPerSecond() };
}

export interface ProcessMemory {
  /** Peak resident set (VmHWM). */
  hwmBytes: number;
  /** Current resident set (VmRSS). */
  rssBytes: number;
}

/** VmHWM and VmRSS of a process, undefined if it is gone. */
export function processMemory(pid: number): ProcessMemory | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (key: string): number => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
      return m === null ? Number.NaN : Number(m[1]) * 1024;
    };
    return { hwmBytes: kib('VmHWM'), rssBytes: kib('VmRSS') };
  } catch {
    return undefined;
  }
}

/** A point-in-time reading of named processes' CPU and the machine's. */
export interface CpuSnapshot {
  atMs: number;
  processes: Record<string, number>;
  machine: { busy: number; total: number };
}

/** Reads the CPU seconds of each named pid (the harness itself as 'harness'). */
export function cpuSnapshot(pids: Readonly<Record<string, number | undefined>>): CpuSnapshot {
  const processes: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) {
    if (pid === undefined) continue;
    const s =
      pid === process.pid ? (process.cpuUsage().user + process.cpuUsage().system) / 1e6 : processCpuSeconds(pid);
    if (s !== undefined) processes[name] = s;
  }
  return { atMs: performance.now(), processes, machine: machineCpuSeconds() };
}

export interface CpuSplit {
  seconds: number;
  /** Per process: share of one core over the window (1 = one core fully busy). */
  cores: Record<string, number>;
  /** Busy cores of the whole machine, and what the named processes do not explain. */
  machineBusyCores: number;
  otherCores: number;
  machineCores: number;
}

/** The CPU each process used between two snapshots, in cores. */
export function cpuSplit(a: CpuSnapshot, b: CpuSnapshot): CpuSplit {
  const seconds = (b.atMs - a.atMs) / 1000;
  const cores: Record<string, number> = {};
  let named = 0;
  for (const [name, end] of Object.entries(b.processes)) {
    const start = a.processes[name];
    if (start === undefined) continue;
    cores[name] = seconds > 0 ? (end - start) / seconds : Number.NaN;
    named += cores[name];
  }
  const wall = b.machine.total - a.machine.total;
  const machineCores = seconds > 0 ? wall / seconds : Number.NaN;
  const machineBusyCores = seconds > 0 ? (b.machine.busy - a.machine.busy) / seconds : Number.NaN;
  return { seconds, cores, machineBusyCores, otherCores: Math.max(0, machineBusyCores - named), machineCores };
}

/** The 1-, 5- and 15-minute load averages. */
export function loadAverage(): [number, number, number] {
  const [a = 0, b = 0, c = 0] = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
  return [a, b, c];
}
