/**
 * The benchmark's dataset in MongoDB: loaded once per (database, document count, seed, generator
 * version), changed by incremental rounds during a run, and put back to its generated state at the
 * start of the next run (so a second run reuses it instead of reloading for minutes).
 *
 * The state lives in a separate database (`bench_meta`), never in the measured one, so it is not part
 * of what is backed up and measured.
 */
import { BSON, type Collection, type MongoClient } from 'mongodb';
import { GENERATOR_VERSION, generateDocument, planDataset, roundChanges, type CollectionPlan } from '../devkit/generate.js';

const META_DATABASE = 'bench_meta';
const META_COLLECTION = 'state';
const INSERT_BATCH_DOCS = 1000;
const INSERT_BATCH_BYTES = 8 * 1024 * 1024;

interface Marker {
  /** The measured database's name. */
  _id: string;
  generatorVersion: number;
  seed: number;
  documents: number;
  bsonBytes: number;
  /** Incremental rounds applied and not yet undone. */
  dirtyRounds: number[];
}

export interface DatasetInfo {
  database: string;
  documents: number;
  bsonBytes: number;
  collections: CollectionPlan[];
  /** Seconds spent loading it in this run (0 when the loaded dataset was reused). */
  loadSeconds: number;
  reused: boolean;
}

const INDEXES: Record<string, { key: BSON.Document; unique?: boolean; name: string }[]> = {
  customers: [{ key: { email: 1 }, unique: true, name: 'email_unique' }],
  orders: [{ key: { customerId: 1, placedAt: -1 }, name: 'customer_recent' }],
  events: [{ key: { at: 1 }, name: 'at' }],
  attachments: [],
};

function markerCollection(client: MongoClient) {
  return client.db(META_DATABASE).collection<Marker>(META_COLLECTION);
}

/** Makes `bench` hold exactly the generated dataset of `documents` documents, loading it if needed. */
export async function ensureDataset(
  client: MongoClient,
  database: string,
  documents: number,
  seed: number,
  log: (line: string) => void,
): Promise<DatasetInfo> {
  const plan = planDataset(documents);
  const marker = await markerCollection(client).findOne({ _id: database });
  if (marker && marker.generatorVersion === GENERATOR_VERSION && marker.seed === seed && marker.documents === documents) {
    if (marker.dirtyRounds.length > 0) {
      log(`undoing incremental rounds ${marker.dirtyRounds.join(', ')} left in ${database} by an earlier run`);
      await undoRounds(client, database, documents, seed);
    }
    if (await collectionsPresent(client, database, plan)) {
      log(`reusing the loaded dataset ${database}: ${documents} documents, ${(marker.bsonBytes / 1e6).toFixed(1)} MB of BSON`);
      return { database, documents, bsonBytes: marker.bsonBytes, collections: plan, loadSeconds: 0, reused: true };
    }
    log(`the dataset in ${database} lacks some of its collections; reloading it`);
  }
  const started = performance.now();
  const bsonBytes = await loadDataset(client, database, plan, seed, log);
  const loadSeconds = (performance.now() - started) / 1000;
  await markerCollection(client).replaceOne(
    { _id: database },
    { generatorVersion: GENERATOR_VERSION, seed, documents, bsonBytes, dirtyRounds: [] },
    { upsert: true },
  );
  return { database, documents, bsonBytes, collections: plan, loadSeconds, reused: false };
}

/**
 * Only the collections' presence is checked: counting documents costs FerretDB a full scan (about a
 * minute at 200,000 documents), and nothing but this benchmark writes to its databases.
 */
async function collectionsPresent(client: MongoClient, database: string, plan: CollectionPlan[]): Promise<boolean> {
  const names = new Set((await client.db(database).listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name));
  return plan.every((c) => names.has(c.name));
}

/** insertMany in batches bounded by count and bytes, generation overlapping the batch in flight. */
async function insertBatched(collection: Collection, docs: Iterable<BSON.Document>): Promise<number> {
  let inFlight: Promise<unknown> = Promise.resolve();
  let batch: BSON.Document[] = [];
  let batchBytes = 0;
  let total = 0;
  const flush = async () => {
    const ready = batch;
    batch = [];
    batchBytes = 0;
    await inFlight;
    inFlight = collection.insertMany(ready, { ordered: false });
  };
  for (const doc of docs) {
    const size = BSON.calculateObjectSize(doc);
    total += size;
    batch.push(doc);
    batchBytes += size;
    if (batch.length >= INSERT_BATCH_DOCS || batchBytes >= INSERT_BATCH_BYTES) await flush();
  }
  if (batch.length > 0) await flush();
  await inFlight;
  return total;
}

