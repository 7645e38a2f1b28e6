// A backup whose selection no longer covers collections the previous backup selected stops before
// changing anything (standby, manifest, branches), naming what would be dropped and the fix, unless
// allow-selection-change is set; a collection deleted in MongoDB is still mirrored without it.
import type { MongoClient } from 'mongodb';
import { parseConfig, type RawInputs } from '../../src/config.js';
import type { Logger } from '../../src/io.js';
import { BACKUPS_TABLE } from '../../src/manifest.js';
import { backup } from '../../src/modes/backup.js';
import { connectMongo } from '../../src/mongo.js';
import { schemaNameFor, tableNameFor } from '../../src/naming.js';
import { NeonApi } from '../../src/neon.js';
import { connectPostgres } from '../../src/postgres.js';
import { loadCollection } from '../../devkit/shop.js';
import { randomDocuments } from '../../test/support/random-documents.js';
import { recordingIo, type RecordingIo } from '../../test/support/recording-io.js';
import { describeWithStack } from '../../test/support/describe-with-stack.js';
import { createTestProject, type TestProject } from '../../test/support/test-project.js';

const suffix = `${process.pid}_${Date.now().toString(36)}`;
const A = `sel_a_${suffix}`;
const B = `sel_b_${suffix}`;
const PREFIX = 'selt-';
const STACK = ['MONGODB_SRV_URL', 'NEON_API_KEY', 'NEON_API_HOST'];
const quiet: Logger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  debug: () => undefined,
  group: (_n, fn) => fn(),
};

describeWithStack('a selection change is never silent', STACK, (env) => {
  // This file's own Neon project: its standby and backups are nobody else's.
  let project: TestProject;
  let mongo: MongoClient;
  let neon: NeonApi;

  async function run(inputs: RawInputs): Promise<RecordingIo> {
    const io = recordingIo();
    const config = parseConfig(
      { mode: 'backup', 'branch-prefix': PREFIX, 'lock-wait-seconds': '60', ...inputs },
      { ...process.env, ...project.env },
    );
    const ok = await backup(config, io);
    if (!ok) throw new Error(`backup reported failure:\n${io.lines.join('\n')}`);
    return io;
  }

  /** What a refused backup must leave exactly as it was. */
  async function standbyState(): Promise<{ tables: string[]; runs: string[]; branches: string[] }> {
    const client = await connectPostgres(project.databaseUrl);
    try {
      const tables = await client.query(
        `SELECT table_schema || '.' || table_name AS t FROM information_schema.tables WHERE table_schema = ANY($1) ORDER BY 1`,
        [[schemaNameFor(A), schemaNameFor(B)]],
      );
      const runs = await client.query(`SELECT run_id || ' ' || status AS r FROM ${BACKUPS_TABLE} ORDER BY started_at`);
      const branches = (await neon.listBranches()).map((b) => b.name).sort();
      return { tables: tables.rows.map((r) => r.t as string), runs: runs.rows.map((r) => r.r as string), branches };
    } finally {
      await client.end();
    }
  }

  beforeAll(async () => {
    project = await createTestProject('selection-change.test.ts');
    neon = new NeonApi({ apiKey: project.apiKey, projectId: project.projectId, baseUrl: project.apiHost, log: quiet });
    mongo = await connectMongo(env.MONGODB_SRV_URL);
    await loadCollection(mongo, A, 'kept', randomDocuments(1, 20));
    await loadCollection(mongo, A, 'logs', randomDocuments(2, 20));
    await loadCollection(mongo, A, 'gone', randomDocuments(3, 20));
    await loadCollection(mongo, B, 'orders', randomDocuments(4, 20));
    await run({ databases: `${A},${B}` });
  }, 2_400_000);

  afterAll(async () => {
    if (mongo) {
      for (const db of [A, B])
        await mongo
          .db(db)
          .dropDatabase()
          .catch(() => undefined);
      await mongo.close();
    }
    await project?.dispose();
  });

  test.each([
    ['a database left out of databases', { databases: A }, [`${B}.orders`]],
    ['a collection excluded', { databases: `${A},${B}`, exclude: `${A}.logs` }, [`${A}.logs`]],
    ['include narrowed', { include: `${A}.kept` }, [`${A}.gone`, `${A}.logs`, `${B}.orders`]],
  ])('%s: refused before anything changes, naming what would be dropped and the fix', async (_label, inputs, dropped) => {
    const before = await standbyState();
    const refusal = run(inputs);
    await expect(refusal).rejects.toThrow(`no longer covers ${dropped.length} collection(s)`);
    const message = await refusal.catch((e: Error) => e.message);
    for (const ns of dropped)
      expect(message).toContain(`${ns} (table "${schemaNameFor(ns.split('.')[0])}"."${tableNameFor(ns.split('.')[1])}")`);
    expect(message).toContain('Nothing was changed');
    expect(message).toContain('set allow-selection-change: true');
    expect(await standbyState()).toEqual(before);
  });

  test('a collection deleted in MongoDB is still mirrored without the flag', async () => {
    await mongo.db(A).collection('gone').drop();
    const io = await run({ databases: `${A},${B}` });
    expect(io.summary).toContain(`"${schemaNameFor(A)}"."${tableNameFor('gone')}"`);
    const { tables } = await standbyState();
    expect(tables).not.toContain(`${schemaNameFor(A)}.${tableNameFor('gone')}`);
    expect(tables).toContain(`${schemaNameFor(B)}.${tableNameFor('orders')}`);
  });

  test('allow-selection-change: true drops the deselected tables and says so', async () => {
    const io = await run({ databases: A, 'allow-selection-change': 'true' });
    expect(io.lines).toContainEqual(
      expect.stringMatching(
        new RegExp(`^warning: allow-selection-change: true: dropping 1 table\\(s\\) no longer selected: ${B}\\.orders$`),
      ),
    );
    const { tables } = await standbyState();
    expect(tables).toEqual([`${schemaNameFor(A)}.${tableNameFor('kept')}`, `${schemaNameFor(A)}.${tableNameFor('logs')}`].sort());
    // The new selection is the baseline now: the same backup runs without the flag.
    await run({ databases: A });
  });
});
