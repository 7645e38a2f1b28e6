/**
 * The Postgres side of a backup: bring the standby to exactly the state just read from MongoDB,
 * in one transaction, writing only the rows whose content changed.
 *
 * Per collection, every document is COPYed (binary) into a temporary staging table (no WAL, so no
 * storage in Neon's history) and the table is then brought in line with three statements that only
 * touch differing rows. An `INSERT ... ON CONFLICT DO UPDATE ... WHERE` would look simpler but
 * locks every conflicting row, and each lock writes the tuple header (WAL) even when nothing
 * changes; the separate UPDATE / INSERT / DELETE write nothing for unchanged rows.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from './io.js';
import { COPY_COLUMNS, ContentHash, copyBinaryTuple, encodeDocument, rowTableColumns } from './codec.js';
import { copyIn } from './copy-streams.js';
import {
  BACKUPS_TABLE,
  completeBackup,
  ensureManifestTables,
  insertBackup,
  insertCollection,
  tablesOfLastBackup,
  type BackupRecord,
  type Consistency,
} from './manifest.js';
import type { CollectionSpec } from './mongo.js';
import { META_SCHEMA, quoteIdent, schemaNameFor, tableNameFor } from './naming.js';
import { Progress } from './report.js';

/** One session-level advisory lock key for every backup of a database: derived, not magic. */
const LOCK_KEY = createHash('sha256').update('supaneon-sync backup').digest().readBigInt64BE(0).toString();
const STAGE = 'pg_temp.supaneon_stage';

export class BackupAlreadyRunning extends Error {}

/**
 * Takes the standby's backup lock (held by this session until it ends), so a second backup
 * against the same standby fails at once, or after `waitSeconds`, instead of interleaving.
 */
export async function acquireBackupLock(client: pg.ClientBase, waitSeconds: number, log: Logger): Promise<void> {
  const deadline = Date.now() + waitSeconds * 1000;
  let announced = false;
  for (;;) {
    const r = await client.query('SELECT pg_try_advisory_lock($1::bigint) AS locked', [LOCK_KEY]);
    if (r.rows[0].locked === true) return;
    if (Date.now() >= deadline) {
      throw new BackupAlreadyRunning(
        waitSeconds > 0
          ? `another supaneon-sync backup still holds this standby after waiting ${waitSeconds} s; let it finish or raise lock-wait-seconds`
          : 'another supaneon-sync backup is running against this standby; let it finish, or set lock-wait-seconds to wait for it',
      );
    }
    if (!announced) {
      log.info(`another backup is running against this standby; waiting up to ${waitSeconds} s for it to finish`);
      announced = true;
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(2000, Math.max(0, deadline - Date.now()))));
  }
}

/**
 * Creates the manifest tables if needed and records the run as `running`, committed on its own:
 * a run that dies leaves that trace even though its sync transaction rolls back.
 */
export async function recordRunStart(client: pg.ClientBase, record: BackupRecord): Promise<void> {
  await ensureManifestTables(client);
  await insertBackup(client, record);
}

export interface CollectionSource {
  spec: CollectionSpec;
  /** The collection's documents as raw BSON, read once, in any order. */
  documents(): AsyncIterable<Buffer>;
  /** The server's estimate of the document count, for the progress ETA. */
  estimatedDocuments?: number;
}

export interface CollectionSyncResult {
  spec: CollectionSpec;
  schemaName: string;
  tableName: string;
  documents: number;
  bsonBytes: number;
  contentHash: string;
  inserted: number;
  updated: number;
  deleted: number;
}

export interface SyncResult {
  collections: CollectionSyncResult[];
  /** Tables of collections that were backed up before but are gone or no longer selected ("schema"."table"). */
  droppedTables: string[];
  changed: number;
}

export interface SyncArgs {
  runId: string;
  sources: CollectionSource[];
  log: Logger;
  /** Called after every collection was read, before the commit: the run's end time and consistency. */
  finish(): Promise<{ clusterTimeEnd: string | null; consistency: Consistency }>;
}

/**
 * The whole sync in one transaction: readers of the standby see the previous backup or this one,
 * never a mix. On any failure the transaction is rolled back and the error names the collection.
 */
