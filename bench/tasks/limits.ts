/**
 * The physical limits a backup cannot beat on this machine, and the plain scan restore verification
 * is compared with:
 * - read: every document streamed from MongoDB with the driver (raw BSON, no decoding) and discarded;
 * - write: rows already encoded by the product's codec, COPYed (binary) from files into empty tables
 *   with the product's columns, key and compression, in one transaction;
 * - scan: every stored table of the standby read with COPY TO and discarded.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BSON, MongoClient } from 'mongodb';
import copyStreams from 'pg-copy-streams';
import { COPY_COLUMNS, copyBinaryHeader, copyBinaryTrailer, copyBinaryTuple, encodeDocument, rowTableColumns } from '../../src/codec.js';
import { BSON_SUFFIX, METADATA_SUFFIX, escapeCollectionName, metadataJson } from '../../src/dump-format.js';
import { quoteIdent, schemaNameFor, tableNameFor } from '../../src/naming.js';
import { generateDocument } from '../../devkit/generate.js';
import type { Task, TaskResult } from '../protocol.js';
import { connectStandby, dropSchema, tablesOf, walMark, walSince } from '../standby-sql.js';

/** The cursor batch the product uses by default (input batch-size), so both read alike. */
const READ_BATCH = 1000;
export const WRITE_LIMIT_SCHEMA = 'bench_write_limit';

export function mongoUri(): string {
  const uri = process.env.MONGODB_SRV_URL;
  if (!uri) throw new Error('MONGODB_SRV_URL is not set: run the benchmark through `npm run bench`, which reads the local stack settings');
  return uri;
}

export async function readLimit(task: Task): Promise<Omit<TaskResult, 'childMaxRssBytes'>> {
  const started = performance.now();
  const client = new MongoClient(mongoUri());
  let documents = 0;
  let bytes = 0;
  try {
    await client.connect();
    for (const c of task.collections) {
      const cursor = client.db(task.database).collection(c.name).find({}, { raw: true, batchSize: READ_BATCH });
      for await (const raw of cursor) {
        documents++;
        bytes += (raw as unknown as Buffer).length;
      }
    }
  } finally {
    await client.close();
  }
  return { wallSeconds: (performance.now() - started) / 1000, documents, bytes };
}

function copyFile(task: Task, collection: string): string {
  return path.join(task.workDir, `${collection}.copy`);
}

/** Writes each collection's rows, encoded by the product's codec, as a binary COPY file (not measured). */
export async function prepareRows(task: Task): Promise<Omit<TaskResult, 'childMaxRssBytes'>> {
  const started = performance.now();
  let documents = 0;
  let bytes = 0;
  for (const c of task.collections) {
    const seed = task.seed;
    async function* rows(): AsyncGenerator<Buffer> {
      yield copyBinaryHeader();
      for (let i = 0; i < c.documents; i++) {
        const raw = Buffer.from(BSON.serialize(generateDocument(c.stream, i, seed)));
        yield copyBinaryTuple(encodeDocument(raw));
      }
      yield copyBinaryTrailer();
    }
    await pipeline(rows, createWriteStream(copyFile(task, c.name)));
    documents += c.documents;
    bytes += (await stat(copyFile(task, c.name))).size;
  }
  return { wallSeconds: (performance.now() - started) / 1000, documents, bytes };
}

/**
 * Writes the dataset as a mongodump directory (not measured), for the pipeline's ceiling: a backup
 * from files, whose source is never the bottleneck. The same generated documents the source and the
 * write limit hold, with the product's own metadata format; the default _id index only, as loaded.
 */
export async function prepareDump(task: Task): Promise<Omit<TaskResult, 'childMaxRssBytes'>> {
  if (!task.dumpDir) throw new Error('prepare-dump needs task.dumpDir');
  const started = performance.now();
  const dir = path.join(task.dumpDir, task.database);
  await rm(task.dumpDir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  let documents = 0;
  let bytes = 0;
  for (const c of task.collections) {
    const seed = task.seed;
    async function* docs(): AsyncGenerator<Buffer> {
      for (let i = 0; i < c.documents; i++) {
        const raw = Buffer.from(BSON.serialize(generateDocument(c.stream, i, seed)));
        bytes += raw.length;
        yield raw;
      }
    }
    const base = path.join(dir, escapeCollectionName(c.name));
    await pipeline(docs, createWriteStream(`${base}${BSON_SUFFIX}`));
    const spec = {
      database: task.database,
      collection: c.name,
      kind: 'collection' as const,
      options: {},
      indexes: [{ v: 2, key: { _id: 1 }, name: '_id_' }],
    };
    await writeFile(`${base}${METADATA_SUFFIX}`, metadataJson(spec));
    documents += c.documents;
  }
  return { wallSeconds: (performance.now() - started) / 1000, documents, bytes };
}

export async function writeLimit(task: Task): Promise<Omit<TaskResult, 'childMaxRssBytes'>> {
  const client = await connectStandby();
  try {
    await dropSchema(client, WRITE_LIMIT_SCHEMA);
    await client.query(`CREATE SCHEMA ${quoteIdent(WRITE_LIMIT_SCHEMA)}`);
    for (const c of task.collections) {
      await client.query(
        // The product's own table definition, so the limit is the one the product can reach.
        `CREATE TABLE ${quoteIdent(WRITE_LIMIT_SCHEMA)}.${quoteIdent(tableNameFor(c.name))} (${rowTableColumns('standby')})`,
      );
    }
    const before = await walMark(client);
    const started = performance.now();
    let documents = 0;
    let bytes = 0;
    await client.query('BEGIN');
    for (const c of task.collections) {
      const target = `${quoteIdent(WRITE_LIMIT_SCHEMA)}.${quoteIdent(tableNameFor(c.name))}`;
      const copy = client.query(copyStreams.from(`COPY ${target} (${COPY_COLUMNS.map(quoteIdent).join(', ')}) FROM STDIN (FORMAT binary)`));
      await pipeline(createReadStream(copyFile(task, c.name), { highWaterMark: 256 * 1024 }), copy);
      documents += c.documents;
      bytes += (await stat(copyFile(task, c.name))).size;
    }
    await client.query('COMMIT');
    const wallSeconds = (performance.now() - started) / 1000;
    const wal = await walSince(client, before);
    return { wallSeconds, documents, bytes, walBytes: wal.generated, walLsnBytes: wal.lsnDistance };
  } finally {
    await client.end();
  }
}

/** COPY TO of every stored table of the measured database, discarded: the cheapest full read of it. */
export async function plainScan(task: Task): Promise<Omit<TaskResult, 'childMaxRssBytes'>> {
  const started = performance.now();
  const client = await connectStandby();
  try {
    const tables = await tablesOf(client, schemaNameFor(task.database));
    if (tables.length === 0)
      throw new Error(`the standby has no tables in schema ${schemaNameFor(task.database)}: run a full backup first`);
    let bytes = 0;
    for (const table of tables) {
      const out = client.query(copyStreams.to(`COPY ${table} TO STDOUT (FORMAT binary)`));
      await pipeline(
        out,
        new Writable({
          write(chunk: Buffer, _encoding, done) {
            bytes += chunk.length;
            done();
          },
        }),
      );
    }
    const documents = task.collections.reduce((n, c) => n + c.documents, 0);
    return { wallSeconds: (performance.now() - started) / 1000, documents, bytes, extra: { tables: tables.length } };
  } finally {
    await client.end();
  }
}
