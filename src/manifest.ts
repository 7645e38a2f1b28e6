/**
 * The manifest: what each backup run read and stored, kept in the metadata schema of the standby
 * (and therefore frozen into every snapshot branch). Backup writes it; restore, verify and recover
 * read it as the single truth about what a branch should contain.
 *
 * Index definitions and collection options are stored as canonical Extended JSON *text* inside
 * the jsonb columns (a jsonb string per index, one for the options): jsonb re-orders object keys,
 * and key order is meaningful there (compound index keys, `$sort` stages of a view pipeline).
 */
import type pg from 'pg';
import { BSON, type Document } from 'mongodb';

const { EJSON } = BSON;
import { META_SCHEMA, quoteIdent } from './naming.js';

/** Recorded in every manifest row; kept equal to package.json's version (checked by the backup tests). */
export const TOOL_VERSION = '0.1.0';

export type BackupStatus = 'running' | 'completed' | 'abandoned';
/** 'dump': read from mongodump files, as consistent as the dump itself was. */
export type Consistency = 'snapshot' | 'per-collection' | 'dump';
export type CollectionKind = 'collection' | 'timeseries' | 'view';

export interface GithubRun {
  repository: string;
  runId: string;
  sha: string;
  /** The run's page (absent in manifests written before it was recorded). */
  runUrl?: string;
}

export interface SourceDescription {
  hosts: string[];
  serverVersion: string;
  topology: string;
}

export interface BackupRecord {
  runId: string;
  toolVersion: string;
  status: BackupStatus;
  startedAt: Date;
  finishedAt: Date | null;
  clusterTimeStart: string | null;
  clusterTimeEnd: string | null;
  consistency: Consistency | null;
  github: GithubRun | null;
  source: SourceDescription | null;
}

export interface CollectionRecord {
  runId: string;
  database: string;
  collection: string;
  schemaName: string;
  tableName: string;
  kind: CollectionKind;
  documents: number;
  bsonBytes: number;
  contentHash: string;
  indexes: Document[];
  options: Document;
}

export interface Manifest {
  backup: BackupRecord;
  collections: CollectionRecord[];
}

const S = quoteIdent(META_SCHEMA);
export const BACKUPS_TABLE = `${S}.backups`;
const COLLECTIONS_TABLE = `${S}.backup_collections`;

/** Creates the metadata schema and tables when missing; safe to run on every backup. */
export async function ensureManifestTables(client: pg.ClientBase): Promise<void> {
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${S}`);
  await client.query(`CREATE TABLE IF NOT EXISTS ${BACKUPS_TABLE} (
    run_id text PRIMARY KEY,
    tool_version text NOT NULL,
    status text NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    cluster_time_start text,
    cluster_time_end text,
    consistency text,
    github jsonb,
    source jsonb
  )`);
  await client.query(`CREATE TABLE IF NOT EXISTS ${COLLECTIONS_TABLE} (
    run_id text REFERENCES ${BACKUPS_TABLE}(run_id) ON DELETE CASCADE,
    database text NOT NULL,
    collection text NOT NULL,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    kind text NOT NULL,
    documents bigint NOT NULL,
    bson_bytes bigint NOT NULL,
    content_hash text NOT NULL,
    indexes jsonb NOT NULL,
    options jsonb NOT NULL,
    PRIMARY KEY (run_id, database, collection)
  )`);
}

export async function insertBackup(client: pg.ClientBase, b: BackupRecord): Promise<void> {
  await client.query(
    `INSERT INTO ${BACKUPS_TABLE} (run_id, tool_version, status, started_at, finished_at, cluster_time_start,
       cluster_time_end, consistency, github, source)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [
      b.runId,
      b.toolVersion,
      b.status,
      b.startedAt,
      b.finishedAt,
      b.clusterTimeStart,
      b.clusterTimeEnd,
      b.consistency,
      b.github === null ? null : JSON.stringify(b.github),
      b.source === null ? null : JSON.stringify(b.source),
    ],
  );
}

export async function insertCollection(client: pg.ClientBase, c: CollectionRecord): Promise<void> {
  await insertCollections(client, [c]);
}

/** Columns of one backup_collections row, in the order insertCollections binds them. */
const COLLECTION_COLUMNS = 11;
/** Rows per INSERT: Postgres binds at most 65,535 parameters in one statement. */
const COLLECTION_ROWS_PER_INSERT = 1000;

/**
 * Records the collections of a run, up to a thousand rows per statement: over a network each
 * statement is a round trip, and a run may record hundreds of collections.
 */
export async function insertCollections(client: pg.ClientBase, records: readonly CollectionRecord[]): Promise<void> {
  for (let start = 0; start < records.length; start += COLLECTION_ROWS_PER_INSERT) {
    const part = records.slice(start, start + COLLECTION_ROWS_PER_INSERT);
    const values = part.map(
      (_, row) => `(${Array.from({ length: COLLECTION_COLUMNS }, (_, col) => `$${row * COLLECTION_COLUMNS + col + 1}`).join(', ')})`,
    );
    await client.query(
      `INSERT INTO ${COLLECTIONS_TABLE} (run_id, database, collection, schema_name, table_name, kind, documents,
         bson_bytes, content_hash, indexes, options)
       VALUES ${values.join(', ')}`,
      part.flatMap((c) => [
        c.runId,
        c.database,
        c.collection,
        c.schemaName,
        c.tableName,
        c.kind,
        c.documents,
        c.bsonBytes,
        c.contentHash,
        JSON.stringify(c.indexes.map((ix) => EJSON.stringify(ix, { relaxed: false }))),
        JSON.stringify(EJSON.stringify(c.options, { relaxed: false })),
      ]),
    );
  }
}

