/**
 * The MongoDB side of recover: prepare target collections with their recorded options, write stored
 * documents back in unordered bulk inserts bounded by bytes, build the recorded indexes after the data,
 * and read the result back to prove it equals the backup.
 *
 * Documents arrive as the exact BSON bytes MongoDB returned at backup time; `decodeExact` turns them
 * into values the driver serializes back to the same bytes, so what lands in the target is the source
 * document, not an approximation of it.
 */
import { createHash } from 'node:crypto';
import type { Db, Document, MongoClient } from 'mongodb';
import { ContentHash, decodeExact, idKey } from './codec.js';
import type { CollectionSpec } from './mongo.js';
import { rawDocuments, replyBatchSize } from './mongo.js';

/** Collection options MongoDB accepts back in `create` (listCollections reports a few read-only ones too). */
const CREATE_OPTION_KEYS = [
  'capped',
  'size',
  'max',
  'validator',
  'validationLevel',
  'validationAction',
  'collation',
  'timeseries',
  'expireAfterSeconds',
  'clusteredIndex',
  'changeStreamPreAndPostImages',
  'storageEngine',
  'indexOptionDefaults',
] as const;

/** Index fields the server reports but does not take back: the index version and the namespace. */
const INDEX_FIELDS_NOT_RECREATED = new Set(['v', 'ns']);

/**
 * Bytes of BSON per insert batch. Decoded for the driver a document takes several times its BSON
 * size in memory (nested documents many times), and INSERTS_IN_FLIGHT batches are held until the
 * server acknowledges them, plus the one being read: long enough for their objects to be promoted,
 * so they leave garbage in the old generation until a full collection. Half a MiB still amortizes
 * a round trip (three in flight keep a 40 ms network busy) at half the memory of 1 MiB batches.
 */
const DEFAULT_BATCH_BYTES = 512 * 1024;
/** A count bound too: many tiny documents decode into many objects, each with its own overhead. */
const DEFAULT_BATCH_DOCUMENTS = 1_000;

/**
 * insertMany batches written at once into a collection whose order does not matter: enough to keep
 * the server busy across a network's round trip, few enough that memory stays a few batches.
 */
const INSERTS_IN_FLIGHT = 3;

export interface TargetCollection {
  /** The collection as recorded in the backup. */
  source: CollectionSpec;
  /** Where it is written: `targetDatabasePrefix + source.database`, same collection name. */
  database: string;
  collection: string;
}

export interface InsertProgress {
  documents: number;
  bytes: number;
}

export interface RecoveryTotals {
  documents: number;
  bytes: number;
  /** ContentHash digest of the bytes sent (computed from the stored rows as they were read). */
  contentHash: string;
}

export interface ReadBack {
  documents: number;
  bytes: number;
  contentHash: string;
}

export function describeTarget(t: Pick<TargetCollection, 'database' | 'collection'>): string {
  return `${t.database}.${t.collection}`;
}

/**
 * MongoDB's naming limits (MongoDB Limits and Thresholds): a database name has fewer than 64
 * bytes and none of `/ \\ . " $` or NUL (Linux; Windows also refuses `* < > : | ?`, which
 * target-database-prefix already may not contain); a namespace `<database>.<collection>` has at most
 * 255 bytes (feature compatibility 4.4 and later; 235 for a sharded collection).
 */
