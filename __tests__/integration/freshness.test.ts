// max-backup-age: restore and validate fail, naming the newest completed backup's age, when it is
// older than the limit; restore then stops before it makes any branch.
import type { MongoClient } from 'mongodb';
import { parseConfig, type RawInputs } from '../../src/config.js';
import type { Logger } from '../../src/io.js';
import { backup } from '../../src/modes/backup.js';
import { restore } from '../../src/modes/restore.js';
import { validate, type ValidationReport } from '../../src/modes/validate.js';
import { connectMongo } from '../../src/mongo.js';
import { NeonApi, type BranchInfo } from '../../src/neon.js';
import { loadCollection } from '../../devkit/shop.js';
import { randomDocuments } from '../../test/support/random-documents.js';
import { recordingIo } from '../../test/support/recording-io.js';
import { describeWithStack } from '../../test/support/describe-with-stack.js';
import { createTestProject, type TestProject } from '../../test/support/test-project.js';

const DB = `fresh_${process.pid}_${Date.now().toString(36)}`;
const STACK = ['MONGODB_SRV_URL', 'NEON_API_KEY', 'NEON_API_HOST'];
const quiet: Logger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  debug: () => undefined,
  group: (_n, fn) => fn(),
};

describeWithStack('max-backup-age', STACK, (env) => {
  // This file's own Neon project: no other file's backups can make its newest backup younger.
  let project: TestProject;
  let mongo: MongoClient;
  let neon: NeonApi;
  let made: BranchInfo;

  const config = (mode: string, inputs: RawInputs = {}) =>
    parseConfig({ mode, databases: DB, 'lock-wait-seconds': '60', ...inputs }, { ...process.env, ...project.env });
  const branchNames = async () => (await neon.listBranches()).map((b) => b.name).sort();

  async function freshnessCheck(maxAge: string) {
    const io = recordingIo();
    const ok = await validate(config('validate', { 'max-backup-age': maxAge }), io);
    const report = JSON.parse(io.outputs.report) as ValidationReport;
    return { ok, check: report.checks.find((c) => c.name === 'backup freshness') };
  }

  beforeAll(async () => {
    project = await createTestProject('freshness.test.ts');
    neon = new NeonApi({ apiKey: project.apiKey, projectId: project.projectId, baseUrl: project.apiHost, log: quiet });
    mongo = await connectMongo(env.MONGODB_SRV_URL);
    await loadCollection(mongo, DB, 'items', randomDocuments(7, 30));
  }, 2_400_000);

  afterAll(async () => {
    await mongo
      ?.db(DB)
      .dropDatabase()
      .catch(() => undefined);
    await mongo?.close();
    await project?.dispose();
  });

  test('without any backup, restore and validate fail and say to run a backup', async () => {
    const before = await branchNames();
    await expect(restore(config('restore', { 'max-backup-age': '26h' }), recordingIo())).rejects.toThrow(
      /^no completed backup exists, so none is younger than max-backup-age 26h: run mode backup/,
    );
    expect(await branchNames()).toEqual(before);
    const { ok, check } = await freshnessCheck('26h');
    expect(ok).toBe(false);
    expect(check).toMatchObject({ ok: false, detail: expect.stringMatching(/^no completed backup exists/) });
  });

  test('a fresh backup passes, naming its age', async () => {
    const io = recordingIo();
    expect(await backup(config('backup'), io)).toBe(true);
    made = (await neon.toolBranches('backup'))[0];
    expect(made.id).toBe(io.outputs['branch-id']);

    const restoreIo = recordingIo();
    expect(await restore(config('restore', { 'max-backup-age': '1m' }), restoreIo)).toBe(true);
    expect(restoreIo.lines).toContain(
      `freshness: the newest completed backup "${made.name}" (${made.id}) is 0m old (made ${made.createdAt}), within max-backup-age 1m`,
    );
    const { ok, check } = await freshnessCheck('1m');
    expect(ok).toBe(true);
    expect(check).toMatchObject({ ok: true, detail: expect.stringContaining(`"${made.name}" (${made.id}) is 0m old`) });
  });

  test('once the newest backup is older than the limit, both fail and restore makes no branch', async () => {
    // The emulator stamps branches with the real time: wait (bounded) until the backup is past 1m.
    const due = Date.parse(made.createdAt) + 61_000;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now())));

    const { ok, check } = await freshnessCheck('1m');
    expect(ok).toBe(false);
    expect(check).toMatchObject({
      ok: false,
      detail: expect.stringMatching(
        new RegExp(
          `^the newest completed backup "${made.name}" \\(${made.id}\\) is 1m old .*, older than max-backup-age 1m: check that the backup workflow still runs`,
        ),
      ),
    });
    expect((await freshnessCheck('26h')).ok).toBe(true);

    const before = await branchNames();
    const io = recordingIo();
    await expect(restore(config('restore', { 'max-backup-age': '1m' }), io)).rejects.toThrow(/is 1m old .*older than max-backup-age 1m/);
    expect(io.state).toEqual([]);
    expect(await branchNames()).toEqual(before);
  }, 180_000);
});
