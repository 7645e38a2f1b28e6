/**
 * The product as users run it: the action's bundle (dist/index.js, built by the benchmark before it
 * measures) in a process of its own, its inputs as INPUT_* variables and its outputs read from
 * GITHUB_OUTPUT, as on a GitHub runner. The connection settings come from the environment fallbacks
 * (MONGODB_SRV_URL, NEON_*). Only the benchmark's database is selected, so nothing else on the stack
 * is read or written. The measuring process times the run from start to exit (the bundle's start-up
 * included: users pay it too) and reads the log groups off its output as they arrive.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { schemaNameFor } from '../../src/naming.js';
import type { BackupPhases, GroupTiming, Task, TaskResult } from '../protocol.js';
import type { RecordingIo } from '../quiet-io.js';
import { repoRoot } from '../spawn.js';
import { connectStandby, dropSchema, walMark, walSince } from '../standby-sql.js';
import { mongoUri } from './limits.js';

export const PRODUCT_BUNDLE = 'dist/index.js';
const GNU_TIME = '/usr/bin/time';

interface BundleRun {
  ok: boolean;
  wallSeconds: number;
  io: RecordingIo;
  product: NonNullable<TaskResult['product']>;
}

/**
 * Runs one mode of the bundle. The log is parsed as the runner shows it: `::group::name` /
 * `::endgroup::` around each group, `::warning::` / `::error::` lines, plain info lines.
 */
async function runBundle(task: Task, inputs: Record<string, string>): Promise<BundleRun> {
  const bundle = path.join(repoRoot, PRODUCT_BUNDLE);
  if (!existsSync(bundle))
    throw new Error(`${PRODUCT_BUNDLE} does not exist: run \`npm run build\` (npm run bench builds it unless --no-build)`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'supaneon-bench-run-'));
  const files = {
    output: path.join(dir, 'output'),
    state: path.join(dir, 'state'),
    summary: path.join(dir, 'summary'),
    time: path.join(dir, 'time'),
  };
  for (const f of [files.output, files.state, files.summary]) writeFileSync(f, '');
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(INPUT_|STATE_|GITHUB_)/.test(k)) env[k] = v;
  Object.assign(env, { GITHUB_OUTPUT: files.output, GITHUB_STATE: files.state, GITHUB_STEP_SUMMARY: files.summary });
  for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.toUpperCase()}`] = value;

  const nodeArgs = [...(task.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${task.profileDir}`] : []), bundle];
  const useTime = existsSync(GNU_TIME);
  const [command, args] = useTime
    ? [GNU_TIME, ['-f', '%M %U %S', '-o', files.time, process.execPath, ...nodeArgs]]
    : [process.execPath, nodeArgs];

  const groups: GroupTiming[] = [];
  const timeline: RecordingIo['timeline'] = [];
  const problems: string[] = [];
  const started = performance.now();
  const at = () => (performance.now() - started) / 1000;
  let open: { name: string; startedAt: number } | undefined;
  const onLine = (line: string) => {
    if (line.startsWith('::group::')) open = { name: line.slice('::group::'.length), startedAt: at() };
    else if (line.startsWith('::endgroup::')) {
      if (open) groups.push({ name: open.name, seconds: at() - open.startedAt, startedAt: open.startedAt });
      open = undefined;
    } else if (line.startsWith('::warning')) problems.push(`warning: ${line.replace(/^::warning[^:]*::/, '')}`);
    else if (line.startsWith('::error')) problems.push(`error: ${line.replace(/^::error[^:]*::/, '')}`);
    else if (!line.startsWith('::') && timeline.length < 500) timeline.push({ at: at(), text: line });
  };
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(command, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let rest = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      const lines = (rest + d).split('\n');
      rest = lines.pop() ?? '';
      lines.forEach(onLine);
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
    child.on('error', reject);
    child.on('close', (c) => {
      if (rest) onLine(rest);
      if (stderr.trim()) problems.push(`stderr: ${stderr.trim()}`);
      resolve(c);
    });
  });
  const wallSeconds = at();
  const product: BundleRun['product'] = { maxRssBytes: null, cpuSeconds: null };
  if (useTime && existsSync(files.time)) {
    const [maxRssKb, user, system] = (readFileSync(files.time, 'utf8').trim().split('\n').pop() ?? '').split(' ').map(Number);
    if (maxRssKb > 0) product.maxRssBytes = maxRssKb * 1024;
    if (Number.isFinite(user) && Number.isFinite(system)) product.cpuSeconds = user + system;
  }
  const outputs: Record<string, string> = {};
  const text = readFileSync(files.output, 'utf8').split('\n');
  for (let i = 0; i < text.length; i++) {
    const heredoc = /^([^=<]+)<<(.+)$/.exec(text[i]);
    if (heredoc) {
      const value: string[] = [];
      for (i++; i < text.length && text[i] !== heredoc[2]; i++) value.push(text[i]);
      outputs[heredoc[1]] = value.join('\n');
    } else if (text[i].includes('=')) outputs[text[i].slice(0, text[i].indexOf('='))] = text[i].slice(text[i].indexOf('=') + 1);
  }
  rmSync(dir, { recursive: true, force: true });
  const io = { groups, timeline, outputs, problems } as unknown as RecordingIo;
  return { ok: code === 0, wallSeconds, io, product };
}

