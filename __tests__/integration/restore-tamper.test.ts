// Tampered backups must fail verification, naming the collection and the check: a row deleted; a
// row changed in each stored column (_id, doc, bson, hash); a table dropped; the manifest removed;
// a backup whose run died before its commit. Backup branches have no endpoint and are never
// written, so each case is made as Neon would hold it: a writable copy of the standby is tampered
// with, then frozen as a backup branch (annotated with the real run id) that restore then verifies.
// No temporary branch may survive any of these runs.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, afterEach, beforeAll, expect, test } from '@jest/globals';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { ContentHash, COPY_COLUMNS, copyBinaryHeader, copyBinaryTrailer, copyBinaryTuple, encodeDocument } from '../../src/codec.js';
import { completeBackup, insertBackup, insertCollection, TOOL_VERSION } from '../../src/manifest.js';
import { verifyBackup } from '../../src/verify.js';
import { corpusValidCases, firstElementAsId, withInt32Id } from '../../test/support/bson-corpus.js';
import { parseConfig } from '../../src/config.js';
import { backup } from '../../src/modes/backup.js';
import { restore } from '../../src/modes/restore.js';
import { connectMongo } from '../../src/mongo.js';
import { quoteIdent, schemaNameFor, tableNameFor } from '../../src/naming.js';
import { NeonApi, type BranchInfo } from '../../src/neon.js';
import { connectPostgres } from '../../src/postgres.js';
import { loadDataset, shopDataset } from '../../devkit/shop.js';
import { createTestProject, type TestProject } from '../../test/support/test-project.js';
import { describeWithStack } from '../../test/support/describe-with-stack.js';
import type { MongoClient } from 'mongodb';
import { recordingIo } from '../../test/support/recording-io.js';

const DB = `rt_shop_${process.pid}_${Date.now().toString(36)}`;
const STACK = ['MONGODB_SRV_URL', 'NEON_API_KEY', 'NEON_API_HOST'];