export async function syncStandby(client: pg.ClientBase, a: SyncArgs): Promise<SyncResult> {
  assertDistinctTables(a.sources.map((s) => s.spec));
  await client.query('BEGIN');
  try {
    const previous = await tablesOfLastBackup(client);
    const refreshQueryForm = await toolVersionChanged(client, a.runId);
    await createStagingTable(client);
    const collections: CollectionSyncResult[] = [];
    for (const source of a.sources) {
      const { database, collection } = source.spec;
      const result = await a.log.group(`${database}.${collection}`, async () => {
        try {
          return await syncCollection(client, source, refreshQueryForm, a.log);
        } catch (err) {
          throw new Error(`backup of ${database}.${collection} failed: ${(err as Error).message}`, { cause: err });
        }
      });
      collections.push(result);
    }
    const droppedTables = await dropVanishedTables(client, previous, collections, a.log);
    const end = await a.finish();
    for (const c of collections) {
      await insertCollection(client, {
        runId: a.runId,
        database: c.spec.database,
        collection: c.spec.collection,
        schemaName: c.schemaName,
        tableName: c.tableName,
        kind: c.spec.kind,
        documents: c.documents,
        bsonBytes: c.bsonBytes,
        contentHash: c.contentHash,
        indexes: c.spec.indexes,
        options: c.spec.options,
      });
    }
    await completeBackup(client, a.runId, { finishedAt: new Date(), ...end });
    await client.query('COMMIT');
    const changed = collections.reduce((n, c) => n + c.inserted + c.updated + c.deleted, 0);
    return { collections, droppedTables, changed };
  } catch (err) {
    // The connection may be the thing that failed; the server rolls back on its own then.
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

async function syncCollection(
  client: pg.ClientBase,
  source: CollectionSource,
  refreshQueryForm: boolean,
  log: Logger,
): Promise<CollectionSyncResult> {
  const { spec } = source;
  const schemaName = schemaNameFor(spec.database);
  const tableName = tableNameFor(spec.collection);
  const hash = new ContentHash();
  if (spec.kind === 'view') {
    log.info(`view on ${spec.options.viewOn}: its definition is recorded in the manifest, its results are not copied`);
    return { spec, schemaName, tableName, documents: 0, bsonBytes: 0, contentHash: hash.digest(), inserted: 0, updated: 0, deleted: 0 };
  }
  const target = `${quoteIdent(schemaName)}.${quoteIdent(tableName)}`;
  await ensureTable(client, schemaName, tableName, `${spec.database}.${spec.collection}`);

  await client.query(`TRUNCATE ${STAGE}`);
  const progress = new Progress(`${spec.database}.${spec.collection}`, log, { total: source.estimatedDocuments });
  // Pulls documents only as fast as Postgres takes them, hashing each as it passes.
  await copyIn(client, `${STAGE} (${COPY_COLUMNS.map(quoteIdent).join(', ')})`, source.documents(), (raw) => {
    const row = encodeDocument(raw);
    hash.add(row.hash, row.bson.length);
    progress.add(1, row.bson.length);
    return copyBinaryTuple(row);
  });
  progress.done();

  // Statistics only for the join keys: samples of the document columns would be copied into
  // pg_statistic (a WAL-logged catalog) for nothing.
  // The statistics and the three diff statements go as one message (no parameters: the simple
  // query protocol runs them in order and answers each): one round trip instead of four.
  const results = (await client.query(
    `ANALYZE ${STAGE} (_id, hash);
     UPDATE ${target} t SET doc = s.doc, bson = s.bson, hash = s.hash
     FROM ${STAGE} s WHERE t._id = s._id AND (t.hash <> s.hash${refreshQueryForm ? ' OR t.doc IS DISTINCT FROM s.doc' : ''});
     INSERT INTO ${target} (_id, doc, bson, hash)
     SELECT s._id, s.doc, s.bson, s.hash FROM ${STAGE} s
     WHERE NOT EXISTS (SELECT 1 FROM ${target} t WHERE t._id = s._id);
     DELETE FROM ${target} t WHERE NOT EXISTS (SELECT 1 FROM ${STAGE} s WHERE s._id = t._id)`,
  )) as unknown as pg.QueryResult[];
  const [, updated, inserted, deleted] = results;
  const r = {
    spec,
    schemaName,
    tableName,
    documents: hash.documents,
    bsonBytes: hash.bytes,
    contentHash: hash.digest(),
    inserted: inserted.rowCount ?? 0,
    updated: updated.rowCount ?? 0,
    deleted: deleted.rowCount ?? 0,
  };
  log.info(`${r.documents} documents: ${r.inserted} inserted, ${r.updated} updated, ${r.deleted} deleted, unchanged rows not rewritten`);
  return r;
}

/**
 * One temporary staging table for the whole run, emptied before each collection. Temporary tables
 * write no WAL for their rows; creating one per collection would still log its catalog entries,
 * while truncating a table made in the same transaction touches no catalog at all. The unique
 * index speeds up the diff joins and refuses a collection that (through a bug anywhere upstream)
 * yielded the same _id twice, instead of silently keeping one of them.
 */
async function createStagingTable(client: pg.ClientBase): Promise<void> {
  await client.query(`CREATE TEMP TABLE supaneon_stage (${rowTableColumns('staging')}) ON COMMIT DROP`);
  await client.query(`CREATE UNIQUE INDEX ON ${STAGE} (_id)`);
}

async function ensureTable(client: pg.ClientBase, schemaName: string, tableName: string, mongoName: string): Promise<void> {
  const schema = quoteIdent(schemaName);
  const target = `${schema}.${quoteIdent(tableName)}`;
  // One round trip to learn whether the table exists, one more to create it: statements without
  // parameters sent as one message (the simple query protocol answers each in order).
  const [, exists] = (await client.query(
    `CREATE SCHEMA IF NOT EXISTS ${schema}; SELECT to_regclass(${client.escapeLiteral(target)}) IS NOT NULL AS present`,
  )) as unknown as pg.QueryResult[];
  if (exists.rows[0].present === true) return;
  // The exact MongoDB name, for people browsing the standby (the manifest holds it too).
  await client.query(
    `CREATE TABLE ${target} (${rowTableColumns('standby')}); ` +
      `COMMENT ON TABLE ${target} IS ${client.escapeLiteral(`MongoDB collection ${mongoName}, kept by supaneon-sync`)}`,
  );
}

/**
 * Whether the previous completed backup was made by another tool version. The `doc` column is
 * derived from the exact bytes, so within one version equal hashes mean equal rows; a new
 * version may render the query form differently, and then rows are compared on `doc` as well.
 */
async function toolVersionChanged(client: pg.ClientBase, runId: string): Promise<boolean> {
  const r = await client.query(
    `SELECT (SELECT tool_version FROM ${BACKUPS_TABLE} WHERE run_id = $1) AS current,
            (SELECT tool_version FROM ${BACKUPS_TABLE} WHERE status = 'completed'
              ORDER BY finished_at DESC, started_at DESC LIMIT 1) AS previous`,
    [runId],
  );
  return r.rows[0].previous !== null && r.rows[0].previous !== r.rows[0].current;
}

/**
 * Drops the tables of collections the previous backup stored but this one did not read
 * (deleted in MongoDB, or no longer selected). Their data lives on in older snapshot branches.
 * Only tables recorded in the manifest are ever dropped, never anything else in the database.
 */
async function dropVanishedTables(
  client: pg.ClientBase,
  previous: { database: string; collection: string; schemaName: string; tableName: string }[],
  current: CollectionSyncResult[],
  log: Logger,
): Promise<string[]> {
  const kept = new Set(current.filter((c) => c.spec.kind !== 'view').map((c) => `${c.schemaName}\u0000${c.tableName}`));
  const dropped: string[] = [];
  for (const p of previous) {
    if (kept.has(`${p.schemaName}\u0000${p.tableName}`)) continue;
    const schema = quoteIdent(p.schemaName);
    const target = `${schema}.${quoteIdent(p.tableName)}`;
    await client.query(`DROP TABLE IF EXISTS ${target}`);
    log.info(
      `dropped ${target}: ${p.database}.${p.collection} no longer exists or is no longer selected (older backup branches keep its data)`,
    );
    dropped.push(target);
    const left = await client.query(
      'SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1',
      [p.schemaName],
    );
    if (left.rows[0].n === 0 && p.schemaName !== META_SCHEMA) await client.query(`DROP SCHEMA IF EXISTS ${schema}`);
  }
  return dropped;
}

function assertDistinctTables(specs: CollectionSpec[]): void {
  const seen = new Map<string, string>();
  for (const s of specs) {
    if (s.kind === 'view') continue;
    const key = `${schemaNameFor(s.database)}\u0000${tableNameFor(s.collection)}`;
    const name = `${s.database}.${s.collection}`;
    const other = seen.get(key);
    if (other !== undefined) {
      throw new Error(`collections ${other} and ${name} map to the same Postgres table; exclude one of them with the exclude input`);
    }
    seen.set(key, name);
  }
}
