// The stack's MongoDB-wire server (FerretDB, or the server in MONGODB_TEST_URI) serves the official
// driver at scale: 20,000 documents written and read back through a cursor over many batches.
import { MongoClient, type Document } from 'mongodb';
import { describeWithStack } from '../../test/support/describe-with-stack.js';

const DOCUMENTS = 20_000;
const INSERT_CHUNK = 1_000;
const BATCH_SIZE = 500; // 20,000 / 500 = 40 batches: the first from `find`, 39 from getMore

function documentNumber(n: number): Document {
  return {
    _id: n,
    n,
    label: `document ${n}`,
    even: n % 2 === 0,
    tags: [`t${n % 7}`, `t${n % 11}`],
    nested: { square: n * n, half: n / 2 },
  };
}

describeWithStack('MongoDB-wire server through the official driver', ['MONGODB_SRV_URL'], (env) => {
  const database = `stack_check_${process.pid}_${Date.now()}`;
  let client: MongoClient;
  let getMores = 0;

  beforeAll(async () => {
    client = new MongoClient(env.MONGODB_SRV_URL, { monitorCommands: true, serverSelectionTimeoutMS: 10_000 });
    client.on('commandStarted', (event) => {
      if (event.commandName === 'getMore') getMores += 1;
    });
    await client.connect();
  });

  afterAll(async () => {
    if (!client) return;
    try {
      await client.db(database).dropDatabase();
    } finally {
      await client.close();
    }
  });

  test(`inserts ${DOCUMENTS} documents and reads every one back through a batched cursor`, async () => {
    const collection = client.db(database).collection('documents');
    for (let start = 0; start < DOCUMENTS; start += INSERT_CHUNK) {
      const chunk = Array.from({ length: INSERT_CHUNK }, (_, i) => documentNumber(start + i));
      const result = await collection.insertMany(chunk, { ordered: true });
      expect(result.insertedCount).toBe(INSERT_CHUNK);
    }
    expect(await collection.countDocuments()).toBe(DOCUMENTS);

    const seen = new Uint8Array(DOCUMENTS);
    let read = 0;
    getMores = 0;
    for await (const doc of collection.find({}, { batchSize: BATCH_SIZE })) {
      const n: unknown = doc._id;
      if (typeof n !== 'number') throw new Error(`a document came back with a non-numeric _id: ${String(n)}`);
      expect(Number.isInteger(n) && n >= 0 && n < DOCUMENTS).toBe(true);
      expect(seen[n]).toBe(0);
      seen[n] = 1;
      expect(doc).toEqual(documentNumber(n));
      read += 1;
    }
    expect(read).toBe(DOCUMENTS);
    expect(seen.every((flag) => flag === 1)).toBe(true);
    expect(getMores).toBeGreaterThanOrEqual(DOCUMENTS / BATCH_SIZE - 1);

    // The server evaluates filters on what was stored: even n with n*n < 10,000 are 0, 2, …, 98.
    expect(await collection.countDocuments({ even: true, 'nested.square': { $lt: 10_000 } })).toBe(50);
  });
});