// Each dataset (the main one, the RSS-scaling ones) is its own selection on the one standby, and
// the benchmark moves between them on purpose: a backup of one may drop another's tables.
function inputsFor(mode: string, task: Task, extra: Record<string, string> = {}): Record<string, string> {
  return { mode, databases: task.database, 'allow-selection-change': 'true', ...extra };
}

function describeFailure(mode: string, io: RecordingIo): Error {
  return new Error(`the product's ${mode} mode reported failure: ${io.problems.slice(-5).join(' | ') || '(no message)'}`);
}

/**
 * Splits a backup's time at its log groups and at two of its log lines (the commit, the snapshot
 * branch); undefined when the lines are not found, e.g. after their wording changed.
 */
function backupPhases(io: RecordingIo, total: number): BackupPhases | undefined {
  const committed = io.timeline.find((e) => e.text.startsWith('standby committed'))?.at;
  const snapshot = io.timeline.find((e) => e.text.startsWith('snapshot branch'))?.at;
  const groups = io.groups.filter((g) => g.startedAt !== undefined);
  if (committed === undefined || snapshot === undefined || groups.length === 0) return undefined;
  const first = Math.min(...groups.map((g) => g.startedAt as number));
  const last = Math.max(...groups.map((g) => (g.startedAt as number) + g.seconds));
  return {
    prepare: first,
    sync: groups.reduce((n, g) => n + g.seconds, 0),
    commit: committed - last,
    snapshot: snapshot - committed,
    finish: total - snapshot,
  };
}

function documentsOf(io: RecordingIo): number {
  return Number(io.outputs.documents ?? 0);
}

/** What every measured mode reports of its bundle run; `bytes` is 0 unless the mode counts them. */
function resultOf(run: BundleRun): Omit<TaskResult, 'childMaxRssBytes'> {
  return {
    wallSeconds: run.wallSeconds,
    documents: documentsOf(run.io),
    bytes: 0,
    groups: run.io.groups,
    outputs: run.io.outputs,
    problems: run.io.problems,
    product: run.product,
  };
}

/**
 * A backup, with the WAL the standby generated measured around it. `empty` first drops the
 * database's schema on the standby. With `task.dumpDir`, the source is that mongodump directory;
 * `inputs` adds the bundle's inputs (e.g. parallel-collections: 1, to compare with the default).
 */
export async function backupRun(
  task: Task,
  empty: boolean,
  inputs: Record<string, string> = {},
): Promise<Omit<TaskResult, 'childMaxRssBytes'>> {
  const sql = await connectStandby();
  try {
    if (empty) await dropSchema(sql, schemaNameFor(task.database));
    const before = await walMark(sql);
    const run = await runBundle(
      task,
      inputsFor('backup', task, { ...inputs, ...(task.dumpDir ? { 'source-dump-dir': task.dumpDir } : {}) }),
    );
    if (!run.ok) throw describeFailure('backup', run.io);
    const wal = await walSince(sql, before);
    return {
      ...resultOf(run),
      bytes: Number(run.io.outputs.bytes ?? 0),
      walBytes: wal.generated,
      walLsnBytes: wal.lsnDistance,
      phases: backupPhases(run.io, run.wallSeconds),
    };
  } finally {
    await sql.end();
  }
}

/** restore with verify: full, of the given backup branch: temporary branch, every check, cleanup. */
export async function verifyRun(task: Task): Promise<Omit<TaskResult, 'childMaxRssBytes'>> {
  const run = await runBundle(task, inputsFor('restore', task, { verify: 'full', 'backup-branch': task.backupBranch ?? '' }));
  if (!run.ok) throw describeFailure('restore', run.io);
  const verifying = run.io.groups.filter((g) => g.name.startsWith('Verifying '));
  return { ...resultOf(run), extra: { verificationSeconds: verifying.reduce((s, g) => s + g.seconds, 0) } };
}

/** Recover writes `<prefix><database>` next to the source, in the same MongoDB deployment. */
export const RECOVER_PREFIX = 'recovered_';

/** recover of the standby's copy into an empty `recovered_<database>`, verified by reading it back. */
export async function recoverRun(task: Task): Promise<Omit<TaskResult, 'childMaxRssBytes'>> {
  const target = new MongoClient(mongoUri());
  try {
    await target.connect();
    await target.db(`${RECOVER_PREFIX}${task.database}`).dropDatabase();
  } finally {
    await target.close();
  }
  const run = await runBundle(
    task,
    inputsFor('recover', task, { 'backup-branch': 'standby', 'target-mongodb-uri': mongoUri(), 'target-database-prefix': RECOVER_PREFIX }),
  );
  if (!run.ok) throw describeFailure('recover', run.io);
  return resultOf(run);
}