function* generated(stream: number, count: number, seed: number): Generator<BSON.Document> {
  for (let i = 0; i < count; i++) yield generateDocument(stream, i, seed);
}

async function loadDataset(
  client: MongoClient,
  database: string,
  plan: CollectionPlan[],
  seed: number,
  log: (line: string) => void,
): Promise<number> {
  await markerCollection(client).deleteOne({ _id: database });
  const db = client.db(database);
  await db.dropDatabase();
  let bsonBytes = 0;
  for (const c of plan) {
    const started = performance.now();
    await db.createCollection(c.name);
    const collection = db.collection(c.name);
    bsonBytes += await insertBatched(collection, generated(c.stream, c.documents, seed));
    for (const ix of INDEXES[c.name] ?? []) await collection.createIndex(ix.key, { name: ix.name, unique: ix.unique ?? false });
    const seconds = (performance.now() - started) / 1000;
    log(`loaded ${database}.${c.name}: ${c.documents} documents in ${seconds.toFixed(1)} s (${Math.round(c.documents / seconds)} docs/s)`);
  }
  return bsonBytes;
}

export interface RoundSummary {
  round: number;
  updated: number;
  deleted: number;
  inserted: number;
}

/**
 * Changes 1% of every collection: three shards updated (a `rev` and an `updatedAt` field added), one
 * deleted, as many new documents inserted. Recorded in the marker first, so a crash leaves something
 * that the next run undoes. Updates are written as delete + insert of the new version: FerretDB
 * (SQLite) scans the whole collection for every update or delete statement, even by _id, so one
 * filtered delete per collection is the only affordable way to change 1% of 200,000 documents.
 */
export async function applyRound(
  client: MongoClient,
  database: string,
  documents: number,
  seed: number,
  round: number,
): Promise<RoundSummary> {
  const plan = planDataset(documents);
  await markerCollection(client).updateOne({ _id: database }, { $addToSet: { dirtyRounds: round } });
  const summary: RoundSummary = { round, updated: 0, deleted: 0, inserted: 0 };
  const updatedAt = new Date(Date.UTC(2025, 0, 1) + round * 60_000);
  for (const c of plan) {
    const changes = roundChanges(c.documents, round);
    const collection = client.db(database).collection(c.name);
    const removed = await collection.deleteMany({ shard: { $in: [...changes.updatedShards, changes.deletedShard] } });
    const updated = changes.changed
      .map((i) => generateDocument(c.stream, i, seed))
      .filter((doc) => changes.updatedShards.includes((doc.shard as BSON.Int32).value))
      .map((doc) => ({ ...doc, rev: new BSON.Int32(round), updatedAt }));
    const inserted = changes.inserted.map((i) => generateDocument(c.stream, i, seed));
    await insertBatched(collection, [...updated, ...inserted]);
    summary.updated += updated.length;
    summary.deleted += removed.deletedCount - updated.length;
    summary.inserted += inserted.length;
  }
  return summary;
}

/** Undoes every round applied and not yet undone (one scan per collection), leaving the generated dataset. */
export async function undoRounds(client: MongoClient, database: string, documents: number, seed: number): Promise<void> {
  const marker = await markerCollection(client).findOne({ _id: database });
  if (!marker || marker.dirtyRounds.length === 0) return;
  for (const c of planDataset(documents)) {
    const rounds = marker.dirtyRounds.map((round) => roundChanges(c.documents, round));
    const shards = rounds.flatMap((r) => [...r.updatedShards, r.deletedShard, r.insertedShard]);
    const collection = client.db(database).collection(c.name);
    await collection.deleteMany({ shard: { $in: shards } });
    await insertBatched(
      collection,
      (function* () {
        for (const r of rounds) for (const i of r.changed) yield generateDocument(c.stream, i, seed);
      })(),
    );
  }
  await markerCollection(client).updateOne({ _id: database }, { $set: { dirtyRounds: [] } });
}
