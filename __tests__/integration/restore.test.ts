// mode: restore on the local stack: a real backup (mode backup) restored into a temporary branch and
// verified from the restored rows; sample mode, user checks, source drift as a notice; the
// temporary branch always removed (or kept on request, then removed by the post step's cleanup),
// expired leftovers swept; and, through the action entry as the runner starts it, a verified run
// and runs killed mid-way (while verifying, while creating the branch) cleaned up by the post step.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { Int32, type Document, type MongoClient } from 'mongodb';
import { parseConfig, type Config, type RawInputs } from '../../src/config.js';
import { backup } from '../../src/modes/backup.js';
import { restore } from '../../src/modes/restore.js';
import { cleanupTemporaryBranch, STATE_TEMPORARY_BRANCH_ID, STATE_TEMPORARY_BRANCH_NAME } from '../../src/temporary-branch.js';
import { connectMongo } from '../../src/mongo.js';
import { NeonApi, TOOL_ANNOTATION, type BranchInfo } from '../../src/neon.js';
import { roleAndDatabaseOf } from '../../src/connection-string.js';
import { connectPostgres } from '../../src/postgres.js';
import { loadCollection, loadDataset, shopDataset } from '../../devkit/shop.js';
import { randomDocuments } from '../../test/support/random-documents.js';
import { startAction } from '../../devkit/action.js';
import { createTestProject, type TestProject } from '../../test/support/test-project.js';
import { describeWithStack } from '../../test/support/describe-with-stack.js';
import { recordingIo } from '../../test/support/recording-io.js';

const DB = `rs_shop_${process.pid}_${Date.now().toString(36)}`;
const STACK = ['MONGODB_SRV_URL', 'NEON_API_KEY', 'NEON_API_HOST'];
const COUNTS = { customers: 60, products: 20, orders: 150, random: 200 };
const TOTAL = COUNTS.customers + COUNTS.products + COUNTS.orders + COUNTS.random;