describeWithStack('mode: restore on tampered backups', STACK, (env) => {
  // This file's own Neon project: its standby, backups and temporary branches are nobody else's.
  let project: TestProject;
  /** The NEON_* variables the product reads, for this file's project. */
  const projectEnv = () => ({ ...process.env, ...project.env });
  let mongo: MongoClient;
  let neon: NeonApi;
  let standbyId: string;
  let runId: string;
  const made: string[] = []; // branches a test made, deleted newest first after it

  const table = (collection: string) => `${quoteIdent(schemaNameFor(DB))}.${quoteIdent(tableNameFor(collection))}`;

  beforeAll(async () => {
    project = await createTestProject('restore-tamper.test.ts');
    neon = new NeonApi({ apiKey: project.apiKey, projectId: project.projectId, baseUrl: project.apiHost, log: recordingIo().log });
    mongo = await connectMongo(env.MONGODB_SRV_URL);
    await loadDataset(mongo, DB, shopDataset({ customers: 40, products: 15, orders: 60 }, 23));
    const io = recordingIo();
    if (!(await backup(parseConfig({ mode: 'backup', databases: DB, 'lock-wait-seconds': '60' }, projectEnv()), io))) {
      throw new Error(`the backup to tamper with failed:\n${io.lines.join('\n')}`);
    }
    const real = (await neon.toolBranches('backup'))[0];
    standbyId = real.parentId!;
    runId = real.annotations['run-id'];

    // The untouched backup verifies: every failure below comes from the tampering alone.
    const check = recordingIo();
    if (!(await restore(parseConfig({ mode: 'restore', 'backup-branch': real.id }, projectEnv()), check))) {
      throw new Error(`the untouched backup does not verify:\n${check.lines.join('\n')}`);
    }
  }, 600_000);

  afterEach(async () => {
    for (const id of made.splice(0).reverse()) await neon.deleteBranch(id);
  });

  afterAll(async () => {
    if (mongo) {
      await mongo
        .db(DB)
        .dropDatabase()
        .catch(() => undefined);
      await mongo.close();
    }
    await project?.dispose();
  });

  /** A copy of the standby, changed by `tamper`, frozen as a backup branch of run `run`. */
  async function tamperedBackup(label: string, tamper: (client: pg.Client) => Promise<void>, run = runId): Promise<BranchInfo> {
    const copy = await createWritableCopy(`rt-copy-${label}`);
    made.push(copy.id);
    const client = await connectPostgres(project.databaseUrl, { host: copy.host });
    try {
      await tamper(client);
    } finally {
      await client.end();
    }
    const frozen = await neon.createBackupBranch({ name: `rt-backup-${label}`, parentId: copy.id, runId: run });
    made.push(frozen.id);
    return frozen;
  }

  /** A branch of the standby with an endpoint and no expiry (a child of it can still be made). */
  async function createWritableCopy(name: string): Promise<{ id: string; host: string }> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const res = await fetch(`${project.apiHost}/projects/${project.projectId}/branches`, {
        method: 'POST',
        headers: { authorization: `Bearer ${project.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ branch: { name, parent_id: standbyId }, endpoints: [{ type: 'read_write' }] }),
        signal: AbortSignal.timeout(60_000),
      });
      if (res.status === 201) {
        const body = (await res.json()) as { branch: { id: string }; endpoints: { host: string }[] };
        await waitForOperations();
        return { id: body.branch.id, host: body.endpoints[0].host };
      }
      if (res.status !== 423) throw new Error(`creating branch "${name}" failed: HTTP ${res.status} ${await res.text()}`);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    throw new Error(`creating branch "${name}": the project stayed locked (423)`);
  }

  async function waitForOperations(): Promise<void> {
    for (let i = 0; i < 200; i++) {
      const res = await fetch(`${project.apiHost}/projects/${project.projectId}/operations`, {
        headers: { authorization: `Bearer ${project.apiKey}` },
        signal: AbortSignal.timeout(30_000),
      });
      const { operations } = (await res.json()) as { operations: { status: string }[] };
      if (operations.every((op) => op.status === 'finished' || op.status === 'failed')) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Runs restore on `branch`; expects failure; returns the "Verification failed" lines. */
  async function expectFailure(branch: BranchInfo, inputs: Record<string, string> = {}): Promise<string[]> {
    const io = recordingIo();
    const ok = await restore(parseConfig({ mode: 'restore', 'backup-branch': branch.name, ...inputs }, projectEnv()), io);
    expect(ok).toBe(false);
    expect(io.outputs.verified).toBe('false');
    expect(await neon.toolBranches('restore-test')).toEqual([]);
    return io.lines.filter((l) => l.startsWith('error: Verification failed: '));
  }

  /** "error: Verification failed: <subject>: <check>: <detail>" -> [subject, check] */
  const subjectAndCheck = (line: string): [string, string] => {
    const [subject, check] = line.slice('error: Verification failed: '.length).split(': ');
    return [subject, check];
  };

  const firstId = async (client: pg.Client, collection: string): Promise<string> =>
    (await client.query(`SELECT min(_id) AS id FROM ${table(collection)}`)).rows[0].id as string;

  test('a row deleted: the row count and the content hash fail for that collection', async () => {
    const b = await tamperedBackup('deleted', async (c) => {
      await c.query(`DELETE FROM ${table('orders')} WHERE _id = $1`, [await firstId(c, 'orders')]);
    });
    const failures = await expectFailure(b);
    expect(failures).toEqual([
      expect.stringMatching(
        new RegExp(
          `^error: Verification failed: ${DB}\\.orders: row count: 59 rows restored, manifest says 60; \\d+ BSON bytes, manifest says \\d+$`,
        ),
      ),
      expect.stringMatching(
        new RegExp(`^error: Verification failed: ${DB}\\.orders: content hash: recomputed [0-9a-f]{64}, manifest says [0-9a-f]{64}$`),
      ),
    ]);
  });

  test('a row whose _id column was changed fails the per-row check, naming the row', async () => {
    const b = await tamperedBackup('id', async (c) => {
      await c.query(`UPDATE ${table('customers')} SET _id = '{"$oid":"ffffffffffffffffffffffff"}' WHERE _id = $1`, [
        await firstId(c, 'customers'),
      ]);
    });
    const failures = await expectFailure(b);
    expect(failures).toEqual([
      `error: Verification failed: ${DB}.customers: documents rebuild (BSON, _id, hash): all 40 rows: 1 row(s) _id column differs from the document (e.g. _id {"$oid":"ffffffffffffffffffffffff"})`,
    ]);
  });

  test('a row whose doc column was changed fails the jsonb agreement, also in sample mode covering it', async () => {
    const b = await tamperedBackup('doc', async (c) => {
      await c.query(`UPDATE ${table('products')} SET doc = jsonb_set(doc, '{category}', '"tampered"')`);
    });
    const failures = await expectFailure(b);
    expect(failures).toEqual([
      expect.stringMatching(
        new RegExp(
          `^error: Verification failed: ${DB}\\.products: jsonb agrees with the document: all 15 rows: 15 row\\(s\\) doc differs from the rebuilt document`,
        ),
      ),
    ]);
    const sampled = await expectFailure(b, { verify: 'sample', 'sample-size': '3' });
    expect(sampled).toEqual([
      expect.stringMatching(
        new RegExp(
          `^error: Verification failed: ${DB}\\.products: jsonb agrees with the document: random sample of 3 of 15 rows: 3 row\\(s\\)`,
        ),
      ),
    ]);
  });

  test("a byte changed inside a row's bson fails the content hash, the hash column and the rebuild", async () => {
    const b = await tamperedBackup('bson', async (c) => {
      // Flip one letter inside the email string: still valid BSON, no longer the stored document.
      const r = await c.query(
        `UPDATE ${table('customers')} SET bson = overlay(bson PLACING 'X'::bytea FROM position('@example'::bytea IN bson) + 1 FOR 1)
          WHERE _id = (SELECT min(_id) FROM ${table('customers')}) AND position('@example'::bytea IN bson) > 0`,
      );
      expect(r.rowCount).toBe(1);
    });
    const failures = await expectFailure(b);
    expect(failures.map(subjectAndCheck)).toEqual(
      ['content hash', 'hash column = sha256(bson)', 'documents rebuild (BSON, _id, hash)', 'jsonb agrees with the document'].map(
        (check) => [`${DB}.customers`, check],
      ),
    );
  });

  test('a row whose hash column was changed fails, though the content hash (from the bytes) still agrees', async () => {
    const b = await tamperedBackup('hash', async (c) => {
      await c.query(`UPDATE ${table('orders')} SET hash = sha256('not the document'::bytea) WHERE _id = $1`, [await firstId(c, 'orders')]);
    });
    const failures = await expectFailure(b);
    expect(failures.map(subjectAndCheck)).toEqual([
      [`${DB}.orders`, 'hash column = sha256(bson)'],
      [`${DB}.orders`, 'documents rebuild (BSON, _id, hash)'],
    ]);
    expect(failures[1]).toMatch(/1 row\(s\) sha256\(bson\) differs from hash/);
  });

  test('a table dropped fails for that collection, and the others still verify', async () => {
    const b = await tamperedBackup('dropped', async (c) => {
      await c.query(`DROP TABLE ${table('products')}`);
    });
    const failures = await expectFailure(b);
    expect(failures).toEqual([`error: Verification failed: ${DB}.products: table and columns: ${table('products')}: table missing`]);
  });

  test('a table whose column type changed fails the table check', async () => {
    const b = await tamperedBackup('column', async (c) => {
      await c.query(`ALTER TABLE ${table('orders')} ALTER COLUMN doc TYPE json`);
    });
    const failures = await expectFailure(b);
    expect(failures).toEqual([
      `error: Verification failed: ${DB}.orders: table and columns: ${table('orders')}: column doc is json, expected jsonb`,
    ]);
  });

  test('a table that cannot be read is a failed check of that collection, and the others still run', async () => {
    const b = await tamperedBackup('unreadable', async (c) => {
      await c.query(`REVOKE SELECT ON ${table('orders')} FROM CURRENT_USER`);
    });
    const failures = await expectFailure(b);
    expect(failures).toEqual([
      expect.stringMatching(
        new RegExp(
          `^error: Verification failed: ${DB}\\.orders: checks could run: verification stopped: permission denied for table orders`,
        ),
      ),
    ]);
  });

  test('collections are verified two at a time, their checks reported together and in manifest order', async () => {
    const client = await connectPostgres(project.databaseUrl);
    try {
      const io = recordingIo();
      const report = await verifyBackup(client, { runId, mode: 'full', sampleSize: 50, log: io.log });
      expect(report.checks.filter((c) => c.status !== 'pass')).toEqual([]);
      const inManifest = report.manifest!.collections.map((c) => `${c.database}.${c.collection}`);
      expect(inManifest.length).toBeGreaterThan(2);
      const subjects = report.checks.slice(1).map((c) => c.subject);
      expect(subjects).toEqual(inManifest.flatMap((s) => subjects.filter((x) => x === s)));
      expect(io.lines.filter((l) => l.startsWith('# '))).toEqual([`# Verifying ${inManifest.length} collection(s), up to 2 at once`]);
    } finally {
      await client.end();
    }
  });

  test('without a second connection (the branch connection does not verify TLS) every collection is verified on the one connection', async () => {
    const url = new URL(project.databaseUrl);
    url.searchParams.delete('sslmode');
    const client = new pg.Client({ connectionString: url.toString(), ssl: { rejectUnauthorized: false } });
    await client.connect();
    try {
      const report = await verifyBackup(client, { runId, mode: 'full', sampleSize: 50, log: recordingIo().log });
      expect(report.checks.filter((c) => c.status !== 'pass')).toEqual([]);
      expect(report.collections).toBe(report.manifest!.collections.filter((c) => c.kind !== 'view').length);
    } finally {
      await client.end();
    }
  });

  test('the manifest removed fails before anything else is checked', async () => {
    const b = await tamperedBackup('manifest', async (c) => {
      await c.query('DROP SCHEMA supaneon_sync CASCADE');
    });
    const failures = await expectFailure(b);
    expect(failures).toEqual([
      expect.stringMatching(/^error: Verification failed: \(manifest\): manifest exists: no supaneon_sync manifest found/),
    ]);
  });

  test('a backup whose run died before its commit fails, naming the run', async () => {
    const deadRun = '00000000-dead-4000-8000-000000000000';
    const b = await tamperedBackup(
      'died',
      async (c) => {
        // What a run leaves when it dies mid-sync: its audit row, committed as running; nothing else.
        await c.query(
          `INSERT INTO supaneon_sync.backups (run_id, tool_version, status, started_at) VALUES ($1, 'test', 'running', now())`,
          [deadRun],
        );
      },
      deadRun,
    );
    const failures = await expectFailure(b);
    expect(failures).toEqual([
      expect.stringMatching(
        new RegExp(
          `^error: Verification failed: \\(manifest\\): backup completed: backup run ${deadRun} \\(started .*\\) has status "running": it never committed`,
        ),
      ),
    ]);
  });

  test('no false alarms: every valid BSON corpus case, keyed by itself and by an int, verifies in full and by sample', async () => {
    const cases = corpusValidCases();
    const raws = [...cases.map((c, i) => withInt32Id(c.bson, i)), ...cases.map((c) => firstElementAsId(c.bson))];
    const rows = new Map(
      raws.flatMap((raw) => {
        try {
          const row = encodeDocument(raw);
          return [[row.id, row] as const];
        } catch {
          return []; // a value that cannot be an _id (e.g. an array) is not a document MongoDB could hold
        }
      }),
    );
    expect(rows.size).toBeGreaterThan(cases.length);
    const copy = await createWritableCopy('rt-copy-corpus');
    made.push(copy.id);
    const client = await connectPostgres(project.databaseUrl, { host: copy.host });
    try {
      const run = '00000000-c0de-4000-8000-000000000000';
      const schemaName = schemaNameFor(`${DB}_corpus`);
      const relation = `${quoteIdent(schemaName)}.${quoteIdent('corpus')}`;
      await client.query(`CREATE SCHEMA ${quoteIdent(schemaName)}`);
      await client.query(`CREATE TABLE ${relation} (_id text PRIMARY KEY, doc jsonb NOT NULL, bson bytea NOT NULL, hash bytea NOT NULL)`);
      const sink = client.query(copyFrom(`COPY ${relation} (${COPY_COLUMNS.map(quoteIdent).join(', ')}) FROM STDIN (FORMAT binary)`));
      await pipeline(
        Readable.from(
          (function* () {
            yield copyBinaryHeader();
            for (const row of rows.values()) yield copyBinaryTuple(row);
            yield copyBinaryTrailer();
          })(),
        ),
        sink,
      );
      const hash = new ContentHash();
      for (const row of rows.values()) hash.add(row.hash, row.bson.length);
      await insertBackup(client, {
        runId: run,
        toolVersion: TOOL_VERSION,
        status: 'running',
        startedAt: new Date(),
        finishedAt: null,
        clusterTimeStart: null,
        clusterTimeEnd: null,
        consistency: null,
        github: null,
        source: null,
      });
      await insertCollection(client, {
        runId: run,
        database: `${DB}_corpus`,
        collection: 'corpus',
        schemaName,
        tableName: 'corpus',
        kind: 'collection',
        documents: hash.documents,
        bsonBytes: hash.bytes,
        contentHash: hash.digest(),
        indexes: [],
        options: {},
      });
      await completeBackup(client, run, { finishedAt: new Date(), clusterTimeEnd: null, consistency: 'per-collection' });

      for (const mode of ['full', 'sample'] as const) {
        const io = recordingIo();
        const report = await verifyBackup(client, { runId: run, mode, sampleSize: 50, log: io.log });
        expect(report.checks.filter((c) => c.status !== 'pass')).toEqual([]);
        expect(report.documents).toBe(rows.size);
        expect(report.checks.map((c) => c.check)).toEqual([
          'backup completed',
          'table and columns',
          'row count',
          'content hash',
          'hash column = sha256(bson)',
          'documents rebuild (BSON, _id, hash)',
          'jsonb agrees with the document',
        ]);
      }
    } finally {
      await client.end();
    }
  });
});
