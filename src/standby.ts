/**
 * The Postgres side of a backup: bring the standby to exactly the state just read from MongoDB,
 * in one transaction, writing only the rows whose content changed.
 *
 * Several collections are read at once (the parallel-collections input), each into a bounded read-ahead
 * buffer; the one connection COPYs (binary) the buffered rows into a temporary staging table per
 * collection being read (no WAL, so no storage in Neon's history), and once a collection was read
 * completely its table is brought in line with three statements that only touch differing rows.
 * A table that is new or empty has nothing to compare with: its rows are COPYed straight into it,
 * written once instead of twice (staging, then INSERT ... SELECT).
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from './io.js';
import { COPY_COLUMNS, ContentHash, copyBinaryTupleLength, encodeDocumentView, rowTableColumns, writeCopyBinaryTuple } from './codec.js';
import { copyChunks } from './copy-streams.js';
import { connectionFailure } from './postgres.js';
import { ReadAhead } from './read-ahead.js';
import {
  BACKUPS_TABLE,
  completeBackup,
  ensureManifestTables,
  insertBackup,
  insertCollections,
  tablesOfLastBackup,
  type BackupRecord,
  type Consistency,
} from './manifest.js';
import type { CollectionSpec } from './mongo.js';
import { META_SCHEMA, quoteIdent, schemaNameFor, tableNameFor } from './naming.js';
import { Progress } from './report.js';

/** One session-level advisory lock key for every backup of a database: derived, not magic. */
const LOCK_KEY = createHash('sha256').update('supaneon-sync backup').digest().readBigInt64BE(0).toString();

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
  /** Collections read at once (the parallel-collections input; 4 when unset); 1 reads them one after the other. */
  parallelism?: number;
  /** Called after every collection was read, before the commit: the run's end time and consistency. */
  finish(): Promise<{ clusterTimeEnd: string | null; consistency: Consistency }>;
}

/**
 * Collections read from the source at once when the caller does not say (the parallel-collections
 * input's default, as mongodump's --numParallelCollections). The source serves one cursor at a time
 * far below what Postgres takes (FerretDB: a few thousand documents a second per cursor), so reading
 * several collections at once is where a backup gains; the writes stay on the one connection and in
 * the one transaction. Memory grows with it: at most READ_AHEAD_BYTES per collection being read.
 */
const PARALLEL_COLLECTIONS = 4;
/** Encoded rows held per collection being read, waiting for their COPY (the reader pauses beyond it). */
const READ_AHEAD_BYTES = 4 * 1024 * 1024;
/** Rows are gathered into chunks of this size: a few large writes instead of one per row. */
const CHUNK_BYTES = 256 * 1024;

/**
 * The whole sync in one transaction: readers of the standby see the previous backup or this one,
 * never a mix. On any failure the transaction is rolled back and the error names the collection.
 */
