/**
 * Runs one measurement in a fresh Node process and collects what the process itself cannot report
 * honestly: its peak RSS over its whole life (from /usr/bin/time when installed), its CPU time, and
 * the CPU the servers spent meanwhile.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { clusterCpuSeconds, processCpuSeconds } from './proc.js';
import type { Task, TaskResult } from './protocol.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..');
const CHILD = path.join(here, 'child.ts');
const GNU_TIME = '/usr/bin/time';

/** The measurements that run the product's bundle (bench/tasks/product.ts). */
export const PRODUCT_TASKS: ReadonlySet<Task['name']> = new Set(['full', 'incremental', 'ceiling', 'verify', 'recover']);

export interface ServerPids {
  ferretdb?: number;
  postmaster?: number;
}

export interface CpuSeconds {
  node: number | null;
  ferretdb: number | null;
  postgres: number | null;
}

export interface ChildRun {
  result: TaskResult;
  /** Peak RSS of the measuring process, bytes (GNU time's %M, else the child's own maxRSS). */
  peakRssBytes: number;
  rssSource: 'gnu-time' | 'process.resourceUsage';
  cpu: CpuSeconds;
  /** The .cpuprofile written when profiling was asked for. */
  profileFile?: string;
}

function delta(before: number | null, after: number | null): number | null {
  return before === null || after === null ? null : Math.max(0, after - before);
}

export async function runChild(task: Task, pids: ServerPids, opts: { profileDir?: string } = {}): Promise<ChildRun> {
  const timeFile = `${task.resultFile}.time`;
  rmSync(task.resultFile, { force: true });
  rmSync(timeFile, { force: true });
  // A product mode runs the bundle in a process of its own: that process is the one profiled.
  const profileProduct = opts.profileDir !== undefined && PRODUCT_TASKS.has(task.name);
  const profileSelf = opts.profileDir !== undefined && !profileProduct;
  const childTask: Task = profileProduct ? { ...task, profileDir: opts.profileDir } : task;
  const nodeArgs = [
    '--import',
    'tsx',
    ...(profileSelf ? ['--cpu-prof', `--cpu-prof-dir=${opts.profileDir}`] : []),
    CHILD,
    JSON.stringify(childTask),
  ];
  const useTime = existsSync(GNU_TIME);
  const [command, args] = useTime
    ? [GNU_TIME, ['-f', '%M %U %S', '-o', timeFile, process.execPath, ...nodeArgs]]
    : [process.execPath, nodeArgs];

  const ferretBefore = processCpuSeconds(pids.ferretdb);
  const pgBefore = clusterCpuSeconds(pids.postmaster);
  const profilesBefore = opts.profileDir ? new Set(readdirSync(opts.profileDir)) : undefined;
  const stderr: string[] = [];
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(command, args, { cwd: repoRoot, env: { ...process.env, ...task.env }, stdio: ['ignore', 'inherit', 'pipe'] });
    child.stderr.on('data', (d: Buffer) => {
      stderr.push(d.toString());
      if (stderr.length > 200) stderr.shift();
    });
    child.on('error', reject);
    child.on('exit', (c) => resolve(c));
  });
  const cpuFerret = delta(ferretBefore, processCpuSeconds(pids.ferretdb));
  const cpuPg = delta(pgBefore, clusterCpuSeconds(pids.postmaster));
  if (code !== 0 || !existsSync(task.resultFile)) {
    throw new Error(`measurement "${task.name}" failed (exit ${code}):\n${stderr.join('').trim().split('\n').slice(-25).join('\n')}`);
  }
  const result = JSON.parse(readFileSync(task.resultFile, 'utf8')) as TaskResult;
  let peakRssBytes = result.childMaxRssBytes;
  let rssSource: ChildRun['rssSource'] = 'process.resourceUsage';
  let cpuNode: number | null = null;
  if (useTime && existsSync(timeFile)) {
    // GNU time may put "Command exited with non-zero status" first; the format line is the last.
    const last = readFileSync(timeFile, 'utf8').trim().split('\n').pop() ?? '';
    const [maxRssKb, user, system] = last.split(' ').map(Number);
    if (Number.isFinite(maxRssKb) && maxRssKb > 0) {
      peakRssBytes = maxRssKb * 1024;
      rssSource = 'gnu-time';
    }
    if (Number.isFinite(user) && Number.isFinite(system)) cpuNode = user + system;
  }
  // A product mode runs as its own process (the bundle): its figures are the ones that count, not
  // those of the measuring process that started it.
  if (result.product?.maxRssBytes) {
    peakRssBytes = result.product.maxRssBytes;
    rssSource = 'gnu-time';
  }
  if (result.product && result.product.cpuSeconds !== null) cpuNode = result.product.cpuSeconds;
  let profileFile: string | undefined;
  if (opts.profileDir && profilesBefore) {
    const created = readdirSync(opts.profileDir).filter((f) => f.endsWith('.cpuprofile') && !profilesBefore.has(f));
    if (created.length > 0) profileFile = path.join(opts.profileDir, created[0]);
  }
  return { result, peakRssBytes, rssSource, cpu: { node: cpuNode, ferretdb: cpuFerret, postgres: cpuPg }, profileFile };
}
