// The Postgres side of a backup against real PostgreSQL (TLS, scram, a non-superuser owner role) and
// the MongoDB-wire test server: the sync is one transaction (a failure anywhere leaves the standby
// exactly as it was), a repeated sync rewrites nothing, changes rewrite only the changed rows, and
// the advisory lock keeps a second backup out.
import { randomUUID } from 'node:crypto';
import { BSON, Int32, type Document, type MongoClient } from 'mongodb';
import type pg from 'pg';
import type { Logger } from '../../src/io.js';
import { readManifest, type BackupRecord } from '../../src/manifest.js';
import { connectMongo, listSelectedCollections, rawDocuments, type CollectionSpec } from '../../src/mongo.js';
import { quoteIdent, schemaNameFor, tableNameFor } from '../../src/naming.js';
import { connectPostgres, describePostgresUrl } from '../../src/postgres.js';
import { acquireBackupLock, BackupAlreadyRunning, recordRunStart, syncStandby, type CollectionSource } from '../../src/standby.js';
import { loadCollection, loadDataset, randomDocuments, shopDataset } from '../../test/support/datasets.js';
import { describeWithStack } from '../../test/support/stack.js';

const suffix = `${process.pid}_${Date.now().toString(36)}`;
// The standby of these tests is a database of its own, so parallel test files (which back up into
// the default branch's database) neither see its tables nor contend for its backup lock.
const PG_DB = `standby_test_${suffix}`;
const SHOP = `standby_shop_${suffix}`;
const ODD = `standby-odd_${suffix}`;

const quietLog: Logger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  debug: () => undefined,
  group: (_name, fn) => fn(),
};

