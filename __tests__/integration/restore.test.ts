// mode: restore on the local stack: a real backup (mode backup) restored into a temporary branch and
// verified from the restored rows; sample mode, user checks, source drift as a notice; the
// temporary branch always removed (or kept on request, then removed by the post step's cleanup),
// expired leftovers swept; and a run killed mid-verification cleaned up by the post step.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { Int32, type Document, type MongoClient } from 'mongodb';
import { parseConfig, type Config, type RawInputs } from '../../src/config.js';
import type { Io, Logger } from '../../src/io.js';
import { backup } from '../../src/modes/backup.js';
import { cleanupRestoreState, restore, STATE_RESTORE_BRANCH_ID, STATE_RESTORE_BRANCH_NAME } from '../../src/modes/restore.js';
import { connectMongo } from '../../src/mongo.js';
import { NeonApi, TOOL_ANNOTATION, type BranchInfo } from '../../src/neon.js';
import { loadCollection, loadDataset, randomDocuments, shopDataset } from '../../test/support/datasets.js';
import { lockEmulator, resetEmulator } from '../../test/support/emulator-lock.js';
import { parseCommandFile, runPost } from '../../test/support/run-bundle.js';
import { describeWithStack, repoRoot } from '../../test/support/stack.js';

const DB = `rs_shop_${process.pid}_${Date.now().toString(36)}`;
const STACK = ['MONGODB_SRV_URL', 'NEON_API_KEY', 'NEON_PROJECT_ID', 'NEON_API_HOST', 'NEON_DATABASE_URL'];
const COUNTS = { customers: 60, products: 20, orders: 150, random: 200 };
const TOTAL = COUNTS.customers + COUNTS.products + COUNTS.orders + COUNTS.random;

interface RecordingIo extends Io {
  outputs: Record<string, string>;
  state: [string, string][];
  summary: string;
  lines: string[];
}

function recordingIo(): RecordingIo {
  const lines: string[] = [];
  const log: Logger = {
    info: (m) => void lines.push(m),
    warn: (m) => void lines.push(`warning: ${m}`),
    error: (m) => void lines.push(`error: ${m}`),
    debug: () => undefined,
    group: async (name, fn) => {
      lines.push(`# ${name}`);
      return fn();
    },
  };
  const io: RecordingIo = {
    log,
    outputs: {},
    state: [],
    summary: '',
    lines,
    setOutput: (name, value) => void (io.outputs[name] = String(value)),
    appendSummary: async (md) => void (io.summary += md),
    saveState: (name, value) => void io.state.push([name, value]),
  };
  return io;
}

