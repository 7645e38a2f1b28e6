// mode: backup under faults, run as GitHub runs the action (a separate node process with INPUT_*
// variables): the Neon API answering 423/429/500 or hanging, the branch limit reached, the MongoDB
// connection cut mid-stream, the Postgres connection killed mid-COPY, the process killed mid-sync.
// Each must end with the standby unchanged (or, for faults after the commit, committed but with no
// snapshot), no half-made branch, no backup deleted, a clear error and exit 1; the next run succeeds.
import net from 'node:net';
import { Int32, type Document, type MongoClient } from 'mongodb';
import type pg from 'pg';
import { connectMongo } from '../../src/mongo.js';
import { quoteIdent, schemaNameFor } from '../../src/naming.js';
import { NeonApi } from '../../src/neon.js';
import { connectPostgres } from '../../src/postgres.js';
import { loadCollection, loadDataset, shopDataset } from '../../devkit/shop.js';
import { actionEntry, startAction, type ActionRun } from '../../devkit/action.js';
import { describeWithStack } from '../../test/support/describe-with-stack.js';
import { createTestProject, type TestProject } from '../../test/support/test-project.js';

const suffix = `${process.pid}_${Date.now().toString(36)}`;
const DB = `bkf_${suffix}`;
const PREFIX = 'bkf-';
const STACK = ['MONGODB_SRV_URL', 'NEON_API_KEY', 'NEON_API_HOST'];
// Enough data that the copy of this collection lasts long enough to be interrupted on purpose.
const BULK_DOCS = 40_000;
const ENTRY = actionEntry();