function recordingLog(lines: string[]): Logger {
  return { ...quietLog, info: (m) => void lines.push(m), warn: (m) => void lines.push(`warning: ${m}`), group: async (n, fn) => (lines.push(`# ${n}`), fn()) };
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

function runRecord(runId: string, toolVersion = 'test'): BackupRecord {
  return {
    runId,
    toolVersion,
    status: 'running',
    startedAt: new Date(),
    finishedAt: null,
    clusterTimeStart: null,
    clusterTimeEnd: null,
    consistency: null,
    github: null,
    source: null,
  };
}

describeWithStack('standby sync', ['MONGODB_SRV_URL', 'NEON_DATABASE_URL'], (env) => {
  let mongo: MongoClient;
  let admin: pg.Client;
  let url: string;
  let standby: pg.Client;

  /** Every user table's rows (id, hash, xmin) and the completed manifest rows: "the standby's state". */
  async function state(): Promise<string> {
    const tables = await standby.query(
      `SELECT n.nspname AS s, c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_%'
       ORDER BY 1, 2`,
    );
    const parts: string[] = [];
    for (const { s, t } of tables.rows) {
      const rows = await standby.query(`SELECT * FROM ${quoteIdent(s)}.${quoteIdent(t)} ORDER BY 1, 2`);
      parts.push(`${s}.${t}:${JSON.stringify(rows.rows.filter((r) => r.status !== 'running' && r.status !== 'abandoned'))}`);
    }
    return parts.join('\n');
  }

  function sourcesFor(specs: CollectionSpec[]): CollectionSource[] {
    return specs.map((spec) => ({ spec, documents: () => rawDocuments(mongo, spec, { batchSize: 50 }) }));
  }

  async function sync(specs: CollectionSpec[], lines: string[] = [], sources = sourcesFor(specs), toolVersion = 'test') {
    const runId = randomUUID();
    await recordRunStart(standby, runRecord(runId, toolVersion));
    const result = await syncStandby(standby, {
      runId,
      sources,
      log: recordingLog(lines),
      finish: async () => ({ clusterTimeEnd: null, consistency: 'per-collection' }),
    });
    return { runId, result };
  }

  async function walBytes<T>(fn: () => Promise<T>): Promise<{ value: T; wal: number }> {
    const before = (await admin.query('SELECT pg_current_wal_lsn() AS l')).rows[0].l;
    const value = await fn();
    const after = (await admin.query('SELECT pg_current_wal_lsn() AS l')).rows[0].l;
    const diff = await admin.query('SELECT pg_wal_lsn_diff($1, $2)::bigint AS d', [after, before]);
    return { value, wal: Number(diff.rows[0].d) };
  }

  const shopSpecs = () => listSelectedCollections(mongo, { databases: [SHOP], include: [], exclude: [] });

  beforeAll(async () => {
    mongo = await connectMongo(env.MONGODB_SRV_URL);
    await loadDataset(mongo, SHOP, shopDataset({ customers: 300, products: 60, orders: 900 }));
    await loadCollection(mongo, SHOP, 'random', randomDocuments(3, 800));
    admin = await connectPostgres(env.NEON_DATABASE_URL);
    await admin.query(`CREATE DATABASE ${quoteIdent(PG_DB)}`);
    url = withDatabase(env.NEON_DATABASE_URL, PG_DB);
    standby = await connectPostgres(url);
  }, 180_000);

  afterAll(async () => {
    await standby?.end().catch(() => undefined);
    if (admin) {
      await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(PG_DB)} WITH (FORCE)`).catch(() => undefined);
      await admin.end();
    }
    if (mongo) {
      for (const db of [SHOP, ODD]) await mongo.db(db).dropDatabase().catch(() => undefined);
      await mongo.close();
    }
  });

  test('first sync stores every document, queryable as JSONB, with a manifest', async () => {
    const specs = await shopSpecs();
    const { runId, result } = await sync(specs);
    expect(result.collections.map((c) => [c.spec.collection, c.documents, c.inserted])).toEqual([
      ['customers', 300, 300],
      ['orders', 900, 900],
      ['products', 60, 60],
      ['random', 800, 800],
    ]);
    expect(result.changed).toBe(2060);

    const customers = `${quoteIdent(schemaNameFor(SHOP))}.${quoteIdent(tableNameFor('customers'))}`;
    const q = await standby.query(`SELECT count(*)::int AS n, min((doc->>'age')::int) AS youngest FROM ${customers} WHERE doc->>'email' LIKE '%@example.com'`);
    expect(q.rows[0].n).toBe(300);
    expect(q.rows[0].youngest).toBeGreaterThanOrEqual(18);
    const orders = `${quoteIdent(schemaNameFor(SHOP))}.${quoteIdent(tableNameFor('orders'))}`;
    const paid = await standby.query(`SELECT count(*)::int AS n FROM ${orders} WHERE doc @> '{"status":"paid"}'`);
    expect(paid.rows[0].n).toBeGreaterThan(0);

    // The stored bytes are MongoDB's bytes.
    const one = await mongo.db(SHOP).collection('orders').findOne({ _id: new Int32(7) } as Document, { raw: true });
    const stored = await standby.query(`SELECT bson, hash FROM ${orders} WHERE _id = '{"$numberInt":"7"}'`);
    expect(Buffer.compare(stored.rows[0].bson, one as unknown as Buffer)).toBe(0);

    const manifest = await readManifest(standby, runId);
    expect(manifest.backup.status).toBe('completed');
    expect(manifest.backup.consistency).toBe('per-collection');
    expect(manifest.collections.map((c) => c.documents)).toEqual([300, 900, 60, 800]);
    const recorded = manifest.collections.find((c) => c.collection === 'customers')!;
    expect(recorded.contentHash).toMatch(/^[0-9a-f]{64}$/);
    expect(recorded.indexes.map((ix) => ix.name)).toEqual(expect.arrayContaining(['_id_', 'email_1', 'address.city_1_age_-1']));
    // Compound index keys keep their order through the manifest.
    expect(Object.keys(recorded.indexes.find((ix) => ix.name === 'address.city_1_age_-1')!.key)).toEqual(['address.city', 'age']);
    // The newest completed run is what readManifest returns without a run id.
    expect((await readManifest(standby)).backup.runId).toBe(runId);
  });

  test('a repeated sync with no change rewrites no row and writes next to no WAL', async () => {
    const specs = await shopSpecs();
    const orders = `${quoteIdent(schemaNameFor(SHOP))}.${quoteIdent(tableNameFor('orders'))}`;
    const before = await standby.query(`SELECT _id, xmin::text AS x, ctid::text AS c FROM ${orders} ORDER BY _id`);
    const size = await standby.query(`SELECT sum(octet_length(bson))::bigint AS b FROM ${orders}`);

    const { value, wal } = await walBytes(() => sync(specs));
    expect(value.result.changed).toBe(0);
    const after = await standby.query(`SELECT _id, xmin::text AS x, ctid::text AS c FROM ${orders} ORDER BY _id`);
    expect(after.rows).toEqual(before.rows);
    // Catalog entries of the temporary staging tables and the manifest rows are all that is
    // written: far less than the data itself, which a rewrite would have logged in full.
    expect(wal).toBeLessThan(Number(size.rows[0].b));
  });

  test('inserts, updates and deletes in MongoDB rewrite exactly those rows', async () => {
    const coll = mongo.db(SHOP).collection('orders');
    await coll.updateMany({ _id: { $in: [new Int32(1), new Int32(2), new Int32(3)] } } as Document, { $set: { status: 'refunded' } });
    await coll.insertMany([{ _id: new Int32(10_001), status: 'new' }, { _id: new Int32(10_002), status: 'new' }] as Document[]);
    await coll.deleteOne({ _id: new Int32(4) } as Document);
    const orders = `${quoteIdent(schemaNameFor(SHOP))}.${quoteIdent(tableNameFor('orders'))}`;
    const before = new Map(
      (await standby.query(`SELECT _id, xmin::text AS x FROM ${orders}`)).rows.map((r) => [r._id as string, r.x as string]),
    );

    const { result } = await sync(await shopSpecs());
    const o = result.collections.find((c) => c.spec.collection === 'orders')!;
    expect([o.inserted, o.updated, o.deleted]).toEqual([2, 3, 1]);
    expect(result.changed).toBe(6);

    const after = (await standby.query(`SELECT _id, xmin::text AS x, doc->>'status' AS s FROM ${orders}`)).rows;
    expect(after).toHaveLength(900 + 2 - 1);
    const rewritten = after.filter((r) => before.get(r._id) !== r.x).map((r) => r._id as string).sort();
    expect(rewritten).toEqual(['{"$numberInt":"10001"}', '{"$numberInt":"10002"}', '{"$numberInt":"1"}', '{"$numberInt":"2"}', '{"$numberInt":"3"}'].sort());
    expect(after.find((r) => r._id === '{"$numberInt":"1"}')!.s).toBe('refunded');
    expect(after.find((r) => r._id === '{"$numberInt":"4"}')).toBeUndefined();
  });

  test('after a tool upgrade, rows whose query form differs are rewritten even though their bytes did not change', async () => {
    const specs = await shopSpecs();
    const products = `${quoteIdent(schemaNameFor(SHOP))}.${quoteIdent(tableNameFor('products'))}`;
    // Stands in for a query form an older version rendered differently.
    await standby.query(`UPDATE ${products} SET doc = '{"old":"form"}' WHERE _id = '"SKU-00001"'`);
    const same = await sync(specs);
    expect(same.result.changed).toBe(0);
    const upgraded = await sync(specs, [], sourcesFor(specs), 'test-next');
    expect(upgraded.result.changed).toBe(1);
    const r = await standby.query(`SELECT doc->>'_id' AS id FROM ${products} WHERE _id = '"SKU-00001"'`);
    expect(r.rows).toEqual([{ id: 'SKU-00001' }]);
    // Once recorded, the new version compares on hashes alone again.
    expect((await sync(specs, [], sourcesFor(specs), 'test-next')).result.changed).toBe(0);
    await sync(specs); // back to the version the following tests use
  });

  test('a failure in the middle of a collection leaves the standby exactly as it was and names the collection', async () => {
    const specs = await shopSpecs();
    await mongo.db(SHOP).collection('products').updateMany({}, { $set: { price: 1 } });
    const before = await state();
    const sources = sourcesFor(specs).map((s) =>
      s.spec.collection !== 'products'
        ? s
        : {
            spec: s.spec,
            async *documents() {
              let n = 0;
              for await (const raw of rawDocuments(mongo, s.spec, { batchSize: 10 })) {
                if (++n === 25) throw new Error('source connection lost (injected)');
                yield raw;
              }
            },
          },
    );
    await expect(sync(specs, [], sources)).rejects.toThrow(`backup of ${SHOP}.products failed: source connection lost (injected)`);
    // The session is still usable and nothing of the failed run is visible.
    expect(await state()).toBe(before);
    const running = await standby.query(`SELECT count(*)::int AS n FROM supaneon_sync.backups WHERE status = 'running'`);
    expect(running.rows[0].n).toBe(1);

    // The next run succeeds, applies the change, and marks the dead run abandoned.
    const { result } = await sync(specs);
    expect(result.collections.find((c) => c.spec.collection === 'products')!.updated).toBe(60);
    const statuses = await standby.query(`SELECT status, count(*)::int AS n FROM supaneon_sync.backups GROUP BY 1 ORDER BY 1`);
    expect(statuses.rows).toEqual([
      { status: 'abandoned', n: 1 },
      { status: 'completed', n: 8 },
    ]);
  });

  test('the Postgres connection killed mid-COPY rolls everything back', async () => {
    const specs = await shopSpecs();
    await mongo.db(SHOP).collection('customers').updateMany({}, { $set: { vip: true } });
    const before = await state();
    const victim = await connectPostgres(url);
    const pid = (await victim.query('SELECT pg_backend_pid() AS p')).rows[0].p as number;
    const sources = sourcesFor(specs).map((s) =>
      s.spec.collection !== 'orders'
        ? s
        : {
            spec: s.spec,
            async *documents() {
              let n = 0;
              for await (const raw of rawDocuments(mongo, s.spec, { batchSize: 20 })) {
                if (++n === 300) {
                  const killed = await standby.query('SELECT pg_terminate_backend($1) AS k', [pid]);
                  expect(killed.rows[0].k).toBe(true);
                }
                yield raw;
              }
            },
          },
    );
    const runId = randomUUID();
    await recordRunStart(victim, runRecord(runId));
    await expect(
      syncStandby(victim, { runId, sources, log: quietLog, finish: async () => ({ clusterTimeEnd: null, consistency: 'per-collection' }) }),
    ).rejects.toThrow(new RegExp(`backup of ${SHOP}\\.orders failed: .*terminat`, 'i'));
    await victim.end().catch(() => undefined);
    expect(await state()).toBe(before);
  });

  test('a second backup is refused while the lock is held, or waits for it within lock-wait-seconds', async () => {
    const first = await connectPostgres(url);
    const second = await connectPostgres(url);
    try {
      await acquireBackupLock(first, 0, quietLog);
      const started = Date.now();
      await expect(acquireBackupLock(second, 0, quietLog)).rejects.toThrow(BackupAlreadyRunning);
      await expect(acquireBackupLock(second, 0, quietLog)).rejects.toThrow(/another supaneon-sync backup is running/);
      expect(Date.now() - started).toBeLessThan(2000);
      // The lock goes with the session that held it.
      setTimeout(() => void first.end(), 1500);
      await acquireBackupLock(second, 20, quietLog);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    } finally {
      await first.end().catch(() => undefined);
      await second.end().catch(() => undefined);
    }
  });

  test('odd MongoDB names map to safe tables; views are recorded, not copied; vanished collections are dropped', async () => {
    const long = `c${'x'.repeat(120)}`;
    // (The test server refuses quotes in collection names; quoting of every character is
    // covered by the naming unit tests.)
    const names = ['with.dots', 'with space', 'semi;colon-dash', 'Ünïcode', long];
    for (const n of names) await mongo.db(ODD).collection(n).insertOne({ _id: new Int32(1), name: n } as Document);
    const listed = await listSelectedCollections(mongo, { databases: [ODD], include: [], exclude: [] });
    const view: CollectionSpec = {
      database: ODD,
      collection: 'recent',
      kind: 'view',
      options: { viewOn: 'with.dots', pipeline: [{ $sort: { z: 1, a: -1 } }, { $limit: 5 }] },
      indexes: [],
    };
    const lines: string[] = [];
    const first = await sync([...listed, view], lines);
    expect(first.result.collections.filter((c) => c.spec.kind === 'collection')).toHaveLength(5);
    for (const n of names) {
      const t = `${quoteIdent(schemaNameFor(ODD))}.${quoteIdent(tableNameFor(n))}`;
      const r = await standby.query(`SELECT doc->>'name' AS name FROM ${t}`);
      expect(r.rows).toEqual([{ name: n }]);
    }
    const manifest = await readManifest(standby, first.runId);
    const recent = manifest.collections.find((c) => c.collection === 'recent')!;
    expect(recent.kind).toBe('view');
    expect(recent.documents).toBe(0);
    expect(Object.keys(recent.options.pipeline[0].$sort)).toEqual(['z', 'a']);
    expect(await standby.query('SELECT to_regclass($1) AS t', [`${quoteIdent(schemaNameFor(ODD))}.${quoteIdent(tableNameFor('recent'))}`])).toMatchObject({
      rows: [{ t: null }],
    });
    expect(manifest.collections.find((c) => c.collection === long)!.tableName.length).toBeLessThanOrEqual(63);

    // The shop collections are not part of this run: their tables go (older branches keep them).
    expect(first.result.droppedTables).toEqual(
      expect.arrayContaining([`${quoteIdent(schemaNameFor(SHOP))}.${quoteIdent(tableNameFor('orders'))}`]),
    );
    expect(lines.join('\n')).toContain(`${SHOP}.orders no longer exists or is no longer selected`);
    const shopSchema = await standby.query('SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = $1', [schemaNameFor(SHOP)]);
    expect(shopSchema.rows[0].n).toBe(0);

    // A collection dropped in MongoDB loses its table on the next run.
    await mongo.db(ODD).collection('with space').drop();
    const second = await sync(await listSelectedCollections(mongo, { databases: [ODD], include: [], exclude: [] }));
    expect(second.result.droppedTables).toEqual([`${quoteIdent(schemaNameFor(ODD))}.${quoteIdent(tableNameFor('with space'))}`]);
    expect(second.result.changed).toBe(0);
  });

  test('documents of every accepted type and size up to megabytes round-trip through the standby', async () => {
    const big = `standby_big_${suffix}`;
    try {
      const docs = [
        { _id: new Int32(1), blob: 'y'.repeat(4 * 1024 * 1024) },
        ...Array.from(randomDocuments(11, 200)).map((d, i) => ({ ...d, _id: new Int32(i + 2) })),
      ];
      await loadCollection(mongo, big, 'docs', docs, 50);
      const specs = await listSelectedCollections(mongo, { databases: [big], include: [], exclude: [] });
      const { result } = await sync(specs);
      expect(result.collections[0].documents).toBe(201);
      const t = `${quoteIdent(schemaNameFor(big))}.${quoteIdent(tableNameFor('docs'))}`;
      const stored = new Map((await standby.query(`SELECT _id, bson FROM ${t}`)).rows.map((r) => [r._id as string, r.bson as Buffer]));
      for await (const raw of rawDocuments(mongo, specs[0], { batchSize: 20 })) {
        const id = BSON.EJSON.stringify(BSON.deserialize(raw, { promoteValues: false })._id, { relaxed: false });
        expect(Buffer.compare(stored.get(id)!, raw)).toBe(0);
      }
    } finally {
      await mongo.db(big).dropDatabase().catch(() => undefined);
    }
  });

  test('connections are always TLS with a verified certificate; weaker sslmodes are refused', async () => {
    const r = await standby.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    expect(r.rows[0].ssl).toBe(true);
    for (const mode of ['disable', 'allow', 'prefer']) {
      const u = new URL(url);
      u.searchParams.set('sslmode', mode);
      await expect(connectPostgres(u.toString())).rejects.toThrow(`sslmode=${mode}`);
    }
    // verify-full in the URL changes nothing: verification is always on.
    const full = new URL(url);
    full.searchParams.set('sslmode', 'verify-full');
    const c = await connectPostgres(full.toString());
    await c.end();
    const described = describePostgresUrl(url);
    expect(described).toBe(`${new URL(url).hostname}:${new URL(url).port}/${PG_DB}`);
    expect(described).not.toContain(decodeURIComponent(new URL(url).password));
  });
});
