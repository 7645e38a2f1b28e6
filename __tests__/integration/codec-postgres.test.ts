// The codec's rows through real PostgreSQL (TLS verified, scram): every valid BSON corpus case and
// thousands of random documents are written with COPY (FORMAT binary) using the codec's tuples, read
// back, and rebuilt: bytes identical, hashes right, the jsonb column equal to the query form, and the
// query form natural to use in SQL.

import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { BSON, Decimal128, Int32, ObjectId } from 'mongodb';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import {
  CodecError,
  ContentHash,
  COPY_COLUMNS,
  copyBinaryHeader,
  copyBinaryTrailer,
  copyBinaryTuple,
  decodeExact,
  encodeDocument,
  type StoredRow,
} from '../../src/codec.js';
import { jsonbText } from '../../src/codec/jsonb-text.js';
import { quoteIdent, schemaNameFor, tableNameFor } from '../../src/naming.js';
import { connectPostgres } from '../../src/postgres.js';
import { rawDocument } from '../../test/support/bson-arbitraries.js';
import { corpusValidCases, withInt32Id } from '../../test/support/bson-corpus.js';
import { describeWithStack } from '../../test/support/describe-with-stack.js';
import { createTestProject, type TestProject } from '../../test/support/test-project.js';

const RANDOM_DOCUMENTS = 3000;
const suffix = `${process.pid}_${Date.now().toString(36)}`;
// Names that need the whole mapping: quotes, spaces, dots, Unicode, longer than 63 bytes.
const DATABASE = `codec test "db" ${suffix}`;
const CORPUS_COLLECTION = `corpus.${'é'.repeat(40)}.${suffix}`;
const RANDOM_COLLECTION = `random docs with "quotes"; DROP TABLE x; -- ${suffix}`;
const APP_COLLECTION = `app.users ${suffix}`;

async function copyRows(client: pg.Client, table: string, rows: Iterable<StoredRow>): Promise<void> {
  const columns = COPY_COLUMNS.map(quoteIdent).join(', ');
  const sink = client.query(copyFrom(`COPY ${table} (${columns}) FROM STDIN (FORMAT binary)`));
  await pipeline(
    Readable.from(
      (function* () {
        yield copyBinaryHeader();
        for (const row of rows) yield copyBinaryTuple(row);
        yield copyBinaryTrailer();
      })(),
    ),
    sink,
  );
}

