// The parts of recover's MongoDB writer that decide before any server is involved: a stored document
// that the driver cannot write back byte for byte stops the recovery, naming the collection and the
// document, and nothing is sent (the client below points at a port nothing listens on).
import { MongoClient } from 'mongodb';
import {
  insertDocuments,
  MAX_DATABASE_NAME_BYTES,
  MAX_NAMESPACE_BYTES,
  targetNameProblems,
  type TargetCollection,
} from '../../src/restore-target.js';

function bsonWithUndefined(): Buffer {
  // { _id: Int32(7), legacy: <Undefined, type 0x06> }: valid BSON that js-bson can only write back as null.
  const body = Buffer.concat([
    Buffer.from([0x10]),
    Buffer.from('_id\0', 'latin1'),
    Buffer.from([7, 0, 0, 0]),
    Buffer.from([0x06]),
    Buffer.from('legacy\0', 'latin1'),
    Buffer.from([0x00]),
  ]);
  const size = Buffer.alloc(4);
  size.writeInt32LE(body.length + 4);
  return Buffer.concat([size, body]);
}

const target: TargetCollection = {
  source: { database: 'shop', collection: 'orders', kind: 'collection', options: {}, indexes: [] },
  database: 'restored_shop',
  collection: 'orders',
};

test('a document that cannot be re-inserted exactly stops the run, naming the collection and its _id', async () => {
  const client = new MongoClient('mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500');
  async function* rows(): AsyncIterable<Buffer> {
    yield bsonWithUndefined();
  }
  try {
    await expect(insertDocuments(client, target, rows())).rejects.toThrow(
      /^restored_shop\.orders: document _id \{"\$numberInt":"7"\}: .*bson column$/,
    );
  } finally {
    await client.close();
  }
});

describe('target names against MongoDB limits, checked before anything is written', () => {
  const target = (database: string, collection: string, prefix: string): TargetCollection => ({
    source: { database, collection, kind: 'collection', options: {}, indexes: [] },
    database: `${prefix}${database}`,
    collection,
  });

  test('a prefix that pushes a database name past 63 bytes names the collection, the prefix and the limit', () => {
    const db = 'd'.repeat(50);
    const problems = targetNameProblems(
      [target(db, 'orders', 'restored_copy_'), target('shop', 'orders', 'restored_copy_')],
      'restored_copy_',
    );
    expect(problems[0]).toContain(
      `${db}.orders: target database name "restored_copy_${db}" (target-database-prefix 'restored_copy_' + "${db}") is 64 bytes`,
    );
    expect(problems[0]).toContain(`at most ${MAX_DATABASE_NAME_BYTES} bytes`);
    expect(problems).toHaveLength(2);
    expect(problems[1]).toMatch(/^Fix: use a target-database-prefix of at most 13 bytes/);
  });

  test('a namespace past 255 bytes (multi-byte characters counted as bytes)', () => {
    const coll = 'ü'.repeat(125); // 250 bytes
    const problems = targetNameProblems([target('shop', coll, 'r_')], 'r_');
    expect(problems[0]).toMatch(/target namespace .* is 257 bytes; MongoDB allows at most 255 bytes/);
    expect(targetNameProblems([target('shop', coll, '')], '')).toEqual([]);
    expect(problems[0].length).toBeLessThan(1000);
    expect(MAX_NAMESPACE_BYTES).toBe(255);
  });

  test('names that fit pass', () => {
    expect(targetNameProblems([target('shop', 'orders', 'restored_')], 'restored_')).toEqual([]);
  });
});
