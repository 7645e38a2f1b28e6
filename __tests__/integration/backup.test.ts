// mode: backup end to end on the local stack (MongoDB-wire server, the Neon emulator over HTTP, its
// branches as real TLS Postgres clusters): a first backup of several databases, a second after
// changes that writes only the changed rows, the first snapshot still holding the old data, and
// retention deleting exactly what it should.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Int32, type Document, type MongoClient } from 'mongodb';
import { parseConfig, type Config, type RawInputs } from '../../src/config.js';
import type { Logger } from '../../src/io.js';
import { readManifest, TOOL_VERSION } from '../../src/manifest.js';
import { backup } from '../../src/modes/backup.js';
import { connectMongo } from '../../src/mongo.js';
import { branchName, quoteIdent, schemaNameFor, tableNameFor } from '../../src/naming.js';
import { NeonApi, TOOL_ANNOTATION, type BranchInfo } from '../../src/neon.js';
import { roleAndDatabaseOf } from '../../src/connection-string.js';
import { connectPostgres } from '../../src/postgres.js';
import { loadCollection, loadDataset, shopDataset } from '../../devkit/shop.js';
import { randomDocuments } from '../../test/support/random-documents.js';
import { actionEntry, startAction } from '../../devkit/action.js';
import { describeWithStack } from '../../test/support/describe-with-stack.js';
import { repoRoot } from '../../devkit/stack.js';
import { recordingIo, type RecordingIo } from '../../test/support/recording-io.js';
import { createTestProject, type TestProject } from '../../test/support/test-project.js';

const suffix = `${process.pid}_${Date.now().toString(36)}`;
const SHOP = `bk_shop_${suffix}`;
const MISC = `bk_misc_${suffix}`;
const PREFIX = 'bkt-';
const STACK = ['MONGODB_SRV_URL', 'NEON_API_KEY', 'NEON_API_HOST'];

const quiet: Logger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  debug: () => undefined,
  group: (_n, fn) => fn(),
};

