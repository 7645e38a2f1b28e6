/**
 * What people hand-write instead of a backup tool: load the collection with find().toArray(), then
 * one INSERT per document (autocommit) of its relaxed Extended JSON into a jsonb table. Run on a
 * subset of each collection (its first documents) because at full size it would take most of the
 * benchmark's time budget; the driver extrapolates it to the whole dataset and labels it so.
 */
import { BSON, MongoClient } from 'mongodb';
import { quoteIdent, tableNameFor } from '../../src/naming.js';
import type { Task, TaskResult } from '../protocol.js';
import { connectStandby, dropSchema } from '../standby-sql.js';
import { mongoUri } from './limits.js';

export const NAIVE_SCHEMA = 'bench_naive';

export async function naiveRun(task: Task): Promise<Omit<TaskResult, 'childMaxRssBytes'>> {
  const subset = task.subset ?? 0.1;
  const sql = await connectStandby('naive backup script');
  const mongo = new MongoClient(mongoUri());
  try {
    await dropSchema(sql, NAIVE_SCHEMA);
    await sql.query(`CREATE SCHEMA ${quoteIdent(NAIVE_SCHEMA)}`);
    const started = performance.now();
    await mongo.connect();
    let documents = 0;
    let bytes = 0;
    let readSeconds = 0;
    let insertSeconds = 0;
    for (const c of task.collections) {
      const table = `${quoteIdent(NAIVE_SCHEMA)}.${quoteIdent(tableNameFor(c.name))}`;
      await sql.query(`CREATE TABLE ${table} (_id text PRIMARY KEY, doc jsonb NOT NULL)`);
      const readStarted = performance.now();
      const docs = await mongo
        .db(task.database)
        .collection(c.name)
        .find({})
        .limit(Math.ceil(c.documents * subset))
        .toArray();
      const insertStarted = performance.now();
      readSeconds += (insertStarted - readStarted) / 1000;
      for (const doc of docs) {
        await sql.query(`INSERT INTO ${table} (_id, doc) VALUES ($1, $2)`, [String(doc._id), BSON.EJSON.stringify(doc, { relaxed: true })]);
        bytes += BSON.calculateObjectSize(doc);
      }
      insertSeconds += (performance.now() - insertStarted) / 1000;
      documents += docs.length;
    }
    return { wallSeconds: (performance.now() - started) / 1000, documents, bytes, extra: { subset, readSeconds, insertSeconds } };
  } finally {
    await mongo.close();
    await sql.end();
  }
}