export async function syncStandby(client: pg.ClientBase, a: SyncArgs): Promise<SyncResult> {
  assertDistinctTables(a.sources.map((s) => s.spec));
  const parallelism = Math.max(1, Math.floor(a.parallelism ?? PARALLEL_COLLECTIONS));
  await client.query('BEGIN');
  try {
    const previous = await tablesOfLastBackup(client);
    const refreshQueryForm = await toolVersionChanged(client, a.runId);
    const stored = a.sources.filter((s) => s.spec.kind !== 'view').length;
    const readers = Math.min(parallelism, stored);
    const collections = await a.log.group(
      `Syncing ${a.sources.length} collection(s), ${readers <= 1 ? 'one at a time' : `${readers} read at once`}`,
      () => syncCollections(client, a.sources, Math.max(1, readers), refreshQueryForm, a.log),
    );
    const droppedTables = await dropVanishedTables(client, previous, collections, a.log);
    const end = await a.finish();
    await insertCollections(
      client,
      collections.map((c) => ({
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
      })),
    );
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

/** One collection being read into its staging slot, or straight into its table. */
interface Reading {
  index: number;
  source: CollectionSource;
  slot: number;
  /** The table (quoted) and whether it was new or empty when reading began: then rows are COPYed into it directly. */
  table: StandbyTable;
  buffer: ReadAhead;
  hash: ContentHash;
  /** Settles when the reader stopped (never rejects: a failure is kept in `failure`). */
  stopped: Promise<void>;
  failure?: Error;
}

/**
 * Reads up to `parallelism` collections at once, each into a bounded read-ahead buffer
 * (read-ahead.ts) and a staging table of its own, while this one connection COPYs whichever
 * buffer holds the most, and applies each collection once it was read completely. Rows are
 * encoded and hashed by their reader as they arrive. The first failure stops every reader
 * (their cursors are closed) and is thrown, naming its collection; the caller rolls back.
 */
async function syncCollections(
  client: pg.ClientBase,
  sources: readonly CollectionSource[],
  parallelism: number,
  refreshQueryForm: boolean,
  log: Logger,
): Promise<CollectionSyncResult[]> {
  const results: (CollectionSyncResult | undefined)[] = new Array(sources.length);
  const active = new Map<number, Reading>(); // by slot
  const freeSlots: number[] = [];
  let next = 0;
  let wake: (() => void) | undefined;
  const signal = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const name = (s: CollectionSource) => `${s.spec.database}.${s.spec.collection}`;
  const named = (s: CollectionSource, err: unknown) => {
    // A connection lost between statements fails the next one without its cause: add the cause.
    const lost = connectionFailure(client);
    const message = (err as Error).message;
    const why = lost && !message.includes(lost.message) ? `${message} (the connection to Postgres was lost: ${lost.message})` : message;
    return new Error(`backup of ${name(s)} failed: ${why}`, { cause: err });
  };

  const startReading = async (index: number, slot: number): Promise<Reading> => {
    const source = sources[index];
    let table: StandbyTable;
    try {
      table = await prepareTable(client, source.spec);
    } catch (err) {
      throw named(source, err);
    }
    const r: Reading = {
      index,
      source,
      slot,
      table,
      buffer: new ReadAhead(READ_AHEAD_BYTES, CHUNK_BYTES, signal),
      hash: new ContentHash(),
      stopped: Promise.resolve(),
    };
    r.stopped = readCollection(r, log).catch((err: unknown) => {
      r.failure = named(source, err);
      signal();
    });
    return r;
  };

  try {
    for (let slot = 0; slot < parallelism; slot++) {
      await client.query(`CREATE TEMP TABLE ${stageName(slot)} (${rowTableColumns('staging')}) ON COMMIT DROP`);
      // The unique index speeds up the diff joins and refuses a collection that (through a bug
      // anywhere upstream) yielded the same _id twice, instead of silently keeping one of them.
      await client.query(`CREATE UNIQUE INDEX ON pg_temp.${stageName(slot)} (_id)`);
      freeSlots.push(slot);
    }
    for (;;) {
      // Start readers for free slots (views are recorded at once: there is nothing to read).
      while (next < sources.length && (sources[next].spec.kind === 'view' || freeSlots.length > 0)) {
        const index = next++;
        const source = sources[index];
        if (source.spec.kind === 'view') {
          results[index] = viewResult(source.spec, log);
          continue;
        }
        const slot = freeSlots.shift() as number;
        active.set(slot, await startReading(index, slot));
      }
      if (active.size === 0) break;
      const failed = [...active.values()].find((r) => r.failure);
      if (failed) throw failed.failure;
      // A collection read completely is applied first: that frees its slot for the next reader.
      const finished = [...active.values()].find((r) => r.buffer.drained);
      if (finished) {
        try {
          results[finished.index] = await applyCollection(client, finished, refreshQueryForm, log);
        } catch (err) {
          throw named(finished.source, err);
        }
        active.delete(finished.slot);
        freeSlots.push(finished.slot);
        continue;
      }
      // Else the fullest buffer worth a COPY (half full, or its reader finished) is written, in one.
      const ready = [...active.values()].filter((r) => r.buffer.worthWriting).sort((x, y) => y.buffer.heldBytes - x.buffer.heldBytes)[0];
      if (ready) {
        try {
          const into = ready.table.loadDirectly ? ready.table.relation : `pg_temp.${stageName(ready.slot)}`;
          const chunks = ready.buffer.take();
          await copyChunks(client, `${into} (${COPY_COLUMNS.map(quoteIdent).join(', ')})`, chunks);
          // Postgres has every byte of them now: their buffers take the next rows.
          ready.buffer.recycle(chunks);
        } catch (err) {
          throw named(ready.source, err);
        }
        continue;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
    return results as CollectionSyncResult[];
  } catch (err) {
    // Every reader stops (its cursor closed) before the caller rolls back and ends the source's session.
    for (const r of active.values()) r.buffer.abort(err as Error);
    await Promise.all([...active.values()].map((r) => r.stopped));
    throw err;
  }
}

/** Reads one collection into its read-ahead buffer, encoding and hashing each document as it passes. */
async function readCollection(r: Reading, log: Logger): Promise<void> {
  const { spec } = r.source;
  const progress = new Progress(`${spec.database}.${spec.collection}`, log, { total: r.source.estimatedDocuments });
  for await (const raw of r.source.documents()) {
    // The row is written into its chunk at once, so its bytes may stay a view into the source's buffer.
    const row = encodeDocumentView(raw);
    r.hash.add(row.hash, row.bson.length);
    progress.add(1, row.bson.length);
    const full = r.buffer.write(copyBinaryTupleLength(row), (out, at) => writeCopyBinaryTuple(row, out, at));
    if (full) await full;
  }
  progress.done();
  r.buffer.end();
}

function viewResult(spec: CollectionSpec, log: Logger): CollectionSyncResult {
  log.info(
    `${spec.database}.${spec.collection}: view on ${spec.options.viewOn}: its definition is recorded in the manifest, its results are not copied`,
  );
  const hash = new ContentHash();
  return {
    spec,
    schemaName: schemaNameFor(spec.database),
    tableName: tableNameFor(spec.collection),
    documents: 0,
    bsonBytes: 0,
    contentHash: hash.digest(),
    inserted: 0,
    updated: 0,
    deleted: 0,
  };
}

/**
 * Brings one table in line with its staging table (read completely), then empties the staging
 * table for the next collection. An `INSERT ... ON CONFLICT DO UPDATE ... WHERE` would look simpler
 * but locks every conflicting row, and each lock writes the tuple header (WAL) even when nothing
 * changes; the separate UPDATE / INSERT / DELETE write nothing for unchanged rows. A table loaded
 * directly (it was new or empty) already holds exactly the rows read: every one is an insert.
 */
async function applyCollection(client: pg.ClientBase, r: Reading, refreshQueryForm: boolean, log: Logger): Promise<CollectionSyncResult> {
  const { spec } = r.source;
  const { schemaName, tableName, relation: target } = r.table;
  let counts = { inserted: r.hash.documents, updated: 0, deleted: 0 };
  if (!r.table.loadDirectly) {
    const stage = `pg_temp.${stageName(r.slot)}`;
    // Statistics only for the join keys: samples of the document columns would be copied into
    // pg_statistic (a WAL-logged catalog) for nothing.
    // The statistics, the three diff statements and emptying the staging table go as one message (no
    // parameters: the simple query protocol runs them in order and answers each): one round trip
    // instead of five.
    const results = (await client.query(
      `ANALYZE ${stage} (_id, hash);
     UPDATE ${target} t SET doc = s.doc, bson = s.bson, hash = s.hash
     FROM ${stage} s WHERE t._id = s._id AND (t.hash <> s.hash${refreshQueryForm ? ' OR t.doc IS DISTINCT FROM s.doc' : ''});
     INSERT INTO ${target} (_id, doc, bson, hash)
     SELECT s._id, s.doc, s.bson, s.hash FROM ${stage} s
     WHERE NOT EXISTS (SELECT 1 FROM ${target} t WHERE t._id = s._id);
     DELETE FROM ${target} t WHERE NOT EXISTS (SELECT 1 FROM ${stage} s WHERE s._id = t._id);
     TRUNCATE ${stage}`,
    )) as unknown as pg.QueryResult[];
    const [, updated, inserted, deleted] = results;
    counts = { inserted: inserted.rowCount ?? 0, updated: updated.rowCount ?? 0, deleted: deleted.rowCount ?? 0 };
  }
  const result = {
    spec,
    schemaName,
    tableName,
    documents: r.hash.documents,
    bsonBytes: r.hash.bytes,
    contentHash: r.hash.digest(),
    ...counts,
  };
  log.info(
    `${spec.database}.${spec.collection}: ${result.documents} documents: ${result.inserted} inserted, ${result.updated} updated, ${result.deleted} deleted` +
      (r.table.loadDirectly ? ' (new or empty table, loaded directly)' : ', unchanged rows not rewritten'),
  );
  return result;
}

/**
 * The staging tables, one per collection read at once, temporary and made once per run, emptied
 * after each collection. Temporary tables write no WAL for their rows; creating one per collection
 * would still log its catalog entries, while truncating a table made in the same transaction
 * touches no catalog at all.
 */
function stageName(slot: number): string {
  return `supaneon_stage_${slot}`;
}

/** A collection's standby table, made ready before its first row is read. */
interface StandbyTable {
  schemaName: string;
  tableName: string;
  /** Schema and table, quoted. */
  relation: string;
  /** It was created by this run or held no row: the rows read are COPYed into it, not staged. */
  loadDirectly: boolean;
}

/**
 * Creates the collection's table if it does not exist, and learns whether it is empty. The table
 * is locked by the transaction from here on, so "empty" stays true until the commit.
 */
async function prepareTable(client: pg.ClientBase, spec: CollectionSpec): Promise<StandbyTable> {
  const schemaName = schemaNameFor(spec.database);
  const tableName = tableNameFor(spec.collection);
  const schema = quoteIdent(schemaName);
  const relation = `${schema}.${quoteIdent(tableName)}`;
  // The exact MongoDB name, for people browsing the standby (the manifest holds it too), set when the
  // table is created. A DO block creates and comments in one go, only when the table is missing: an
  // unconditional COMMENT would rewrite a catalog row (WAL) on every run.
  const comment = client.escapeLiteral(`MongoDB collection ${spec.database}.${spec.collection}, kept by supaneon-sync`);
  const create = `CREATE TABLE ${relation} (${rowTableColumns('standby')}); COMMENT ON TABLE ${relation} IS ${comment};`;
  const tag = '$supaneon_create$';
  if (create.includes(tag))
    throw new Error(`the table name for ${spec.database}.${spec.collection} contains ${tag}; exclude this collection`);
  // One message, one round trip (statements without parameters: the simple query protocol runs
  // them in order and answers each): create the table if it is missing, and lock it in
  // SHARE ROW EXCLUSIVE mode, as the diff statements would anyway: no other session can add a row
  // between the look at its emptiness and the load, until the commit.
  const results = (await client.query(
    `CREATE SCHEMA IF NOT EXISTS ${schema};
     DO ${tag} BEGIN IF to_regclass(${client.escapeLiteral(relation)}) IS NULL THEN ${create} END IF; END ${tag};
     LOCK TABLE ${relation} IN SHARE ROW EXCLUSIVE MODE;
     SELECT NOT EXISTS (SELECT 1 FROM ${relation}) AS empty`,
  )) as unknown as pg.QueryResult[];
  return { schemaName, tableName, relation, loadDirectly: results[3].rows[0].empty === true };
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
