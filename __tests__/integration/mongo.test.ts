// The MongoDB reader against the MongoDB-wire test server: raw cursors yield each document's exact
// bytes, the selection picks the right collections, indexes and options are recorded without
// server noise, and an unreachable server fails fast with a message that names it.
import net from 'node:net';
import { BSON, Decimal128, Int32, MaxKey, MinKey, MongoClient, type Document } from 'mongodb';
import {
  averageDocumentBytes,
  connectMongo,
  describeMongoUri,
  describeSource,
  estimateDocumentCount,
  listSelectedCollections,
  rawDocuments,
  replyBatchSize,
  snapshotTimeOf,
  type CollectionSpec,
} from '../../src/mongo.js';
import { loadCollection, loadDataset, shopDataset } from '../../devkit/shop.js';
import { randomDocuments } from '../../test/support/random-documents.js';
import { describeWithStack } from '../../test/support/describe-with-stack.js';

// Own database names: the MongoDB-wire server is shared with test files running in parallel.
const suffix = `${process.pid}_${Date.now().toString(36)}`;
const DB_A = `mongo_a_${suffix}`;
const DB_B = `mongo_b_${suffix}`;

const idKey = (raw: Buffer) => BSON.EJSON.stringify(BSON.deserialize(raw, { promoteValues: false })._id, { relaxed: false });