/** A TCP proxy in front of the MongoDB-wire server that can cut every connection and refuse new ones. */
class CuttableProxy {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private bytesToClient = 0;
  private cutAfter = Infinity;
  private cut = false;
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((client) => {
      if (this.cut) return void client.destroy();
      const upstream = net.connect(this.target.port, this.target.host);
      this.sockets.add(client).add(upstream);
      client.on('data', (d) => upstream.write(d));
      upstream.on('data', (d) => {
        this.bytesToClient += d.length;
        client.write(d);
        if (this.bytesToClient >= this.cutAfter) this.cutAll();
      });
      for (const s of [client, upstream]) {
        s.on('error', () => undefined);
        s.on('close', () => {
          client.destroy();
          upstream.destroy();
          this.sockets.delete(s);
        });
      }
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** Cuts everything once `bytes` more have gone from the server to the client. */
  armAfter(bytes: number): void {
    this.cutAfter = this.bytesToClient + bytes;
  }

  cutAll(): void {
    this.cut = true;
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function mongoHostPort(uri: string): { host: string; port: number } {
  const m = /^mongodb:\/\/(?:[^@/]*@)?([^/?:,]+):(\d+)/.exec(uri);
  if (!m) throw new Error('these tests need a mongodb:// URI with one host:port');
  return { host: m[1], port: Number(m[2]) };
}

describeWithStack(`mode: backup under faults (through ${ENTRY.label})`, STACK, (env) => {
  // This file's own Neon project: its standby, backups, faults and branch limit are nobody else's.
  let project: TestProject;
  let mongo: MongoClient;
  let neon: NeonApi;
  let admin: pg.Client;
  const inputs = (more: Record<string, string> = {}) => ({
    mode: 'backup',
    ...project.inputs,
    'mongodb-uri': env.MONGODB_SRV_URL,
    databases: DB,
    'branch-prefix': PREFIX,
    'lock-wait-seconds': '60',
    ...more,
  });
  // Persistent API faults give up in seconds rather than Neon's production deadlines.
  const shortNeonTimeouts = { SUPANEON_NEON_REQUEST_TIMEOUT_SECONDS: '2', SUPANEON_NEON_RETRY_DEADLINE_SECONDS: '8' };
  const quiet = {
    info: () => undefined,
    warn: () => undefined,
    error: () => undefined,
    debug: () => undefined,
    group: <T>(_n: string, fn: () => Promise<T>) => fn(),
  };

  const backups = async (): Promise<string[]> =>
    (await neon.toolBranches('backup')).filter((b) => b.name.startsWith(PREFIX)).map((b) => b.id);

  /** The standby's data for this test's database and the completed runs of its manifest. */
  async function standbyState(): Promise<string> {
    const tables = await admin.query(
      `SELECT n.nspname AS s, c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind = 'r' AND n.nspname = $1 ORDER BY 2`,
      [schemaNameFor(DB)],
    );
    const parts: string[] = [];
    for (const { s, t } of tables.rows) {
      const r = await admin.query(
        `SELECT count(*) AS n, md5(string_agg(_id || ':' || encode(hash, 'hex'), ',' ORDER BY _id)) AS h FROM ${quoteIdent(s)}.${quoteIdent(t)}`,
      );
      parts.push(`${t}:${r.rows[0].n}:${r.rows[0].h}`);
    }
    const runs = await admin.query(`SELECT run_id FROM supaneon_sync.backups WHERE status = 'completed' ORDER BY started_at`);
    parts.push(`completed:${runs.rows.map((r) => r.run_id).join(',')}`);
    return parts.join('\n');
  }

  let changeCounter = 0;
  /** A change in MongoDB, so a standby that took it is told apart from one that did not. */
  async function changeSource(): Promise<void> {
    changeCounter++;
    await mongo
      .db(DB)
      .collection('orders')
      .updateOne({ _id: new Int32(1) } as Document, { $set: { faultRound: changeCounter } });
  }

  async function expectSucceeds(more: Record<string, string> = {}): Promise<ActionRun> {
    const run = await startAction('main', { inputs: inputs(more), build: 'current' }).result;
    if (run.exitCode !== 0) throw new Error(`the backup should have succeeded (exit ${run.exitCode}):\n${run.log}`);
    return run;
  }

  /** Waits until a backup session is inside a COPY on the standby; returns its pid. */
  async function waitForCopy(timeoutMs = 60_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const r = await admin.query(
        `SELECT pid FROM pg_stat_activity WHERE application_name = 'supaneon-sync backup' AND state = 'active' AND query LIKE 'COPY%'`,
      );
      if (r.rows.length > 0) return r.rows[0].pid as number;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error('no backup session started a COPY in time');
  }

  /** Waits until no backup session is left on the standby (a killed client's backend ends by itself). */
  async function waitForNoBackupSession(): Promise<void> {
    for (let i = 0; i < 400; i++) {
      const r = await admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'supaneon-sync backup'`);
      if (r.rows[0].n === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error('a backup session stayed on the standby');
  }

  beforeAll(async () => {
    project = await createTestProject('backup-faults.test.ts');
    neon = new NeonApi({ apiKey: project.apiKey, projectId: project.projectId, baseUrl: project.apiHost, log: quiet });
    mongo = await connectMongo(env.MONGODB_SRV_URL);
    await loadDataset(mongo, DB, shopDataset({ customers: 50, products: 20, orders: 100 }, 3));
    await loadCollection(
      mongo,
      DB,
      'bulk',
      (function* () {
        for (let i = 0; i < BULK_DOCS; i++)
          yield { _id: new Int32(i), payload: `${i}:`.padEnd(600, 'abcdefghij'), at: new Date(1_700_000_000_000 + i) };
      })(),
      2000,
    );
    admin = await connectPostgres(project.databaseUrl, { applicationName: 'backup-faults test' });
    await expectSucceeds();
  }, 600_000);

  afterEach(async () => {
    await project.clearFaults();
  });

  afterAll(async () => {
    await admin?.end().catch(() => undefined);
    if (mongo) {
      await mongo
        .db(DB)
        .dropDatabase()
        .catch(() => undefined);
      await mongo.close();
    }
    await project?.dispose();
  });

  test('423 and 429 from the Neon API are retried: the backup succeeds with exactly one new branch', async () => {
    const before = await backups();
    await project.injectFault({ status: 423, count: 3, method: 'POST', path: '/branches' });
    await project.injectFault({ status: 429, count: 2, method: 'GET', path: '/branches' });
    await changeSource();
    const run = await expectSucceeds();
    expect(run.log).toMatch(/HTTP 423/);
    expect(run.log).toMatch(/HTTP 429/);
    const after = await backups();
    expect(after.length).toBe(before.length + 1);
    expect(after).toEqual(expect.arrayContaining(before));
    expect(run.outputs.changed).toBe('1');
  });

  test('the Neon API failing before the sync (500 until the deadline) leaves the standby unchanged', async () => {
    const state = await standbyState();
    const before = await backups();
    await project.injectFault({ status: 500, count: 10_000, method: 'GET', path: '/endpoints' });
    await changeSource();
    const run = await startAction('main', { inputs: inputs(), env: shortNeonTimeouts, build: 'current' }).result;
    expect(run.exitCode).toBe(1);
    expect(run.log).toMatch(/supaneon-sync backup failed: .*list endpoints.*HTTP 500/);
    expect(await standbyState()).toBe(state);
    expect(await backups()).toEqual(before);
    await project.clearFaults();
    const next = await expectSucceeds();
    expect(next.outputs.changed).toBe('1');
  });

  test('the Neon API failing on the snapshot (500, then hanging): committed standby, no branch, clear error; the next run makes the snapshot', async () => {
    for (const fault of [500, 'hang'] as const) {
      const before = await backups();
      await project.injectFault({ status: fault, count: 10_000, method: 'POST', path: '/branches' });
      await changeSource();
      const run = await startAction('main', { inputs: inputs(), env: shortNeonTimeouts, build: 'current' }).result;
      expect(run.exitCode).toBe(1);
      expect(run.log).toMatch(/the standby was updated and committed, but the snapshot branch "bkf-\d{8}T\d{6}Z" could not be created/);
      expect(run.log).toMatch(fault === 500 ? /HTTP 500/ : /no answer within 2 s/);
      expect(run.log).toMatch(/the next successful run creates a snapshot/);
      await project.clearFaults();
      // No branch was made, none was deleted.
      expect(await backups()).toEqual(before);
      const next = await expectSucceeds();
      expect(next.outputs.changed).toBe('0');
      expect((await backups()).length).toBe(before.length + 1);
    }
  }, 240_000);

  test('the branch limit reached: fails before syncing, naming the limit; with a lower retain, retention makes room first', async () => {
    const limit = (await neon.getProject()).branchLimit ?? 10;
    // Enough backups that retention has some to delete later in this test.
    while ((await backups()).length < 3) await expectSucceeds();
    const made: string[] = [];
    // Branches this tool did not make fill the project up to its limit.
    for (let i = (await neon.listBranches()).length; i < limit; i++) {
      made.push(await project.createPlainBranch(`manual-${i}`));
    }
    expect((await neon.listBranches()).length).toBe(limit);
    try {
      const state = await standbyState();
      const before = await backups();
      await changeSource();
      const run = await startAction('main', { inputs: inputs({ retain: '7' }), build: 'current' }).result;
      expect(run.exitCode).toBe(1);
      expect(run.log).toMatch(new RegExp(`branch limit \\(${limit}\\) leaves no room`));
      expect(await standbyState()).toBe(state);
      expect(await backups()).toEqual(before);

      // With a lower retain, retention makes the room first: old backups go, the newest stays,
      // branches this tool did not make are untouched.
      const next = await expectSucceeds({ retain: '2' });
      expect(next.outputs.changed).toBe('1');
      expect(next.outputs['deleted-branches'].split(',')).toHaveLength(before.length - 1);
      const after = await backups();
      expect(after).toEqual([next.outputs['branch-id'], before[0]]);
      const ids = (await neon.listBranches()).map((b) => b.id);
      expect(ids).toEqual(expect.arrayContaining(made));
    } finally {
      for (const id of made) await neon.deleteBranch(id);
    }
  }, 300_000);

  test('the MongoDB connection cut mid-stream: standby unchanged, the collection named, no branch; the next run succeeds', async () => {
    const proxy = new CuttableProxy(mongoHostPort(env.MONGODB_SRV_URL));
    await proxy.listen();
    try {
      const state = await standbyState();
      const before = await backups();
      await changeSource();
      // Several megabytes in: inside the bulk collection (about 25 MB of documents).
      proxy.armAfter(8 * 1024 * 1024);
      const uri = env.MONGODB_SRV_URL.replace(/^(mongodb:\/\/(?:[^@/]*@)?)[^/?]+/, `$1127.0.0.1:${proxy.port}`);
      const run = await startAction('main', { inputs: inputs({ 'mongodb-uri': uri }), build: 'current' }).result;
      expect(run.exitCode).toBe(1);
      expect(run.log).toMatch(new RegExp(`supaneon-sync backup failed: backup of ${DB}\\.bulk failed`));
      expect(await standbyState()).toBe(state);
      expect(await backups()).toEqual(before);
    } finally {
      await proxy.close();
    }
    const next = await expectSucceeds();
    expect(next.outputs.changed).toBe('1');
  });

  test('the Postgres connection killed mid-COPY: standby unchanged, the collection named; the next run succeeds', async () => {
    const state = await standbyState();
    const before = await backups();
    await changeSource();
    const running = startAction('main', { inputs: inputs(), build: 'current' });
    const pid = await waitForCopy();
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    const run = await running.result;
    expect(run.exitCode).toBe(1);
    expect(run.log).toMatch(new RegExp(`supaneon-sync backup failed: backup of ${DB}\\.\\w+ failed: .*(terminat|Connection)`, 'i'));
    expect(await standbyState()).toBe(state);
    expect(await backups()).toEqual(before);
    const next = await expectSucceeds();
    expect(next.outputs.changed).toBe('1');
  });

  test('the process killed mid-sync: standby unchanged, no branch; the next run succeeds and marks the dead run abandoned', async () => {
    const state = await standbyState();
    const before = await backups();
    await changeSource();
    const running = startAction('main', { inputs: inputs(), build: 'current' });
    await waitForCopy();
    running.child.kill('SIGKILL');
    const run = await running.result;
    expect(run.signal).toBe('SIGKILL');
    await waitForNoBackupSession();
    expect(await standbyState()).toBe(state);
    expect(await backups()).toEqual(before);
    const dead = await admin.query(`SELECT run_id FROM supaneon_sync.backups WHERE status = 'running'`);
    expect(dead.rows).toHaveLength(1);

    const next = await expectSucceeds();
    expect(next.outputs.changed).toBe('1');
    const after = await admin.query(`SELECT status FROM supaneon_sync.backups WHERE run_id = $1`, [dead.rows[0].run_id]);
    expect(after.rows[0].status).toBe('abandoned');
  });
});
