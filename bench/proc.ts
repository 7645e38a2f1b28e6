/**
 * CPU seconds used by the servers during a measurement, read from /proc (Linux). On a 2-core
 * machine the servers and the measured process compete for the same cores, so who used the CPU is
 * what explains a measurement: FerretDB decoding documents, Postgres writing them, or Node encoding.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

interface ProcStat {
  ppid: number;
  utime: number;
  stime: number;
  cutime: number;
  cstime: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at ") ".
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), utime: Number(f[11]), stime: Number(f[12]), cutime: Number(f[13]), cstime: Number(f[14]) };
  } catch {
    return undefined;
  }
}

function pids(): number[] {
  try {
    return readdirSync('/proc')
      .filter((n) => /^\d+$/.test(n))
      .map(Number);
  } catch {
    return [];
  }
}

/** The FerretDB process listening on the port of `mongoUri`, if it runs on this machine. */
export function findFerretDb(mongoUri: string): number | undefined {
  let port: string;
  try {
    port = new URL(mongoUri).port;
  } catch {
    return undefined;
  }
  for (const pid of pids()) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (cmd[0]?.includes('ferretdb') && cmd.some((a) => a.startsWith('--listen-addr=') && a.endsWith(`:${port}`))) return pid;
    } catch {
      // The process ended while we looked.
    }
  }
  return undefined;
}

/** CPU seconds of one process (all its threads). */
export function processCpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  const s = readStat(pid);
  return s ? (s.utime + s.stime) / clockTicks() : null;
}

/**
 * CPU seconds of a whole Postgres cluster: the postmaster, the backends and workers alive now, and
 * (through the postmaster's cutime/cstime) every child that already exited.
 */
export function clusterCpuSeconds(postmasterPid: number | undefined): number | null {
  if (postmasterPid === undefined) return null;
  const root = readStat(postmasterPid);
  if (!root) return null;
  let ticks = root.utime + root.stime + root.cutime + root.cstime;
  for (const pid of pids()) {
    const s: ProcStat | undefined = pid === postmasterPid ? undefined : readStat(pid);
    if (s && s.ppid === postmasterPid) ticks += s.utime + s.stime;
  }
  return ticks / clockTicks();
}