describeWithStack('MongoDB reader', ['MONGODB_SRV_URL'], (env) => {
  let client: MongoClient;

  beforeAll(async () => {
    client = await connectMongo(env.MONGODB_SRV_URL);
    await loadCollection(client, DB_A, 'random', randomDocuments(42, 600));
    await loadDataset(client, DB_B, shopDataset({ customers: 30, products: 10, orders: 40 }));
    await client.db(DB_B).createCollection('capped_log', { capped: true, size: 65536 });
    // system.* collections are the server's, never user data. (A server that refuses writes to
    // system.js simply has none here to skip.)
    await client
      .db(DB_B)
      .collection('system.js')
      .insertOne({ _id: 'fn', body: 'x' } as Document)
      .catch(() => undefined);
  });

  afterAll(async () => {
    if (!client) return;
    for (const db of [DB_A, DB_B])
      await client
        .db(db)
        .dropDatabase()
        .catch(() => undefined);
    await client.close();
  });

  test('raw documents are the exact BSON bytes of what was inserted, one Buffer each, across batches', async () => {
    const expected = new Map<string, string>();
    for (const doc of randomDocuments(42, 600)) {
      const bytes = Buffer.from(BSON.serialize(doc));
      expected.set(idKey(bytes), bytes.toString('hex'));
    }
    const spec: CollectionSpec = { database: DB_A, collection: 'random', kind: 'collection', options: {}, indexes: [] };
    let count = 0;
    for await (const raw of rawDocuments(client, spec, { batchSize: 7 })) {
      expect(Buffer.isBuffer(raw)).toBe(true);
      // One document per Buffer: its length prefix covers the whole buffer.
      expect(raw.readInt32LE(0)).toBe(raw.length);
      expect(raw.toString('hex')).toBe(expected.get(idKey(raw)));
      count++;
    }
    expect(count).toBe(600);
  });

  test('selection: databases, include and exclude; system collections skipped; sorted', async () => {
    const all = await listSelectedCollections(client, { databases: [DB_A, DB_B], include: [], exclude: [] });
    expect(all.map((s) => `${s.database}.${s.collection}`)).toEqual([
      `${DB_A}.random`,
      `${DB_B}.capped_log`,
      `${DB_B}.customers`,
      `${DB_B}.orders`,
      `${DB_B}.products`,
    ]);

    const onlyB = await listSelectedCollections(client, { databases: [DB_B], include: [`${DB_B}.c*`], exclude: [`${DB_B}.capped*`] });
    expect(onlyB.map((s) => s.collection)).toEqual(['customers']);

    const everything = await listSelectedCollections(client, { databases: [], include: [], exclude: [] });
    const names = everything.map((s) => `${s.database}.${s.collection}`);
    expect(names).toEqual(expect.arrayContaining([`${DB_A}.random`, `${DB_B}.orders`]));
    expect(names.some((n) => n.startsWith('admin.') || n.startsWith('local.') || n.startsWith('config.'))).toBe(false);
    expect(names.some((n) => n.split('.').slice(1).join('.').startsWith('system.'))).toBe(false);
  });

  test('indexes are recorded in key order without v/ns; options are kept', async () => {
    const specs = await listSelectedCollections(client, { databases: [DB_B], include: [], exclude: [] });
    const customers = specs.find((s) => s.collection === 'customers')!;
    expect(customers.kind).toBe('collection');
    for (const ix of customers.indexes) {
      expect(ix).not.toHaveProperty('v');
      expect(ix).not.toHaveProperty('ns');
    }
    const compound = customers.indexes.find((ix) => ix.name === 'address.city_1_age_-1')!;
    expect(Object.keys(compound.key)).toEqual(['address.city', 'age']);
    expect(customers.indexes.find((ix) => ix.name === 'email_1')).toMatchObject({ key: { email: 1 }, unique: true });
    const capped = specs.find((s) => s.collection === 'capped_log')!;
    expect(capped.options).toMatchObject({ capped: true, size: 65536 });
  });

  test('an empty collection yields nothing; a tiny batch size still yields every document once', async () => {
    await client.db(DB_A).createCollection('empty');
    const empty: Buffer[] = [];
    for await (const raw of rawDocuments(
      client,
      { database: DB_A, collection: 'empty', kind: 'collection', options: {}, indexes: [] },
      { batchSize: 1 },
    )) {
      empty.push(raw);
    }
    expect(empty).toHaveLength(0);
    await client
      .db(DB_A)
      .collection('few')
      .insertMany([{ _id: new Int32(1) }, { _id: new Int32(2) }, { _id: new Int32(3) }] as Document[]);
    const seen: string[] = [];
    for await (const raw of rawDocuments(
      client,
      { database: DB_A, collection: 'few', kind: 'collection', options: {}, indexes: [] },
      { batchSize: 1 },
    )) {
      seen.push(idKey(raw));
    }
    expect(seen.sort()).toEqual(['{"$numberInt":"1"}', '{"$numberInt":"2"}', '{"$numberInt":"3"}']);
  });

  test("count estimates: the collection's size when the server answers in time, nothing when it cannot", async () => {
    expect(await estimateDocumentCount(client, DB_A, 'random')).toBe(600);
    expect(await estimateDocumentCount(client, DB_B, 'orders')).toBe(40);
    // An estimate that cannot arrive in time is no estimate (the caller shows no ETA), never an
    // error or a wait: asked of a server that accepts connections and never answers.
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((socket) => void sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    const stalled = new MongoClient(`mongodb://127.0.0.1:${port}/?serverSelectionTimeoutMS=30000&connectTimeoutMS=30000`);
    try {
      const started = Date.now();
      expect(await estimateDocumentCount(stalled, DB_A, 'random', { timeoutMs: 300 })).toBeUndefined();
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await stalled.close(true);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  test('replies are sized by bytes: the average document size from the server, the batch-size input as the bound', async () => {
    // 600 random documents: the server's figure may count its storage overhead, never less than the BSON.
    const bson = await client
      .db(DB_A)
      .collection('random')
      .find({}, { raw: true })
      .toArray()
      .then((docs) => docs.reduce((n, d) => n + (d as unknown as Buffer).length, 0));
    const average = await averageDocumentBytes(client, DB_A, 'random');
    expect(average).toBeDefined();
    expect(average as number).toBeGreaterThanOrEqual((bson / 600) * 0.9);
    expect(await replyBatchSize(client, DB_A, 'random', 7)).toBe(7);
    // No statistics for a collection that does not exist: the small fallback, not an error.
    expect(await averageDocumentBytes(client, DB_A, 'no_such_collection')).toBeUndefined();
  });

  test('an unreachable server fails within seconds, naming the host but not the credentials', async () => {
    const started = Date.now();
    const uri = 'mongodb://someone:s3cret-pw@127.0.0.1:1/?authMechanism=PLAIN';
    await expect(connectMongo(uri, { connectTimeoutMs: 1500 })).rejects.toThrow(/cannot reach MongoDB at 127\.0\.0\.1:1/);
    await connectMongo(uri, { connectTimeoutMs: 1500 }).catch((e: Error) => expect(e.message).not.toContain('s3cret-pw'));
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(describeMongoUri('mongodb+srv://u:p@cluster0.example.net/db?x=1')).toBe('cluster0.example.net');
  });
});

// Views, time series, validators and the BSON types FerretDB lacks exist only on a real MongoDB:
// these run when MONGODB_TEST_URI names one (the local stack then serves it as MONGODB_SRV_URL).
const realMongo = Boolean(process.env.MONGODB_TEST_URI && process.env.MONGODB_SRV_URL);
(realMongo ? describe : describe.skip)(
  `MongoDB reader against a real MongoDB${realMongo ? '' : ' (skipped: MONGODB_TEST_URI is not set)'}`,
  () => {
    const DB = `mongo_real_${suffix}`;
    let client: MongoClient;

    beforeAll(async () => {
      client = await connectMongo(process.env.MONGODB_SRV_URL!);
      const db = client.db(DB);
      await db.createCollection('people', { validator: { $jsonSchema: { required: ['name'] } }, collation: { locale: 'fr' } });
      await db.collection('people').insertOne({ name: 'Zoë' });
      await db.createCollection('metrics', { timeseries: { timeField: 't', metaField: 'm' } });
      await db.collection('metrics').insertOne({ t: new Date(1_700_000_000_000), m: 'cpu', v: 1 });
      await db.createCollection('adults', { viewOn: 'people', pipeline: [{ $sort: { name: 1, _id: -1 } }] });
    });

    afterAll(async () => {
      await client
        ?.db(DB)
        .dropDatabase()
        .catch(() => undefined);
      await client?.close();
    });

    test('views, time series and validated collections are listed with their kind and options', async () => {
      const specs = await listSelectedCollections(client, { databases: [DB], include: [], exclude: [] });
      expect(specs.map((s) => [s.collection, s.kind])).toEqual([
        ['adults', 'view'],
        ['metrics', 'timeseries'],
        ['people', 'collection'],
      ]);
      const view = specs.find((s) => s.kind === 'view')!;
      expect(view.options.viewOn).toBe('people');
      expect(Object.keys(view.options.pipeline[0].$sort)).toEqual(['name', '_id']);
      expect(view.indexes).toEqual([]);
      expect(specs.find((s) => s.collection === 'people')!.options).toMatchObject({ validator: { $jsonSchema: { required: ['name'] } } });
      expect(specs.find((s) => s.collection === 'metrics')!.options.timeseries).toMatchObject({ timeField: 't', metaField: 'm' });
    });

    test('types FerretDB refuses come back as their exact bytes', async () => {
      const doc = {
        _id: new Int32(1),
        d: Decimal128.fromString('-1.50E-400'),
        lo: new MinKey(),
        hi: new MaxKey(),
        nested: [[1, [2]], []],
        nan: NaN,
        negZero: -0,
      };
      await client
        .db(DB)
        .collection('types')
        .insertOne(doc as Document);
      const spec: CollectionSpec = { database: DB, collection: 'types', kind: 'collection', options: {}, indexes: [] };
      const got: Buffer[] = [];
      for await (const raw of rawDocuments(client, spec, { batchSize: 10 })) got.push(raw);
      expect(got).toHaveLength(1);
      expect(got[0].toString('hex')).toBe(Buffer.from(BSON.serialize(doc)).toString('hex'));
    });

    test('a replica set serves one snapshot across collections and reports its time', async () => {
      const source = await describeSource(client, process.env.MONGODB_SRV_URL!);
      if (source.topology === 'standalone') {
        // A standalone server has no snapshot reads: the backup then reports per-collection consistency.
        expect(source.snapshotReads).toBe(false);
        return;
      }
      expect(source.snapshotReads).toBe(true);
      const session = client.startSession({ snapshot: true });
      try {
        const spec: CollectionSpec = { database: DB, collection: 'people', kind: 'collection', options: {}, indexes: [] };
        for await (const raw of rawDocuments(client, spec, { batchSize: 10, session })) expect(raw.length).toBeGreaterThan(0);
        expect(snapshotTimeOf(session)).toMatch(/^\{"\$timestamp":\{"t":\d+,"i":\d+\}\}$/);
      } finally {
        await session.endSession();
      }
    });
  },
);