describeWithStack('mode: restore on the local stack', STACK, (env) => {
  let release: (() => Promise<void>) | undefined;
  let mongo: MongoClient;
  let neon: NeonApi;
  let backupBranch: BranchInfo;

  const config = (inputs: RawInputs = {}): Config => parseConfig({ mode: 'restore', databases: DB, ...inputs }, process.env);
  const restoreBranches = async () => neon.toolBranches('restore-test');

  beforeAll(async () => {
    release = await lockEmulator('restore.test.ts');
    await resetEmulator(env.NEON_API_HOST, env.NEON_API_KEY);
    neon = new NeonApi({ apiKey: env.NEON_API_KEY, projectId: env.NEON_PROJECT_ID, baseUrl: env.NEON_API_HOST, log: recordingIo().log });
    mongo = await connectMongo(env.MONGODB_SRV_URL);
    await loadDataset(mongo, DB, shopDataset({ customers: COUNTS.customers, products: COUNTS.products, orders: COUNTS.orders }, 11));
    await loadCollection(mongo, DB, 'random', randomDocuments(17, COUNTS.random));
    const io = recordingIo();
    const ok = await backup(parseConfig({ mode: 'backup', databases: DB, 'lock-wait-seconds': '60' }, process.env), io);
    if (!ok) throw new Error(`the backup to restore failed:\n${io.lines.join('\n')}`);
    backupBranch = (await neon.toolBranches('backup'))[0];
    expect(backupBranch.id).toBe(io.outputs['branch-id']);
  }, 600_000);

  afterAll(async () => {
    if (mongo) {
      await mongo.db(DB).dropDatabase().catch(() => undefined);
      await mongo.close();
    }
    await release?.();
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
      expect(io.lines).toContain(`PASS ${subject}: row count: ${COUNTS[c as keyof typeof COUNTS]} rows restored, manifest says ${COUNTS[c as keyof typeof COUNTS]}`);
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
    expect(names.indexOf(STATE_RESTORE_BRANCH_NAME)).toBeLessThan(names.indexOf(STATE_RESTORE_BRANCH_ID));
    expect(io.state).toContainEqual([STATE_RESTORE_BRANCH_ID, io.outputs['restore-branch-id']]);
    expect(io.state.slice(-2)).toEqual([
      [STATE_RESTORE_BRANCH_ID, ''],
      [STATE_RESTORE_BRANCH_NAME, ''],
    ]);
    expect(await restoreBranches()).toEqual([]);
    expect((await neon.listBranches()).some((b) => b.id === io.outputs['restore-branch-id'])).toBe(false);
  });

  test('sample mode, a passing user check, and source drift reported as a notice, not a failure', async () => {
    await mongo.db(DB).collection('orders').insertOne({ _id: new Int32(99_999), status: 'after-the-backup' } as Document);
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
      expect(io.lines).toContain(`warning: NOTE ${DB}.orders: source count: MongoDB now has ${COUNTS.orders + 1} documents, the backup ${COUNTS.orders} (changed since the backup)`);
      expect(io.lines).toContain(`PASS ${DB}.customers: source count: ${COUNTS.customers} documents in MongoDB = restored`);
      expect(await restoreBranches()).toEqual([]);
    } finally {
      await mongo.db(DB).collection('orders').deleteOne({ _id: new Int32(99_999) } as Document);
    }
  });

  test('a user check that does not return a single true fails the run and says what it returned', async () => {
    const io = recordingIo();
    const ok = await restore(config({ checks: `SELECT true\nSELECT count(*) = -1 FROM "${DB}"."orders"\nSELECT 1, 2` }), io);
    expect(ok).toBe(false);
    expect(io.outputs.verified).toBe('false');
    expect(io.lines).toContain(`error: Verification failed: (user check 2): SELECT count(*) = -1 FROM "${DB}"."orders": returned false; a check must return one row with a single true`);
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
    const password = decodeURIComponent(new URL(env.NEON_DATABASE_URL).password);
    expect(io.lines.join('\n')).not.toContain(password);

    // With keep-restore-branch the post step leaves it alone; without, it deletes what was recorded.
    const post = recordingIo();
    await cleanupRestoreState({ restoreBranchId: kept[0].id }, config({ 'keep-restore-branch': 'true' }), post);
    expect(await restoreBranches()).toHaveLength(1);
    await cleanupRestoreState({ restoreBranchId: kept[0].id }, config(), post);
    expect(post.lines).toContain(`supaneon-sync post: deleted restore branch "${kept[0].name}" (${kept[0].id}) left by the main step`);
    expect(await restoreBranches()).toEqual([]);
    // Run again (the branch is gone): says so, no error.
    await cleanupRestoreState({ restoreBranchId: kept[0].id }, config(), post);
    expect(post.lines.at(-1)).toMatch(/is already gone$/);
  });

  test('the post cleanup never deletes a branch that is not a restore test, even when named in the state', async () => {
    const post = recordingIo();
    await cleanupRestoreState({ restoreBranchName: backupBranch.name }, config(), post);
    expect(post.lines.some((l) => l.startsWith(`warning: supaneon-sync post: branch "${backupBranch.name}"`))).toBe(true);
    expect((await neon.listBranches()).some((b) => b.id === backupBranch.id)).toBe(true);
  });

  test("expired restore branches left by earlier runs are swept before the new one is made", async () => {
    const expiresAt = new Date(Date.now() + 2000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const leftover = await neon.createRestoreBranch({ name: 'restore-test-leftover', parentId: backupBranch.id, expiresAt });
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Date.parse(expiresAt) - Date.now()) + 500));
    const io = recordingIo();
    expect(await restore(config(), io)).toBe(true);
    expect(io.lines.some((l) => l.startsWith(`Retention: deleted "restore-test-leftover" (${leftover.branch.id}`))).toBe(true);
    expect(await restoreBranches()).toEqual([]);
  });

  test('a run killed while verifying leaves its branch; the post step, with the saved state, removes it', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'supaneon-restore-kill-'));
    const stateFile = path.join(dir, 'state');
    writeFileSync(stateFile, '');
    // A user check that sleeps keeps the run inside verification long enough to be killed there.
    const inputs: Record<string, string> = { mode: 'restore', databases: DB, checks: 'SELECT true FROM pg_sleep(60)' };
    const child = startRestoreProcess(inputs, stateFile);
    let state: Record<string, string> = {};
    try {
      const deadline = Date.now() + 90_000;
      while (!state[STATE_RESTORE_BRANCH_ID] && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        state = parseCommandFile(readFileSync(stateFile, 'utf8'));
      }
      expect(state[STATE_RESTORE_BRANCH_ID]).toMatch(/^br-/);
      // Wait until the data checks are done and the sleeping user check runs, then kill without warning.
      await waitFor(() => child.output().includes(`PASS ${DB}.random: jsonb agrees with the document`), 60_000);
      await new Promise((resolve) => setTimeout(resolve, 500));
      child.process.kill('SIGKILL');
      await child.exited;
    } finally {
      child.process.kill('SIGKILL');
    }
    expect((await restoreBranches()).map((b) => b.id)).toEqual([state[STATE_RESTORE_BRANCH_ID]]);

    const postInputs = { ...inputs, 'neon-api-key': env.NEON_API_KEY, 'neon-project-id': env.NEON_PROJECT_ID, 'neon-api-host': env.NEON_API_HOST, 'neon-database-url': env.NEON_DATABASE_URL };
    if (existsSync(path.join(repoRoot, 'dist', 'post', 'index.js')) && postBundleCleansRestore()) {
      const post = await runPost(postInputs, state);
      expect(post.exitCode).toBe(0);
    } else {
      // The post bundle is not built with restore cleanup: call what it runs.
      await cleanupRestoreState(
        { restoreBranchId: state[STATE_RESTORE_BRANCH_ID], restoreBranchName: state[STATE_RESTORE_BRANCH_NAME] },
        config(),
        recordingIo(),
      );
    }
    expect(await restoreBranches()).toEqual([]);
  }, 240_000);
});

