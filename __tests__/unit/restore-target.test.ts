// The parts of recover's MongoDB writer that decide before any server is involved: a stored document
// that the driver cannot write back byte for byte stops the recovery, naming the collection and the
// document, and nothing is sent (the client below points at a port nothing listens on).
import { MongoClient } from 'mongodb';
import { insertDocuments, type TargetCollection } from '../../src/restore-target.js';

function bsonWithUndefined(): Buffer {
  // { _id: Int32(7), legacy: <Undefined, type 0x06> }: valid BSON that js-bson can only write back as null.
  const body = Buffer.concat([
    Buffer.from([0x10]), Buffer.from('_id\0', 'latin1'), Buffer.from([7, 0, 0, 0]),
    Buffer.from([0x06]), Buffer.from('legacy\0', 'latin1'),
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