export const MAX_DATABASE_NAME_BYTES = 63;
export const MAX_NAMESPACE_BYTES = 255;
// eslint-disable-next-line no-control-regex
const DATABASE_NAME_FORBIDDEN = /[/\\. "$\u0000]/;

/**
 * Every target whose name the server would refuse, as one message naming the collection, the
 * prefix and the limit, checked before anything is written (the server would only say
 * "Invalid namespace", after the collections before it were written). Empty when all fit.
 */
export function targetNameProblems(targets: readonly TargetCollection[], prefix: string): string[] {
  const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
  const problems: string[] = [];
  const room: number[] = [];
  for (const t of targets) {
    const source = `${t.source.database}.${t.source.collection}`;
    const dbBytes = bytes(t.database);
    const nsBytes = bytes(describeTarget(t));
    room.push(
      MAX_DATABASE_NAME_BYTES - bytes(t.source.database),
      MAX_NAMESPACE_BYTES - bytes(`${t.source.database}.${t.source.collection}`),
    );
    if (dbBytes > MAX_DATABASE_NAME_BYTES) {
      problems.push(
        `${source}: target database name "${t.database}" (target-database-prefix '${prefix}' + "${t.source.database}") is ${dbBytes} bytes; ` +
          `MongoDB allows at most ${MAX_DATABASE_NAME_BYTES} bytes in a database name`,
      );
    } else if (nsBytes > MAX_NAMESPACE_BYTES) {
      problems.push(
        `${source}: target namespace "${describeTarget(t)}" (target-database-prefix '${prefix}') is ${nsBytes} bytes; ` +
          `MongoDB allows at most ${MAX_NAMESPACE_BYTES} bytes in <database>.<collection>`,
      );
    }
    if (DATABASE_NAME_FORBIDDEN.test(t.database)) {
      problems.push(
        `${source}: target database name "${t.database}" contains one of / \\ . " $ or NUL, which MongoDB does not allow in a database name`,
      );
    }
  }
  if (problems.length > 0) {
    const longestPrefix = Math.min(...room);
    problems.push(
      longestPrefix > 0
        ? `Fix: use a target-database-prefix of at most ${longestPrefix} bytes for this backup, or recover these collections without a prefix`
        : 'Fix: recover these collections without target-database-prefix, into a deployment that does not hold them yet',
    );
  }
  return problems;
}

/** MongoDB's codes for "this server does not do that": NotImplemented, CommandNotSupported, InvalidOptions, IllegalOperation. */
const UNSUPPORTED_CODES = new Set([238, 115, 72, 20]);

function isUnsupported(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e?.code === 'number' && UNSUPPORTED_CODES.has(e.code)) return true;
  return typeof e?.message === 'string' && /not (implemented|supported)|unsupported/i.test(e.message);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Finds the targets that already hold data (documents in a collection, or a view of that name), so a
 * run can refuse all of them in one message before writing anything.
 */
export async function occupiedTargets(client: MongoClient, targets: readonly TargetCollection[]): Promise<string[]> {
  const occupied: string[] = [];
  const existingByDb = new Map<string, Map<string, string>>();
  for (const t of targets) {
    let existing = existingByDb.get(t.database);
    if (!existing) {
      const infos = await client.db(t.database).listCollections({}, { nameOnly: false }).toArray();
      existing = new Map(infos.map((i) => [i.name, String(i.type ?? 'collection')]));
      existingByDb.set(t.database, existing);
    }
    const type = existing.get(t.collection);
    if (type === undefined) continue;
    if (type === 'view') {
      occupied.push(`${describeTarget(t)} (a view)`);
      continue;
    }
    const one = await client
      .db(t.database)
      .collection(t.collection)
      .findOne({}, { projection: { _id: 1 } });
    if (one !== null) occupied.push(describeTarget(t));
  }
  return occupied;
}

/** Drops the target collection or view if it exists (drop-target). Nothing else in the database is touched. */
export async function dropTarget(client: MongoClient, t: TargetCollection): Promise<boolean> {
  const db = client.db(t.database);
  const exists = (await db.listCollections({ name: t.collection }, { nameOnly: true }).toArray()).length > 0;
  if (exists) await db.collection(t.collection).drop();
  return exists;
}

function creationOptions(spec: CollectionSpec): Document {
  const options: Document = {};
  for (const key of CREATE_OPTION_KEYS) {
    if (spec.options[key] !== undefined) options[key] = spec.options[key];
  }
  return options;
}

/**
 * Creates the collection (or view) with the options recorded at backup time. A server that refuses
 * an option it does not implement (FerretDB: validators, collations, time series…) still gets the
 * collection, plainly created, and the caller gets a warning naming what was left out. An existing,
 * empty collection is kept as it is (it holds nothing to lose, and dropping it is drop-target's job).
 */
export async function createTargetCollection(client: MongoClient, t: TargetCollection): Promise<string[]> {
  const db = client.db(t.database);
  const exists = (await db.listCollections({ name: t.collection }, { nameOnly: true }).toArray()).length > 0;
  if (exists) {
    return [
      `${describeTarget(t)} already exists (empty): kept with its current options; use drop-target: true to recreate it with the recorded ones`,
    ];
  }
  if (t.source.kind === 'view') return createView(db, t);
  // Options the server refuses are left out one by one (those its error names first), so a server that
  // does capped collections but not validators still gets a capped collection.
  const options = creationOptions(t.source);
  const refused: string[] = [];
  const reasons: string[] = [];
  for (;;) {
    try {
      await db.createCollection(t.collection, options);
      break;
    } catch (err) {
      const keys = Object.keys(options);
      if (keys.length === 0 || !isUnsupported(err)) throw err;
      const message = errorMessage(err);
      const named = keys.find((k) => message.includes(`"${k}"`) || message.includes(` ${k} `));
      for (const k of named ? [named] : keys) {
        delete options[k];
        refused.push(k);
      }
      reasons.push(message);
    }
  }
  if (refused.length === 0) return [];
  return [
    `${describeTarget(t)}: the target server refused the recorded options ${refused.join(', ')} (${reasons.join('; ')}); created without them`,
  ];
}

async function createView(db: Db, t: TargetCollection): Promise<string[]> {
  const { viewOn, pipeline, collation } = t.source.options;
  if (typeof viewOn !== 'string') {
    throw new Error(
      `${describeTarget(t)} is recorded as a view without viewOn; the backup manifest is damaged, recover the other collections with exclude`,
    );
  }
  const options: Document = { viewOn, pipeline: Array.isArray(pipeline) ? pipeline : [] };
  if (collation !== undefined) options.collation = collation;
  try {
    await db.createCollection(t.collection, options);
    return [];
  } catch (err) {
    if (!isUnsupported(err)) throw err;
    return [`${describeTarget(t)}: view not recreated, the target server does not support views (${errorMessage(err)})`];
  }
}

/**
 * Inserts the stored documents in unordered batches bounded by bytes and count. Up to
 * INSERTS_IN_FLIGHT batches are written while the next is read, so reading Postgres, the network's
 * round trips and MongoDB's writing overlap; memory holds at most that many batches plus the one
 * being read. Capped collections are written in order, one batch at a time, because their natural
 * order is part of what they are.
 */
export async function insertDocuments(
  client: MongoClient,
  t: TargetCollection,
  rows: AsyncIterable<Buffer>,
  opts: { batchBytes?: number; batchDocuments?: number; onProgress?: (p: InsertProgress) => void } = {},
): Promise<RecoveryTotals> {
  const batchBytes = opts.batchBytes ?? DEFAULT_BATCH_BYTES;
  const batchDocuments = opts.batchDocuments ?? DEFAULT_BATCH_DOCUMENTS;
  const collection = client.db(t.database).collection(t.collection);
  const ordered = t.source.options.capped === true;
  const hash = new ContentHash();
  const written: InsertProgress = { documents: 0, bytes: 0 };

  let batch: Document[] = [];
  let batchSize = 0;
  const inFlight = new Set<Promise<void>>();
  const limit = ordered ? 1 : INSERTS_IN_FLIGHT;
  let failure: { error: unknown } | undefined;

  const flush = async (): Promise<void> => {
    const docs = batch;
    const bytes = batchSize;
    batch = [];
    batchSize = 0;
    while (inFlight.size >= limit) await Promise.race(inFlight);
    if (failure) throw failure.error;
    const insert = (async () => {
      // Validators recorded on the collection may postdate the data: the backup is the truth, not the rule.
      // forceServerObjectId keeps the driver from touching the documents (it would add an `_id` property
      // to the Map form of a document with unusual key order); every stored document has its own `_id`.
      const result = await collection.insertMany(docs, { ordered, bypassDocumentValidation: true, forceServerObjectId: true });
      if (result.insertedCount !== docs.length) {
        throw new Error(`${describeTarget(t)}: the server acknowledged ${result.insertedCount} of ${docs.length} documents in a batch`);
      }
      written.documents += docs.length;
      written.bytes += bytes;
      opts.onProgress?.({ ...written });
    })().then(
      () => void inFlight.delete(insert),
      (error: unknown) => {
        failure ??= { error };
        inFlight.delete(insert);
      },
    );
    inFlight.add(insert);
  };

  try {
    for await (const raw of rows) {
      if (failure) throw failure.error;
      hash.add(createHash('sha256').update(raw).digest(), raw.length);
      batch.push(decodeForInsert(t, raw));
      batchSize += raw.length;
      if (batchSize >= batchBytes || batch.length >= batchDocuments) await flush();
    }
    if (batch.length > 0) await flush();
    await Promise.all(inFlight);
    if (failure) throw failure.error;
  } catch (err) {
    // Let running inserts settle (their failures are caught above), then report what stopped the loop.
    await Promise.all(inFlight);
    throw err;
  }
  return { documents: written.documents, bytes: written.bytes, contentHash: hash.digest() };
}

/** decodeExact, with the document named when it cannot be written back byte for byte. */
function decodeForInsert(t: TargetCollection, raw: Buffer): Document {
  try {
    return decodeExact(raw);
  } catch (err) {
    let id = '(unreadable _id)';
    try {
      id = idKey(raw);
    } catch {
      // the message below still names the collection
    }
    throw new Error(`${describeTarget(t)}: document _id ${id}: ${errorMessage(err)}; its exact bytes remain in the backup's bson column`, {
      cause: err,
    });
  }
}

export interface IndexOutcome {
  name: string;
  created: boolean;
  /** Why the server refused it (only when not created). */
  reason?: string;
}

/**
 * Builds the recorded indexes (after the data: one sort per index instead of maintaining each on every
 * insert). The `_id` index comes with the collection. A server that refuses an index (FerretDB knows
 * only 1/-1 keys and `unique`) does not stop the recovery: the refusal is returned for the report.
 */
export async function createRecordedIndexes(client: MongoClient, t: TargetCollection): Promise<IndexOutcome[]> {
  if (t.source.kind === 'view') return [];
  const outcomes: IndexOutcome[] = [];
  for (const recorded of t.source.indexes) {
    const name = String(recorded.name ?? JSON.stringify(recorded.key));
    if (name === '_id_') continue;
    const spec: Document = {};
    for (const [k, v] of Object.entries(recorded)) {
      if (!INDEX_FIELDS_NOT_RECREATED.has(k)) spec[k] = v;
    }
    try {
      await client.db(t.database).command({ createIndexes: t.collection, indexes: [spec] });
      outcomes.push({ name, created: true });
    } catch (err) {
      outcomes.push({ name, created: false, reason: errorMessage(err) });
    }
  }
  return outcomes;
}

/** Reads every document of the target back as raw BSON and hashes it exactly as backup and verify do. */
export async function readBack(client: MongoClient, t: TargetCollection, opts: { batchSize: number }): Promise<ReadBack> {
  const hash = new ContentHash();
  const spec: CollectionSpec = { ...t.source, database: t.database, collection: t.collection };
  // Each reply is held whole while it is hashed (raw documents are views into it), with the next one
  // on its way: replies are sized by bytes, as the backup's reads are.
  const batchSize = await replyBatchSize(client, t.database, t.collection, opts.batchSize);
  for await (const raw of rawDocuments(client, spec, { batchSize })) {
    hash.add(createHash('sha256').update(raw).digest(), raw.length);
  }
  return { documents: hash.documents, bytes: hash.bytes, contentHash: hash.digest() };
}

/** Whether a recreated view has the recorded definition (the server reports it in listCollections). */
export async function viewMatches(client: MongoClient, t: TargetCollection): Promise<boolean> {
  const [info] = await client.db(t.database).listCollections({ name: t.collection }).toArray();
  if (!info || info.type !== 'view') return false;
  const options = (info as { options?: Document }).options ?? {};
  return (
    options.viewOn === t.source.options.viewOn && JSON.stringify(options.pipeline ?? []) === JSON.stringify(t.source.options.pipeline ?? [])
  );
}