/** Whether the built post step knows about restore branches (it is built from src/post.ts). */
function postBundleCleansRestore(): boolean {
  return readFileSync(path.join(repoRoot, 'dist', 'post', 'index.js'), 'utf8').includes(STATE_RESTORE_BRANCH_ID);
}

/**
 * The restore mode in its own process, with an Io that writes the action state the way the runner's
 * GITHUB_STATE file holds it, so the test can read it back after killing the process.
 */
function startRestoreProcess(inputs: Record<string, string>, stateFile: string) {
  const script = `
    import { appendFileSync } from 'node:fs';
    import { parseConfig } from './src/config.ts';
    import { restore } from './src/modes/restore.ts';
    const say = (m) => process.stdout.write(m + '\\n');
    const io = {
      log: { info: say, warn: say, error: say, debug: () => {}, group: (_n, fn) => fn() },
      setOutput: () => {},
      appendSummary: async () => {},
      saveState: (name, value) => appendFileSync(process.env.STATE_FILE, name + '=' + value + '\\n'),
    };
    await restore(parseConfig(JSON.parse(process.env.INPUTS), process.env), io);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: repoRoot,
    env: { ...process.env, INPUTS: JSON.stringify(inputs), STATE_FILE: stateFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  return { process: child, exited, output: () => out };
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
