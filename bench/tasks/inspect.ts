/**
 * Facts around the measurements: the servers and their settings (probe), the memory floor of a
 * measuring process (idle), where the standby's storage goes (storage), and putting the stack back
 * the way the benchmark found it (cleanup).
 */
import { readFileSync } from 'node:fs';
import { MongoClient } from 'mongodb';
import { NeonApi } from '../../src/neon.js';
import { schemaNameFor } from '../../src/naming.js';
import type { Task, TaskResult } from '../protocol.js';
import { quietIo } from '../quiet-io.js';
import { connectStandby, dropSchema, supportsLz4, tablesOf } from '../standby-sql.js';
import { WRITE_LIMIT_SCHEMA, mongoUri } from './limits.js';
import { NAIVE_SCHEMA } from './naive.js';
import { RECOVER_PREFIX } from './product.js';

type Outcome = Omit<TaskResult, 'childMaxRssBytes'>;

/** Parent pid of a process, from /proc (Linux): for a Postgres backend, its postmaster. */
function parentPid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

export async function probe(): Promise<Outcome> {
  const sql = await connectStandby();
  const mongo = new MongoClient(mongoUri());
  try {
    const settings = await sql.query<{ name: string; setting: string; unit: string | null }>(
      `SELECT name, setting, unit FROM pg_settings
        WHERE name IN ('server_version', 'shared_buffers', 'wal_level', 'full_page_writes', 'synchronous_commit', 'fsync',
                       'wal_compression', 'max_wal_size', 'default_toast_compression', 'work_mem', 'maintenance_work_mem')`,
    );
    const backendPid = (await sql.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    await mongo.connect();
    const build = await mongo.db('admin').command({ buildInfo: 1 });
    return {
      wallSeconds: 0,
      documents: 0,
      bytes: 0,
      extra: {
        postgres: Object.fromEntries(settings.rows.map((r) => [r.name, r.unit ? `${r.setting} (${r.unit})` : r.setting])),
        lz4: await supportsLz4(sql),
        postmasterPid: parentPid(backendPid),
        mongoVersion: String(build.version),
        ferretdbVersion: typeof build.ferretdbVersion === 'string' ? build.ferretdbVersion : undefined,
      },
    };
  } finally {
    await mongo.close();
    await sql.end();
  }
}

/** Nothing at all: the peak RSS of a measuring process that only loaded the modules. */
export async function idle(): Promise<Outcome> {
  return { wallSeconds: 0, documents: 0, bytes: 0 };
}

export interface TableStorage {
  table: string;
  rows: number;
  total: number;
  heap: number;
  toast: number;
  indexes: number;
  other: number;
  /** Sums of pg_column_size (as stored: compressed and/or out of line). */
  docColumn: number;
  bsonColumn: number;
  idColumn: number;
  hashColumn: number;
  /** Sum of the documents' BSON lengths: what MongoDB sent. */
  bsonBytes: number;
}

/** Where the standby's bytes for the measured database go: heap, TOAST, indexes, and per column. */
export async function storage(task: Task): Promise<Outcome> {
  const sql = await connectStandby();
  try {
    const tables: TableStorage[] = [];
    for (const table of await tablesOf(sql, schemaNameFor(task.database))) {
      const sizes = await sql.query(
        `SELECT pg_total_relation_size(c.oid)::bigint AS total,
                pg_relation_size(c.oid, 'main')::bigint AS heap,
                COALESCE(pg_total_relation_size(NULLIF(c.reltoastrelid, 0)), 0)::bigint AS toast,
                pg_indexes_size(c.oid)::bigint AS indexes
           FROM pg_class c WHERE c.oid = $1::regclass`,
        [table],
      );
      const columns = await sql.query(
        `SELECT count(*)::bigint AS rows, COALESCE(sum(pg_column_size(doc)), 0)::bigint AS doc,
                COALESCE(sum(pg_column_size(bson)), 0)::bigint AS bson, COALESCE(sum(pg_column_size(_id)), 0)::bigint AS id,
                COALESCE(sum(pg_column_size(hash)), 0)::bigint AS hash, COALESCE(sum(octet_length(bson)), 0)::bigint AS bson_bytes
           FROM ${table}`,
      );
      const s = sizes.rows[0];
      const c = columns.rows[0];
      const [total, heap, toast, indexes] = [s.total, s.heap, s.toast, s.indexes].map(Number);
      tables.push({
        table,
        rows: Number(c.rows),
        total,
        heap,
        toast,
        indexes,
        other: total - heap - toast - indexes,
        docColumn: Number(c.doc),
        bsonColumn: Number(c.bson),
        idColumn: Number(c.id),
        hashColumn: Number(c.hash),
        bsonBytes: Number(c.bson_bytes),
      });
    }
    return { wallSeconds: 0, documents: tables.reduce((n, t) => n + t.rows, 0), bytes: 0, extra: { tables } };
  } finally {
    await sql.end();
  }
}

/** Deletes the backup branches the run made and the benchmark's schemas and databases. */
export async function cleanup(task: Task): Promise<Outcome> {
  const neon = new NeonApi({
    apiKey: process.env.NEON_API_KEY ?? '',
    projectId: process.env.NEON_PROJECT_ID ?? '',
    baseUrl: process.env.NEON_API_HOST ?? '',
    log: quietIo().log,
  });
  for (const id of task.branchIds ?? []) await neon.deleteBranch(id);
  if (!task.keepData) {
    const sql = await connectStandby();
    try {
      for (const schema of [schemaNameFor(task.database), WRITE_LIMIT_SCHEMA, NAIVE_SCHEMA]) await dropSchema(sql, schema);
    } finally {
      await sql.end();
    }
    const mongo = new MongoClient(mongoUri());
    try {
      await mongo.connect();
      await mongo.db(`${RECOVER_PREFIX}${task.database}`).dropDatabase();
    } finally {
      await mongo.close();
    }
  }
  return { wallSeconds: 0, documents: 0, bytes: 0 };
}