describeWithStack('codec rows in PostgreSQL', ['NEON_API_HOST', 'NEON_API_KEY'], () => {
  let project: TestProject; // a Postgres cluster of this file's own
  let client: pg.Client;
  const schema = quoteIdent(schemaNameFor(DATABASE));
  const table = (collection: string): string => `${schema}.${quoteIdent(tableNameFor(collection))}`;

  beforeAll(async () => {
    project = await createTestProject('codec-postgres.test.ts');
    client = await connectPostgres(project.databaseUrl, { applicationName: 'supaneon-sync codec test' });
    await client.query(`CREATE SCHEMA ${schema}`);
    for (const c of [CORPUS_COLLECTION, RANDOM_COLLECTION, APP_COLLECTION]) {
      await client.query(`CREATE TABLE ${table(c)} (_id text PRIMARY KEY, doc jsonb NOT NULL, bson bytea NOT NULL, hash bytea NOT NULL)`);
    }
  });

  afterAll(async () => {
    try {
      await client?.end();
    } finally {
      await project?.dispose();
    }
  });

  /** Writes `raws`, reads them back, and checks every row against what was written. */
  async function roundTrip(collection: string, raws: Buffer[]): Promise<Array<{ raw: Buffer; stored: Buffer }>> {
    const rows = raws.map(encodeDocument);
    await copyRows(client, table(collection), rows);

    const { rows: back } = await client.query<{ _id: string; bson: Buffer; hash: Buffer; hash_ok: boolean }>(
      `SELECT _id, bson, hash, hash = sha256(bson) AS hash_ok FROM ${table(collection)}`,
    );
    expect(back).toHaveLength(rows.length);
    const byId = new Map(back.map((r) => [r._id, r]));
    const written = new ContentHash();
    const read = new ContentHash();
    for (const row of rows) {
      const stored = byId.get(row.id);
      expect(stored).toBeDefined();
      expect(stored!.bson.equals(row.bson)).toBe(true);
      expect(stored!.hash.equals(row.hash)).toBe(true);
      expect(stored!.hash_ok).toBe(true);
      written.add(row.hash, row.bson.length);
    }
    for (const r of back) read.add(createHash('sha256').update(r.bson).digest(), r.bson.length);
    expect(read.digest()).toBe(written.digest());
    expect(read.bytes).toBe(written.bytes);

    // The jsonb column holds exactly the query form (compared as jsonb, by PostgreSQL itself).
    const { rows: mismatched } = await client.query<{ id: string }>(
      `SELECT e.id FROM unnest($1::text[], $2::text[]) AS e(id, doc)
         LEFT JOIN ${table(collection)} t ON t._id = e.id
        WHERE t.doc IS DISTINCT FROM e.doc::jsonb LIMIT 5`,
      [rows.map((r) => r.id), rows.map((r) => r.doc)],
    );
    expect(mismatched).toEqual([]);
    // And its text is what jsonbText predicts from the query form, so a check may compare the two
    // as text without sending the rebuilt form to PostgreSQL.
    const { rows: printed } = await client.query<{ _id: string; doc: string }>(`SELECT _id, doc::text AS doc FROM ${table(collection)}`);
    const predicted = new Map(rows.map((r) => [r.id, jsonbText(r.doc)]));
    const wrong = printed.filter((r) => predicted.get(r._id) !== r.doc).slice(0, 3);
    expect(wrong.map((r) => ({ id: r._id, postgres: r.doc, predicted: predicted.get(r._id) }))).toEqual([]);

    return rows.map((row) => ({ raw: row.bson, stored: byId.get(row.id)!.bson }));
  }

  test('every valid BSON corpus case is stored and rebuilt byte-exact', async () => {
    const cases = corpusValidCases();
    const raws = cases.map((c, i) => withInt32Id(c.bson, i));
    const back = await roundTrip(CORPUS_COLLECTION, raws);
    let refused = 0;
    for (const { raw, stored } of back) {
      try {
        expect(Buffer.from(BSON.serialize(decodeExact(stored))).equals(raw)).toBe(true);
      } catch (err) {
        // Only the deprecated DBPointer and Undefined types are refused (see codec-corpus.test.ts).
        expect(err).toBeInstanceOf(CodecError);
        expect((err as Error).message).toMatch(/DBPointer \(0x0C\)|Undefined \(0x06\)/);
        refused++;
      }
    }
    expect(refused).toBe(5);
  });

  test(`${RANDOM_DOCUMENTS} random documents are stored and rebuilt byte-exact`, async () => {
    let n = 0;
    const raws = fc.sample(rawDocument(fc.constant(null).map(() => new Int32(n++))), { numRuns: RANDOM_DOCUMENTS, seed: 20240501 });
    const back = await roundTrip(RANDOM_COLLECTION, raws);
    for (const { raw, stored } of back) expect(Buffer.from(BSON.serialize(decodeExact(stored))).equals(raw)).toBe(true);
  });

  test('mapped names of reserved, long, quoted and Unicode databases and collections are usable identifiers', async () => {
    const databases = [
      `pg_codec_${suffix}`,
      `PG_Catalog_${suffix}`,
      'public',
      'information_schema',
      'supaneon_sync',
      `${'ü'.repeat(40)}_${suffix}`,
    ];
    const collections = ['a"b', "it's", 'x.y.z', ' lead and trail ', '日本語'.repeat(10), 'c'.repeat(120)];
    for (const db of databases) {
      const s = quoteIdent(schemaNameFor(db));
      try {
        await client.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`); // left over by an interrupted run
        await client.query(`CREATE SCHEMA ${s}`);
        for (const c of collections) await client.query(`CREATE TABLE ${s}.${quoteIdent(tableNameFor(c))} (_id text PRIMARY KEY)`);
        const { rows } = await client.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1 AND tablename = ANY($2::text[])',
          [schemaNameFor(db), collections.map(tableNameFor)],
        );
        expect(rows[0].n).toBe(collections.length);
      } finally {
        await client.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
      }
    }
  });

  test('the query form is natural to query', async () => {
    const users = Array.from({ length: 50 }, (_, i) => ({
      _id: new ObjectId(),
      email: `user${i}@example.com`,
      age: new Int32(20 + i),
      status: i % 3 === 0 ? 'paid' : 'open',
      total: Decimal128.fromString(`${i}.10`),
      createdAt: new Date(Date.UTC(2024, 0, 1 + i)),
      tags: ['a', `t${i % 5}`],
    }));
    await roundTrip(
      APP_COLLECTION,
      users.map((u) => Buffer.from(BSON.serialize(u))),
    );

    const { rows } = await client.query<{ email: string; total: string; created: Date }>(
      `SELECT doc->>'email' AS email, (doc->>'total')::numeric::text AS total, (doc->>'createdAt')::timestamptz AS created
         FROM ${table(APP_COLLECTION)}
        WHERE (doc->>'age')::int > 40 AND doc @> '{"status":"paid"}' AND doc->'tags' ? 'a'
        ORDER BY (doc->>'age')::int`,
    );
    const expected = users.filter((u) => u.age.value > 40 && u.status === 'paid');
    expect(expected.length).toBeGreaterThan(3);
    expect(rows.map((r) => r.email)).toEqual(expected.map((u) => u.email));
    expect(rows.map((r) => r.total)).toEqual(expected.map((u) => u.total.toString())); // exact, trailing zero kept
    expect(rows.map((r) => r.created.getTime())).toEqual(expected.map((u) => u.createdAt.getTime()));

    const {
      rows: [byId],
    } = await client.query<{ email: string }>(`SELECT doc->>'email' AS email FROM ${table(APP_COLLECTION)} WHERE doc->>'_id' = $1`, [
      users[7]._id.toHexString(),
    ]);
    expect(byId.email).toBe(users[7].email);
  });
});
