// Recover's reader of stored documents against real PostgreSQL (TLS verified): every row's exact
// bytes come back through binary COPY, larger than a COPY chunk or not; a row whose bytes differ
// from its recorded hash stops the read naming the collection and the row; and the connection
// stays usable after a reader stopped early.

import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BSON } from 'mongodb';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { COPY_COLUMNS, copyBinaryHeader, copyBinaryTrailer, copyBinaryTuple, encodeDocument, type StoredRow } from '../../src/codec.js';
import { quoteIdent } from '../../src/naming.js';
import { connectPostgres } from '../../src/postgres.js';
import { storedDocuments } from '../../src/stored-documents.js';
import { describeWithStack } from '../../test/support/describe-with-stack.js';
import { createTestProject, type TestProject } from '../../test/support/test-project.js';

const TABLE = 'stored_documents_probe';

async function tableOf(client: pg.Client, rows: readonly StoredRow[]): Promise<void> {
  await client.query(`CREATE TEMP TABLE ${TABLE} (_id text PRIMARY KEY, doc jsonb NOT NULL, bson bytea NOT NULL, hash bytea NOT NULL)`);
  const sink = client.query(copyFrom(`COPY pg_temp.${TABLE} (${COPY_COLUMNS.map(quoteIdent).join(', ')}) FROM STDIN (FORMAT binary)`));
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

const table = { schemaName: 'pg_temp', tableName: TABLE, label: 'db.things' };

describeWithStack('stored documents reader', ['NEON_API_HOST', 'NEON_API_KEY'], () => {
  let project: TestProject; // a Postgres cluster of this file's own
  let client: pg.Client;
  beforeAll(async () => {
    project = await createTestProject('stored-documents.test.ts');
  });
  afterAll(async () => {
    await project?.dispose();
  });
  beforeEach(async () => {
    client = await connectPostgres(project.databaseUrl);
  });
  afterEach(async () => {
    await client?.end();
  });

  test('yields every stored row byte for byte, small and larger than a COPY chunk', async () => {
    const rows = Array.from({ length: 600 }, (_, i) =>
      encodeDocument(Buffer.from(BSON.serialize({ _id: i, pad: 'x'.repeat(i % 7 === 0 ? 200_000 : i) }))),
    );
    await tableOf(client, rows);
    const expected = new Set(rows.map((r) => r.bson.toString('hex')));
    const seen = new Set<string>();
    for await (const raw of storedDocuments(client, table)) seen.add(raw.toString('hex'));
    expect(seen).toEqual(expected);
  });

  test('a row whose bytes differ from its hash stops the read, naming the collection and the row; the connection stays usable', async () => {
    const rows = Array.from({ length: 300 }, (_, i) =>
      encodeDocument(Buffer.from(BSON.serialize({ _id: `k${String(i).padStart(3, '0')}`, n: i }))),
    );
    rows[150] = { ...rows[150], hash: createHash('sha256').update('not the document').digest() };
    await tableOf(client, rows);
    const read: Buffer[] = [];
    await expect(
      (async () => {
        for await (const raw of storedDocuments(client, table)) read.push(raw);
      })(),
    ).rejects.toThrow(/^db\.things: the stored document _id "k150" does not match its recorded hash/);
    expect(read.length).toBeLessThan(300);
    expect((await client.query('SELECT count(*)::int AS n FROM pg_temp.' + TABLE)).rows[0].n).toBe(300);
  });
});
