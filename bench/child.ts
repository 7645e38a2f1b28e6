/**
 * One measurement in its own process: `node --import tsx bench/child.ts '<task JSON>'`. Writes its
 * TaskResult to the task's result file; on failure prints the reason to stderr and exits 1.
 */
import { writeFileSync } from 'node:fs';
import type { Task, TaskName, TaskResult } from './protocol.js';
import { cleanup, idle, probe, storage } from './tasks/inspect.js';
import { plainScan, prepareDump, prepareRows, readLimit, writeLimit } from './tasks/limits.js';
import { naiveRun } from './tasks/naive.js';
import { backupRun, recoverRun, verifyRun } from './tasks/product.js';

const TASKS: Record<TaskName, (task: Task) => Promise<Omit<TaskResult, 'childMaxRssBytes'>>> = {
  probe,
  idle,
  read: readLimit,
  'prepare-rows': prepareRows,
  write: writeLimit,
  'prepare-dump': prepareDump,
  ceiling: (task) => backupRun(task, true),
  full: (task) => backupRun(task, true),
  'full-sequential': (task) => backupRun(task, true, { 'parallel-collections': '1' }),
  incremental: (task) => backupRun(task, false),
  storage,
  scan: plainScan,
  verify: verifyRun,
  recover: recoverRun,
  naive: naiveRun,
  cleanup,
};

const task = JSON.parse(process.argv[2] ?? '{}') as Task;
const run = TASKS[task.name];
if (!run) {
  process.stderr.write(`bench/child.ts: unknown task ${JSON.stringify(task.name)}\n`);
  process.exit(2);
}
try {
  const outcome = await run(task);
  // maxRSS is in kilobytes.
  const result: TaskResult = { ...outcome, childMaxRssBytes: process.resourceUsage().maxRSS * 1024 };
  writeFileSync(task.resultFile, JSON.stringify(result));
} catch (err) {
  process.stderr.write(`${task.name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}
