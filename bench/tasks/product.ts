/**
 * The product's own code path: each mode function called exactly as the CLI and the action call it,
 * with a Config from parseConfig (environment fallbacks for the connection settings) and a quiet Io.
 * Only the benchmark's database is selected, so nothing else on the stack is read or written.
 */
import { MongoClient } from 'mongodb';
import { parseConfig, type Mode, type RawInputs } from '../../src/config.js';
import { backup, type BackupOptions } from '../../src/modes/backup.js';
import { recover } from '../../src/modes/recover.js';
import { restore } from '../../src/modes/restore.js';
import { schemaNameFor } from '../../src/naming.js';
import type { BackupPhases, Task, TaskResult } from '../protocol.js';
import { quietIo, type RecordingIo } from '../quiet-io.js';
import { connectStandby, dropSchema, walMark, walSince } from '../standby-sql.js';
import { mongoUri } from './limits.js';

/** Recover writes `<prefix><database>` next to the source, in the same MongoDB deployment. */
export const RECOVER_PREFIX = 'recovered_';

// Each dataset (the main one, the RSS-scaling ones) is its own selection on the one standby, and
// the benchmark moves between them on purpose: a backup of one may drop another's tables.
function configFor(mode: Mode, task: Task, extra: RawInputs = {}) {
  return parseConfig({ mode, databases: task.database, 'allow-selection-change': 'true', ...extra }, process.env);
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

/**
 * A backup, with the WAL the standby generated measured around it. `empty` first drops the database's schema on the standby;
 * `options` as the product's backup takes them (e.g. one collection read at a time, to compare with the default).
 */
export async function backupRun(task: Task, empty: boolean, options: BackupOptions = {}): Promise<Omit<TaskResult, 'childMaxRssBytes'>> {
  const config = configFor('backup', task);
  const sql = await connectStandby();
  try {
    if (empty) await dropSchema(sql, schemaNameFor(task.database));
    const before = await walMark(sql);
    const io = quietIo();
    const started = performance.now();
    const ok = await backup(config, io, options);
    const wallSeconds = (performance.now() - started) / 1000;
    if (!ok) throw describeFailure('backup', io);
    const wal = await walSince(sql, before);
    return {
      wallSeconds,
      documents: documentsOf(io),
      bytes: Number(io.outputs.bytes ?? 0),
      walBytes: wal.generated,
      walLsnBytes: wal.lsnDistance,
      phases: backupPhases(io, wallSeconds),
      groups: io.groups,
      outputs: io.outputs,
      problems: io.problems,
    };
  } finally {
    await sql.end();
  }
}

/** restore with verify: full, of the given backup branch: temporary branch, every check, cleanup. */
export async function verifyRun(task: Task): Promise<Omit<TaskResult, 'childMaxRssBytes'>> {
  const config = configFor('restore', task, { verify: 'full', 'backup-branch': task.backupBranch });
  const io = quietIo();
  const started = performance.now();
  const ok = await restore(config, io);
  const wallSeconds = (performance.now() - started) / 1000;
  if (!ok) throw describeFailure('restore', io);
  const verifying = io.groups.filter((g) => g.name.startsWith('Verifying '));
  return {
    wallSeconds,
    documents: documentsOf(io),
    bytes: 0,
    groups: io.groups,
    outputs: io.outputs,
    problems: io.problems,
    extra: { verificationSeconds: verifying.reduce((s, g) => s + g.seconds, 0) },
  };
}

/** recover of the standby's copy into an empty `recovered_<database>`, verified by reading it back. */
export async function recoverRun(task: Task): Promise<Omit<TaskResult, 'childMaxRssBytes'>> {
  const target = new MongoClient(mongoUri());
  try {
    await target.connect();
    await target.db(`${RECOVER_PREFIX}${task.database}`).dropDatabase();
  } finally {
    await target.close();
  }
  const config = configFor('recover', task, {
    'backup-branch': 'standby',
    'target-mongodb-uri': mongoUri(),
    'target-database-prefix': RECOVER_PREFIX,
  });
  const io = quietIo();
  const started = performance.now();
  const ok = await recover(config, io);
  const wallSeconds = (performance.now() - started) / 1000;
  if (!ok) throw describeFailure('recover', io);
  return { wallSeconds, documents: documentsOf(io), bytes: 0, groups: io.groups, outputs: io.outputs, problems: io.problems };
}
