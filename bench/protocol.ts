/**
 * What the benchmark's driver (run.ts) and its measuring child processes (child.ts) exchange.
 * Every measurement runs in a fresh child, so its peak RSS is that of one operation alone and
 * nothing (JIT state, caches, heap) carries over from one run to the next.
 */

export type TaskName =
  | 'probe'
  | 'idle'
  | 'read'
  | 'prepare-rows'
  | 'write'
  | 'prepare-dump'
  | 'ceiling'
  | 'full'
  | 'full-sequential'
  | 'incremental'
  | 'storage'
  | 'scan'
  | 'verify'
  | 'recover'
  | 'naive'
  | 'cleanup';

export interface Task {
  name: TaskName;
  /** The MongoDB database measured; its Postgres schema on the standby is derived by the product's naming. */
  database: string;
  /** Documents per collection, as loaded (for the naive baseline's subset and the COPY files). */
  collections: { name: string; stream: number; documents: number }[];
  seed: number;
  /** Scratch directory of this run (COPY files, profiles). */
  workDir: string;
  /** Where the child writes its TaskResult as JSON. */
  resultFile: string;
  /** verify: the backup branch (id) to restore; the run's own newest backup, not whatever is newest on the project. */
  backupBranch?: string;
  /**
   * Environment on top of the driver's for this measurement, e.g. MONGODB_SRV_URL through the
   * benchmark's latency proxy.
   */
  env?: Record<string, string>;
  /** Product modes: profile the product's process (node --cpu-prof) into this directory. */
  profileDir?: string;
  /** prepare-dump, ceiling: the mongodump directory of the dataset. */
  dumpDir?: string;
  /** naive: share of each collection measured (0.1 = 10%). */
  subset?: number;
  /** cleanup: branches this run created, to delete. */
  branchIds?: string[];
  /** cleanup: leave the benchmark's data on the standby (for inspecting it). */
  keepData?: boolean;
}

export interface GroupTiming {
  name: string;
  seconds: number;
  /** Seconds after the mode started. */
  startedAt?: number;
}

/** A backup split into its phases (seconds), from the times of its log groups and log lines. */
export interface BackupPhases {
  /** Connecting, describing the source, the Neon API checks, the lock, the run record, the count estimates. */
  prepare: number;
  /** The per-collection groups: read, encode, COPY into staging and apply the diff (or COPY into a new or empty table). */
  sync: number;
  /** From the last collection to the commit (manifest rows, commit). */
  commit: number;
  /** Creating the snapshot branch (on the emulator: a pg_basebackup copy of the standby's cluster). */
  snapshot: number;
  /** Retention, outputs, summary, closing connections. */
  finish: number;
}

export interface TaskResult {
  /** Seconds of the measured operation alone (connections included, process start-up excluded). */
  wallSeconds: number;
  documents: number;
  /** Bytes moved: BSON bytes for reads and the product's modes, COPY bytes for the limits. */
  bytes: number;
  /** process.resourceUsage().maxRSS of the child, in bytes (fallback when /usr/bin/time is missing). */
  childMaxRssBytes: number;
  /** Postgres WAL generated on the standby during the operation (pg_stat_wal.wal_bytes before/after). */
  walBytes?: number;
  /** pg_current_wal_lsn distance over the operation (includes segment switches, e.g. by a base backup for a branch). */
  walLsnBytes?: number;
  /** Time inside each Io log group the product opened (per collection, per verification). */
  groups?: GroupTiming[];
  phases?: BackupPhases;
  /** Step outputs the product's mode set. */
  outputs?: Record<string, string>;
  /** Warnings and errors the product logged. */
  problems?: string[];
  /**
   * The product's own process (the bundle, dist/index.js, run as the action runs it): its peak RSS
   * (bytes) and CPU seconds, which replace the measuring process's own.
   */
  product?: { maxRssBytes: number | null; cpuSeconds: number | null };
  /** Task-specific facts (versions, storage breakdown, etc.). */
  extra?: Record<string, unknown>;
}