describeWithStack('mode: backup on the local stack', STACK, (env) => {
  // This file's own Neon project; the product finds it through the NEON_* variables, as in CI.
  let project: TestProject;
  let mongo: MongoClient;
  let neon: NeonApi;

  const config = (inputs: RawInputs = {}): Config =>
    parseConfig(
      { mode: 'backup', databases: `${SHOP},${MISC}`, 'branch-prefix': PREFIX, retain: '3', 'lock-wait-seconds': '60', ...inputs },
      { ...process.env, ...project.env },
    );

  async function runBackup(inputs: RawInputs = {}, override: Partial<Config> = {}): Promise<RecordingIo> {
    const io = recordingIo();
    const ok = await backup({ ...config(inputs), ...override }, io);
    if (!ok) throw new Error(`backup reported failure:\n${io.lines.join('\n')}`);
    return io;
  }

  const table = (db: string, coll: string) => `${quoteIdent(schemaNameFor(db))}.${quoteIdent(tableNameFor(coll))}`;
  const backups = async (): Promise<BranchInfo[]> => (await neon.toolBranches('backup')).filter((b) => b.name.startsWith(PREFIX));

  /** Reads a branch that has no endpoint (a backup) through a short-lived read-write child of it. */
  async function onChildOf<T>(branch: BranchInfo, fn: (client: Awaited<ReturnType<typeof connectPostgres>>) => Promise<T>): Promise<T> {
    const { branch: child, host } = await neon.createTemporaryBranch({
      name: `read-${branch.name}`,
      parentId: branch.id,
      expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
      ...roleAndDatabaseOf(project.databaseUrl),
    });
    try {
      const client = await connectPostgres(project.databaseUrl, { host });
      try {
        return await fn(client);
      } finally {
        await client.end();
      }
    } finally {
      await neon.deleteBranch(child.id);
    }
  }

  let first: { io: RecordingIo; branch: BranchInfo };

  beforeAll(async () => {
    project = await createTestProject('backup.test.ts');
    neon = new NeonApi({ apiKey: project.apiKey, projectId: project.projectId, baseUrl: project.apiHost, log: quiet });
    mongo = await connectMongo(env.MONGODB_SRV_URL);
    await loadDataset(mongo, SHOP, shopDataset({ customers: 120, products: 30, orders: 400 }, 5));
    await loadCollection(mongo, MISC, 'random', randomDocuments(9, 300));
    await loadCollection(
      mongo,
      MISC,
      'events',
      Array.from({ length: 250 }, (_, i) => ({ _id: new Int32(i), kind: 'click', at: new Date(1_700_000_000_000 + i * 1000) })),
    );
  }, 600_000);

  afterAll(async () => {
    if (mongo) {
      for (const db of [SHOP, MISC])
        await mongo
          .db(db)
          .dropDatabase()
          .catch(() => undefined);
      await mongo.close();
    }
    await project?.dispose();
  });

  test('the first backup creates one table per collection and a storage-only snapshot branch', async () => {
    const io = await runBackup();
    const branches = await backups();
    expect(branches).toHaveLength(1);
    first = { io, branch: branches[0] };

    expect(io.outputs['branch-name']).toMatch(new RegExp(`^${PREFIX}\\d{8}T\\d{6}Z$`));
    expect(io.outputs['branch-id']).toBe(first.branch.id);
    expect(io.outputs.collections).toBe('5');
    expect(io.outputs.documents).toBe(String(120 + 30 + 400 + 300 + 250));
    expect(io.outputs.changed).toBe(io.outputs.documents);
    expect(Number(io.outputs.bytes)).toBeGreaterThan(100_000);
    expect(io.outputs.consistency).toBe('per-collection');
    expect(io.outputs['deleted-branches']).toBe('');
    expect(Number(io.outputs['duration-seconds'])).toBeGreaterThanOrEqual(0);

    const standby = (await neon.listBranches()).find((b) => b.isDefault)!;
    expect(io.outputs['standby-branch-id']).toBe(standby.id);
    expect(first.branch.parentId).toBe(standby.id);
    expect(first.branch.annotations).toMatchObject({ [TOOL_ANNOTATION]: 'backup', 'standby-branch-id': standby.id });
    expect(first.branch.annotations['run-id']).toMatch(/^[0-9a-f-]{36}$/);
    // No compute endpoint on a backup branch.
    expect((await neon.listBranches()).length).toBe(2);
    const res = await fetch(`${project.apiHost}/projects/${project.projectId}/branches/${first.branch.id}/endpoints`, {
      headers: { authorization: `Bearer ${project.apiKey}` },
      signal: AbortSignal.timeout(30_000),
    });
    expect(((await res.json()) as { endpoints: unknown[] }).endpoints).toEqual([]);

    const client = await connectPostgres(project.databaseUrl);
    try {
      const n = await client.query(`SELECT count(*)::int AS n FROM ${table(SHOP, 'orders')} WHERE doc ? 'lines'`);
      expect(n.rows[0].n).toBe(400);
      const manifest = await readManifest(client);
      expect(manifest.backup.runId).toBe(first.branch.annotations['run-id']);
      expect(manifest.backup.toolVersion).toBe(TOOL_VERSION);
      expect(manifest.collections.map((c) => `${c.database}.${c.collection}`)).toEqual([
        `${MISC}.events`,
        `${MISC}.random`,
        `${SHOP}.customers`,
        `${SHOP}.orders`,
        `${SHOP}.products`,
      ]);
    } finally {
      await client.end();
    }

    expect(io.summary).toContain(`${SHOP}.orders`);
    expect(io.summary).toContain(first.branch.name);
    expect(io.lines.some((l) => /^# Syncing 5 collection\(s\), 4 read at once$/.test(l))).toBe(true);
    expect(io.lines.some((l) => l.startsWith(`${SHOP}.orders: 400 documents: 400 inserted`))).toBe(true);
    expect(io.lines.some((l) => /orders: 400 documents, .* MB, .* docs\/s.*\(done\)/.test(l))).toBe(true);
  });

  test('after inserts, updates and deletes the second backup writes only those rows; the first branch keeps the old data', async () => {
    const orders = mongo.db(SHOP).collection('orders');
    await orders.updateMany({ _id: { $in: [new Int32(1), new Int32(2)] } } as Document, { $set: { status: 'refunded' } });
    await orders.deleteMany({ _id: { $in: [new Int32(3), new Int32(4), new Int32(5)] } } as Document);
    await mongo
      .db(MISC)
      .collection('events')
      .insertMany(Array.from({ length: 4 }, (_, i) => ({ _id: new Int32(1000 + i), kind: 'new' })) as Document[]);

    const io = await runBackup();
    expect(io.outputs.changed).toBe(String(2 + 3 + 4));
    expect(io.outputs.documents).toBe(String(120 + 30 + 400 - 3 + 300 + 250 + 4));
    const all = await backups();
    expect(all).toHaveLength(2);
    expect(io.outputs['branch-name']).not.toBe(first.branch.name);
    expect(all[0].id).toBe(io.outputs['branch-id']);

    const standby = await connectPostgres(project.databaseUrl);
    try {
      const r = await standby.query(`SELECT doc->>'status' AS s FROM ${table(SHOP, 'orders')} WHERE _id = '{"$numberInt":"1"}'`);
      expect(r.rows).toEqual([{ s: 'refunded' }]);
    } finally {
      await standby.end();
    }

    await onChildOf(first.branch, async (old) => {
      const r = await old.query(`SELECT doc->>'status' AS s FROM ${table(SHOP, 'orders')} WHERE _id = '{"$numberInt":"1"}'`);
      expect(r.rows).toHaveLength(1);
      expect(r.rows[0].s).not.toBe('refunded');
      const gone = await old.query(
        `SELECT count(*)::int AS n FROM ${table(SHOP, 'orders')} WHERE _id IN ('{"$numberInt":"3"}', '{"$numberInt":"4"}', '{"$numberInt":"5"}')`,
      );
      expect(gone.rows[0].n).toBe(3);
      const events = await old.query(`SELECT count(*)::int AS n FROM ${table(MISC, 'events')}`);
      expect(events.rows[0].n).toBe(250);
      expect((await readManifest(old)).backup.runId).toBe(first.branch.annotations['run-id']);
    });
  });

  test('retention keeps the newest `retain` backups, never a branch with children, never one it did not make', async () => {
    // A branch named like a backup but made by hand: retention must never touch it.
    const manual = await project.createPlainBranch(`${PREFIX}20000101T000000Z`);

    const third = await runBackup(); // 3 backups: nothing to delete yet
    expect(third.outputs['deleted-branches']).toBe('');
    expect(third.outputs.changed).toBe('0');

    // The oldest backup gets a child (as a restore test would): it must survive retention.
    const oldest = first.branch;
    const { branch: child } = await neon.createTemporaryBranch({
      name: `child-of-${oldest.name}`,
      parentId: oldest.id,
      expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
      ...roleAndDatabaseOf(project.databaseUrl),
    });
    const fourth = await runBackup();
    expect(fourth.outputs['deleted-branches']).toBe('');
    expect(fourth.lines.join('\n')).toMatch(new RegExp(`keeping "${oldest.name}".*child`));
    expect((await backups()).map((b) => b.id)).toContain(oldest.id);

    // Without the child, the next run deletes the backups beyond retain=3, oldest first.
    await neon.deleteBranch(child.id);
    const before = await backups(); // newest first: 4 backups
    expect(before).toHaveLength(4);
    const fifth = await runBackup();
    const after = await backups();
    expect(after).toHaveLength(3);
    expect(after[0].id).toBe(fifth.outputs['branch-id']);
    const deleted = fifth.outputs['deleted-branches'].split(',').sort();
    expect(deleted).toEqual([before[2].name, before[3].name].sort());
    expect(fifth.summary).toContain(before[3].name);

    const everything = await neon.listBranches();
    expect(everything.some((b) => b.id === manual)).toBe(true);
    expect(everything.some((b) => b.isDefault)).toBe(true);
  });

  test('retain-days deletes old backups but never the newest', async () => {
    // The input accepts whole days (>= 1); a zero-day window makes every earlier backup "old"
    // without waiting a day, through the same mode code.
    const io = await runBackup({}, { retainDays: 0 });
    const after = await backups();
    // Every backup is "older than 0 days" except the one just made, which is the newest.
    expect(after.map((b) => b.id)).toEqual([io.outputs['branch-id']]);
    expect(io.outputs['deleted-branches'].split(',')).toHaveLength(3);
  });

  test(`run as GitHub runs the action (${actionEntry().label}): outputs, job summary, no secret in the log`, async () => {
    await mongo
      .db(MISC)
      .collection('events')
      .deleteOne({ _id: new Int32(0) } as Document);
    const before = await backups();
    const run = await startAction('main', {
      inputs: { mode: 'backup', databases: `${SHOP},${MISC}`, 'branch-prefix': PREFIX, retain: '3' },
      env: project.env,
      build: 'current',
    }).result;
    if (run.exitCode !== 0) throw new Error(`the action failed (exit ${run.exitCode}):\n${run.log}`);
    expect(run.outputs.changed).toBe('1');
    expect(run.outputs['branch-name']).toMatch(new RegExp(`^${PREFIX}\\d{8}T\\d{6}Z$`));
    expect((await backups()).map((b) => b.id)).toEqual([run.outputs['branch-id'], ...before.map((b) => b.id)]);
    expect(run.log).toContain(`::group::Syncing 5 collection(s), 4 read at once`);
    expect(run.summary).toContain('| Collection | Postgres table | Documents | Size | Changed | Content hash |');
    const password = decodeURIComponent(new URL(project.databaseUrl).password);
    // `::add-mask::` lines exist to carry the secret to the runner, which hides it everywhere after.
    const logged = run.log
      .split('\n')
      .filter((l) => !l.startsWith('::add-mask::'))
      .join('\n');
    for (const secret of [password, project.apiKey]) {
      expect(logged).not.toContain(secret);
      expect(run.summary).not.toContain(secret);
    }
  });

  test('snapshot names are UTC timestamps; the tool version matches the package', () => {
    expect(branchName('backup-', new Date(Date.UTC(2026, 4, 1, 9, 8, 7)))).toBe('backup-20260501T090807Z');
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    expect(TOOL_VERSION).toBe(pkg.version);
  });
});