/** Marks the run completed and every other run still marked running (runs that died) abandoned. */
export async function completeBackup(
  client: pg.ClientBase,
  runId: string,
  end: { finishedAt: Date; clusterTimeEnd: string | null; consistency: Consistency },
): Promise<void> {
  // One statement (one round trip): the two updates touch disjoint rows.
  const r = await client.query(
    `WITH abandoned AS (UPDATE ${BACKUPS_TABLE} SET status = 'abandoned' WHERE status = 'running' AND run_id <> $1)
     UPDATE ${BACKUPS_TABLE} SET status = 'completed', finished_at = $2, cluster_time_end = $3, consistency = $4
     WHERE run_id = $1`,
    [runId, end.finishedAt, end.clusterTimeEnd, end.consistency],
  );
  if (r.rowCount !== 1) throw new Error(`the manifest row of backup run ${runId} disappeared during the backup`);
}

/** Whether this database already has the manifest tables (a standby that was never backed up to has none). */
async function manifestExists(client: pg.ClientBase): Promise<boolean> {
  const r = await client.query(`SELECT to_regclass($1) IS NOT NULL AS present`, [`${META_SCHEMA}.backup_collections`]);
  return r.rows[0].present === true;
}

/**
 * The manifest of one run (by run id) or, without one, of the newest completed run.
 * Throws an error that says what is missing when there is none.
 */
export async function readManifest(client: pg.ClientBase, runId?: string): Promise<Manifest> {
  if (!(await manifestExists(client))) {
    throw new Error(`no ${META_SCHEMA} manifest found: this database has never received a completed supaneon-sync backup`);
  }
  const b = runId
    ? await client.query(`SELECT * FROM ${BACKUPS_TABLE} WHERE run_id = $1`, [runId])
    : await client.query(`SELECT * FROM ${BACKUPS_TABLE} WHERE status = 'completed' ORDER BY finished_at DESC, started_at DESC LIMIT 1`);
  if (b.rowCount === 0) {
    throw new Error(
      runId
        ? `backup run ${runId} is not in the ${META_SCHEMA} manifest of this branch`
        : `the ${META_SCHEMA} manifest of this branch has no completed backup`,
    );
  }
  const backup = backupFromRow(b.rows[0]);
  const c = await client.query(`SELECT * FROM ${COLLECTIONS_TABLE} WHERE run_id = $1 ORDER BY database, collection`, [backup.runId]);
  return { backup, collections: c.rows.map(collectionFromRow) };
}

function backupFromRow(r: Record<string, unknown>): BackupRecord {
  return {
    runId: r.run_id as string,
    toolVersion: r.tool_version as string,
    status: r.status as BackupStatus,
    startedAt: r.started_at as Date,
    finishedAt: (r.finished_at as Date | null) ?? null,
    clusterTimeStart: (r.cluster_time_start as string | null) ?? null,
    clusterTimeEnd: (r.cluster_time_end as string | null) ?? null,
    consistency: (r.consistency as Consistency | null) ?? null,
    github: (r.github as GithubRun | null) ?? null,
    source: (r.source as SourceDescription | null) ?? null,
  };
}

function collectionFromRow(r: Record<string, unknown>): CollectionRecord {
  return {
    runId: r.run_id as string,
    database: r.database as string,
    collection: r.collection as string,
    schemaName: r.schema_name as string,
    tableName: r.table_name as string,
    kind: r.kind as CollectionKind,
    // bigint arrives as text; collections stay far below 2^53 documents and bytes.
    documents: Number(r.documents),
    bsonBytes: Number(r.bson_bytes),
    contentHash: r.content_hash as string,
    indexes: (r.indexes as string[]).map((text) => EJSON.parse(text, { relaxed: false }) as Document),
    options: EJSON.parse(r.options as string, { relaxed: false }) as Document,
  };
}

/** The tables the newest completed backup wrote: the only tables a later backup may drop. */
export async function tablesOfLastBackup(
  client: pg.ClientBase,
): Promise<{ database: string; collection: string; schemaName: string; tableName: string }[]> {
  if (!(await manifestExists(client))) return [];
  const r = await client.query(
    `SELECT c.database, c.collection, c.schema_name, c.table_name FROM ${COLLECTIONS_TABLE} c
     WHERE c.kind <> 'view' AND c.run_id = (
       SELECT run_id FROM ${BACKUPS_TABLE} WHERE status = 'completed' ORDER BY finished_at DESC, started_at DESC LIMIT 1)`,
  );
  return r.rows.map((x) => ({ database: x.database, collection: x.collection, schemaName: x.schema_name, tableName: x.table_name }));
}