describeWithStack('mode: restore on the local stack', STACK, (env) => {
  // This file's own Neon project: its standby, backups and temporary branches are nobody else's.
  let project: TestProject;
  /** The NEON_* variables the product reads, for this file's project. */
  const projectEnv = () => ({ ...process.env, ...project.env });
  let mongo: MongoClient;
  let neon: NeonApi;
  let backupBranch: BranchInfo;

  const config = (inputs: RawInputs = {}): Config => parseConfig({ mode: 'restore', databases: DB, ...inputs }, projectEnv());
  const restoreBranches = async () => neon.toolBranches('restore-test');

  /** Waits until a session on the (one) restore branch runs a query containing `text`. */
  async function waitForQueryOnRestoreBranch(text: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let branches = await restoreBranches();
    while (branches.length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      branches = await restoreBranches();
    }
    if (branches.length !== 1) throw new Error(`expected one restore branch, found ${branches.length}`);
    const res = await fetch(`${project.apiHost}/projects/${project.projectId}/branches/${branches[0].id}/endpoints`, {
      headers: { authorization: `Bearer ${project.apiKey}` },
      signal: AbortSignal.timeout(30_000),
    });
    const { endpoints } = (await res.json()) as { endpoints: Array<{ host: string }> };
    const client = await connectPostgres(project.databaseUrl, { host: endpoints[0].host, applicationName: 'restore test watcher' });
    try {
      while (Date.now() < deadline) {
        const r = await client.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND position($1 in query) > 0',
          [text],
        );
        if (r.rows[0].n > 0) return;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      await client.end();
    }
    throw new Error(`no session on the restore branch ran ${JSON.stringify(text)} within ${timeoutMs / 1000} s`);
  }

  beforeAll(async () => {
    project = await createTestProject('restore.test.ts');
    neon = new NeonApi({ apiKey: project.apiKey, projectId: project.projectId, baseUrl: project.apiHost, log: recordingIo().log });
    mongo = await connectMongo(env.MONGODB_SRV_URL);
    await loadDataset(mongo, DB, shopDataset({ customers: COUNTS.customers, products: COUNTS.products, orders: COUNTS.orders }, 11));
    await loadCollection(mongo, DB, 'random', randomDocuments(17, COUNTS.random));
    const io = recordingIo();
    const ok = await backup(parseConfig({ mode: 'backup', databases: DB, 'lock-wait-seconds': '60' }, projectEnv()), io);
    if (!ok) throw new Error(`the backup to restore failed:\n${io.lines.join('\n')}`);
    backupBranch = (await neon.toolBranches('backup'))[0];
    expect(backupBranch.id).toBe(io.outputs['branch-id']);
  }, 600_000);

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

  test('a fresh backup restores and verifies in full; the temporary branch is gone afterwards', async () => {
    const io = recordingIo();
    const ok = await restore(config(), io);
    if (!ok) throw new Error(io.lines.join('\n'));
    expect(io.outputs).toMatchObject({
      verified: 'true',
      'backup-branch-id': backupBranch.id,
      'backup-branch-name': backupBranch.name,
      collections: '4',
      documents: String(TOTAL),
    });
    expect(io.outputs['restore-branch-id']).toMatch(/^br-/);
    expect(Number(io.outputs['duration-seconds'])).toBeGreaterThanOrEqual(0);

    // Every check ran on every collection, with its numbers.
    for (const c of Object.keys(COUNTS)) {
      const subject = `${DB}.${c}`;
      expect(io.lines).toContain(
        `PASS ${subject}: row count: ${COUNTS[c as keyof typeof COUNTS]} rows restored, manifest says ${COUNTS[c as keyof typeof COUNTS]}`,
      );
      expect(io.lines.some((l) => l.startsWith(`PASS ${subject}: content hash: recomputed `))).toBe(true);
      expect(io.lines).toContain(`PASS ${subject}: documents rebuild (BSON, _id, hash): all ${COUNTS[c as keyof typeof COUNTS]} rows`);
      expect(io.lines).toContain(`PASS ${subject}: jsonb agrees with the document: all ${COUNTS[c as keyof typeof COUNTS]} rows`);
    }
    expect(io.lines.some((l) => l.startsWith('error'))).toBe(false);
    expect(io.summary).toContain('## supaneon-sync restore verification');
    expect(io.summary).toContain('**verified**');
    expect(io.summary).toContain(`| ${DB}.orders | content hash | pass |`);

    // The name was on record before the branch existed, the id right after, both cleared once deleted.
    const names = io.state.map(([n]) => n);
    expect(names.indexOf(STATE_TEMPORARY_BRANCH_NAME)).toBeLessThan(names.indexOf(STATE_TEMPORARY_BRANCH_ID));
    expect(io.state).toContainEqual([STATE_TEMPORARY_BRANCH_ID, io.outputs['restore-branch-id']]);
    expect(io.state.slice(-2)).toEqual([
      [STATE_TEMPORARY_BRANCH_ID, ''],
      [STATE_TEMPORARY_BRANCH_NAME, ''],
    ]);
    expect(await restoreBranches()).toEqual([]);
    expect((await neon.listBranches()).some((b) => b.id === io.outputs['restore-branch-id'])).toBe(false);
  });

  test('sample mode, a passing user check, and source drift reported as a notice, not a failure', async () => {
    await mongo
      .db(DB)
      .collection('orders')
      .insertOne({ _id: new Int32(99_999), status: 'after-the-backup' } as Document);
    try {
      const io = recordingIo();
      const ok = await restore(
        config({
          'backup-branch': backupBranch.name,
          verify: 'sample',
          'sample-size': '7',
          checks: `SELECT count(*) = ${COUNTS.orders} FROM "${DB}"."orders"\nSELECT bool_and(doc ? 'email') FROM "${DB}"."customers"`,
          'compare-source': 'true',
        }),
        io,
      );
      if (!ok) throw new Error(io.lines.join('\n'));
      expect(io.outputs.verified).toBe('true');
      expect(io.lines).toContain(`PASS ${DB}.products: documents rebuild (BSON, _id, hash): random sample of 7 of ${COUNTS.products} rows`);
      expect(io.lines.filter((l) => /^PASS \(user check \d\): .*: returned true$/.test(l))).toHaveLength(2);
      expect(io.lines).toContain(
        `warning: NOTE ${DB}.orders: source count: MongoDB now has ${COUNTS.orders + 1} documents, the backup ${COUNTS.orders} (changed since the backup)`,
      );
      expect(io.lines).toContain(`PASS ${DB}.customers: source count: ${COUNTS.customers} documents in MongoDB = restored`);
      expect(await restoreBranches()).toEqual([]);
    } finally {
      await mongo
        .db(DB)
        .collection('orders')
        .deleteOne({ _id: new Int32(99_999) } as Document);
    }
  });

  test('a user check that does not return a single true fails the run and says what it returned', async () => {
    const io = recordingIo();
    const ok = await restore(config({ checks: `SELECT true\nSELECT count(*) = -1 FROM "${DB}"."orders"\nSELECT 1, 2` }), io);
    expect(ok).toBe(false);
    expect(io.outputs.verified).toBe('false');
    expect(io.lines).toContain(
      `error: Verification failed: (user check 2): SELECT count(*) = -1 FROM "${DB}"."orders": returned false; a check must return one row with a single true`,
    );
    expect(io.lines.some((l) => /^error: Verification failed: \(user check 3\): SELECT 1, 2: returned 2 columns/.test(l))).toBe(true);
    expect(io.summary).toContain('**FAILED** (2 check(s))');
    expect(await restoreBranches()).toEqual([]);
  });

  test('an unknown backup-branch is refused before anything is created, naming the input', async () => {
    const io = recordingIo();
    await expect(restore(config({ 'backup-branch': 'backup-19990101T000000Z' }), io)).rejects.toThrow(
      /backup-branch "backup-19990101T000000Z" matches no branch .* of Neon project/,
    );
    expect(io.state).toEqual([]);
    expect(await restoreBranches()).toEqual([]);
  });

  test('keep-restore-branch keeps it and says how to connect without the password; the post cleanup then deletes it', async () => {
    const io = recordingIo();
    expect(await restore(config({ 'backup-branch': backupBranch.id, 'keep-restore-branch': 'true' }), io)).toBe(true);
    const kept = await restoreBranches();
    expect(kept.map((b) => b.id)).toEqual([io.outputs['restore-branch-id']]);
    expect(kept[0].annotations).toEqual({ [TOOL_ANNOTATION]: 'restore-test', 'backup-branch-id': backupBranch.id });
    const hint = io.lines.find((l) => l.startsWith('keeping restore branch'));
    expect(hint).toContain(kept[0].id);
    expect(hint).toContain('psql "postgresql://neondb_owner@');
    const password = decodeURIComponent(new URL(project.databaseUrl).password);
    expect(io.lines.join('\n')).not.toContain(password);

    // With keep-restore-branch the post step leaves it alone; without, it deletes what was recorded.
    const post = recordingIo();
    await cleanupTemporaryBranch({ id: kept[0].id }, config({ 'keep-restore-branch': 'true' }), post);
    expect(await restoreBranches()).toHaveLength(1);
    await cleanupTemporaryBranch({ id: kept[0].id }, config(), post);
    expect(post.lines).toContain(`supaneon-sync post: deleted restore branch "${kept[0].name}" (${kept[0].id}) left by the main step`);
    expect(await restoreBranches()).toEqual([]);
    // Run again (the branch is gone): says so, no error.
    await cleanupTemporaryBranch({ id: kept[0].id }, config(), post);
    expect(post.lines.at(-1)).toMatch(/is already gone$/);
  });

  test('the post cleanup never deletes a branch that is not a restore test, even when named in the state', async () => {
    const post = recordingIo();
    await cleanupTemporaryBranch({ name: backupBranch.name }, config(), post);
    expect(post.lines.some((l) => l.startsWith(`warning: supaneon-sync post: branch "${backupBranch.name}"`))).toBe(true);
    expect((await neon.listBranches()).some((b) => b.id === backupBranch.id)).toBe(true);
  });

  test('expired restore branches left by earlier runs are swept before the new one is made', async () => {
    // The emulator, like Neon, also deletes expired branches on its own every few seconds; when its
    // job gets there first the sweep had nothing to do, so the scenario is tried again.
    let swept = false;
    for (let attempt = 0; attempt < 5 && !swept; attempt++) {
      const expiresAt = new Date(Date.now() + 2000).toISOString().replace(/\.\d{3}Z$/, 'Z');
      const leftover = await neon.createTemporaryBranch({
        name: `restore-test-leftover-${attempt}`,
        parentId: backupBranch.id,
        expiresAt,
        ...roleAndDatabaseOf(project.databaseUrl),
      });
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, Date.parse(expiresAt) - Date.now()) + 20));
      const io = recordingIo();
      expect(await restore(config(), io)).toBe(true);
      swept = io.lines.some(
        (l) => l.startsWith(`Retention: deleted "${leftover.branch.name}" (${leftover.branch.id}`) && l.includes('expired at'),
      );
      expect(await restoreBranches()).toEqual([]);
    }
    expect(swept).toBe(true);
  });

  test('through the action as GitHub runs it: verified, outputs and summary written, the post step finds nothing left', async () => {
    const inputs = { ...project.inputs, mode: 'restore', databases: DB, verify: 'sample', 'sample-size': '5' };
    const main = startAction('main', { inputs, build: 'current' });
    const result = await main.result;
    if (result.exitCode !== 0) throw new Error(`the action failed (exit ${result.exitCode}, ${main.label}):\n${result.log}`);
    expect(result.outputs).toMatchObject({
      verified: 'true',
      'backup-branch-id': backupBranch.id,
      collections: '4',
      documents: String(TOTAL),
    });
    expect(result.summary).toContain('| Collection | Check | Result | Details |');
    const password = decodeURIComponent(new URL(project.databaseUrl).password);
    const logged = result.log
      .split('\n')
      .filter((l) => !l.startsWith('::add-mask::'))
      .join('\n');
    for (const secret of [password, project.apiKey]) {
      expect(logged).not.toContain(secret);
      expect(result.summary).not.toContain(secret);
    }
    expect(await restoreBranches()).toEqual([]);

    const post = await startAction('post', { inputs, state: result.state, build: 'current' }).result;
    expect(post.exitCode).toBe(0);
    expect(post.log).toContain('supaneon-sync post: nothing to clean up (mode restore left no temporary branch on record)');
  }, 240_000);

  test('a run killed while verifying leaves its branch; the post step, with the saved state, removes it', async () => {
    // A user check that sleeps keeps the run inside verification long enough to be killed there.
    const inputs = { ...project.inputs, mode: 'restore', databases: DB, checks: 'SELECT true FROM pg_sleep(60)' };
    const main = startAction('main', { inputs, build: 'current' });
    try {
      // Wait until the data checks are done and the sleeping user check runs, then kill without warning.
      await waitFor(() => main.log().includes(`PASS ${DB}.random: jsonb agrees with the document`), 90_000);
      await waitForQueryOnRestoreBranch('pg_sleep(60)', 60_000);
    } finally {
      main.child.kill('SIGKILL');
      await main.result.catch(() => undefined);
    }
    const killed = await main.result;
    const state = killed.state;
    expect(killed.signal).toBe('SIGKILL');
    expect(state[STATE_TEMPORARY_BRANCH_NAME]).toMatch(/^restore-test-\d{8}T\d{6}Z$/);
    expect(state[STATE_TEMPORARY_BRANCH_ID]).toMatch(/^br-/);
    expect((await restoreBranches()).map((b) => b.id)).toEqual([state[STATE_TEMPORARY_BRANCH_ID]]);

    const post = await startAction('post', { inputs, state, build: 'current' }).result;
    expect(post.exitCode).toBe(0);
    expect(post.log).toContain(
      `supaneon-sync post: deleted restore branch "${state[STATE_TEMPORARY_BRANCH_NAME]}" (${state[STATE_TEMPORARY_BRANCH_ID]}) left by the main step`,
    );
    expect(await restoreBranches()).toEqual([]);
  }, 240_000);

  test('a run killed while its branch is being created: the post step finds it by the recorded name', async () => {
    // The first poll of the create's operations never answers: the branch exists, its id is not yet saved.
    await project.injectFault({ status: 'hang', count: 1, method: 'GET', path: '/operations/' });
    const inputs = { ...project.inputs, mode: 'restore', databases: DB };
    const main = startAction('main', { inputs, build: 'current' });
    try {
      await waitFor(() => readFileSync(main.files.state, 'utf8').includes(STATE_TEMPORARY_BRANCH_NAME), 90_000);
      const deadline = Date.now() + 60_000;
      while ((await restoreBranches()).length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      main.child.kill('SIGKILL');
      await main.result.catch(() => undefined);
      await project.clearFaults();
    }
    const { state } = await main.result;
    expect(state[STATE_TEMPORARY_BRANCH_ID]).toBeUndefined();
    const left = await restoreBranches();
    expect(left.map((b) => b.name)).toEqual([state[STATE_TEMPORARY_BRANCH_NAME]]);

    const post = await startAction('post', { inputs, state, build: 'current' }).result;
    expect(post.exitCode).toBe(0);
    expect(post.log).toContain(`supaneon-sync post: deleted restore branch "${left[0].name}" (${left[0].id}) left by the main step`);
    expect(await restoreBranches()).toEqual([]);
  }, 240_000);
});

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
