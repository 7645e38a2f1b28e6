// The attack matrix, run through the built bundle as GitHub runs it: hostile collection names (line
// breaks, workflow commands, HTML and Markdown, control characters, very long), secrets of every
// shape (one character, percent-encoded, unicode), and the inputs that used to change the wrong
// data silently (a missing database, a list of separators, a branch this tool did not make, a
// recover prefix past MongoDB's limits, the branch limit reached). The log is read the way GitHub's
// runner reads it (devkit/workflow-commands.ts): no name may trigger a command.
import { MongoClient } from 'mongodb';
import type { Logger } from '../../src/io.js';
import { NeonApi, TOOL_ANNOTATION } from '../../src/neon.js';
import { connectPostgres } from '../../src/postgres.js';
import { findSecretLeaks, runAction, runCli, type ActionRun } from '../../devkit/action.js';
import { describeWithStack } from '../../test/support/describe-with-stack.js';
import { createTestProject, type TestProject } from '../../test/support/test-project.js';
import { workflowCommands } from '../../devkit/workflow-commands.js';

const STACK = ['MONGODB_SRV_URL', 'NEON_API_KEY', 'NEON_API_HOST'] as const;
/** Environment variables the product falls back to: none may carry settings into these runs. */
const FALLBACKS = ['MONGODB_SRV_URL', 'NEON_API_KEY', 'NEON_PROJECT_ID', 'NEON_DATABASE_URL', 'NEON_API_HOST'] as const;

// Collection names MongoDB accepts on Linux. (FerretDB refuses '"' in names; the unit tests cover it.)
const HOSTILE = [
  'x\n::add-mask::br-\ny',
  '::add-mask::br-',
  '  ::error title=owned::pwned',
  'a ##[add-mask]br-',
  'x\r::set-output name=branch-id::br-fake',
  '<img src=x onerror=alert(1)>',
  '**bold** _em_ [link](https://evil.example) | pipe',
  '\u001b[31mred\u001b[0m',
  "`tick` it's",
  'ü'.repeat(100),
  'L'.repeat(200),
];

const silent: Logger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  debug: () => undefined,
  group: (_n, fn) => fn(),
};

/** Commands the runner would obey that no run of ours writes: anything a name could have forged. */
function forgedCommands(run: ActionRun): string[] {
  return [...workflowCommands(run.stdout), ...workflowCommands(run.stderr)]
    .filter((c) => {
      // Our own masks are whole secret forms of at least 8 characters.
      if (c.name === 'add-mask') return c.data.length < 8 || c.data.startsWith('br-');
      // Annotations and groups are ours; one whose whole text is a forged payload is not.
      if (['group', 'endgroup', 'debug', 'warning', 'error', 'notice'].includes(c.name)) return c.data === 'pwned';
      return true; // set-output, set-env, save-state, add-path…: never written to the log by this product
    })
    .map((c) => `${c.name}::${c.data}`);
}

describeWithStack('hostile names, short secrets and refused inputs, through the bundle', STACK, (stack) => {
  const DB = `hostile_${process.pid}`;
  // 40 bytes: with a 30-byte prefix the target database name passes MongoDB's 63 bytes.
  const LONG_DB = `ns_${process.pid}_`.padEnd(40, 'x');
  // Exists (it holds a collection) but holds no document.
  const EMPTY_DB = `empty_${process.pid}`;
  const mongo = new URL(stack.MONGODB_SRV_URL);
  // FerretDB (SQLite backend) accepts any user and password over PLAIN.
  const PLAIN = '?authMechanism=PLAIN&authSource=%24external';
  const withPassword = (password: string) => `mongodb://hostile_user:${password}@${mongo.host}/${PLAIN}`;
  const env = Object.fromEntries(FALLBACKS.map((k) => [k, undefined]));
  // This file's own Neon project (its standby is the project's default branch).
  let project: TestProject;
  let common: TestProject['inputs'];
  let neon: NeonApi;
  const backupIds = async () => (await neon.toolBranches('backup')).map((b) => b.id);
  let client: MongoClient | undefined;
  const names: string[] = [];

  async function standbyTables(): Promise<string[]> {
    const c = await connectPostgres(project.databaseUrl);
    try {
      const { rows } = await c.query<{ t: string }>(
        "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
      );
      return rows.map((r) => r.t);
    } finally {
      await c.end();
    }
  }

  beforeAll(async () => {
    // A small branch limit: the limit case needs fewer branches made by hand.
    // Launch: the limit case protects a branch, which Neon's free plan does not allow.
    project = await createTestProject('bundle-hostile.test.ts', { branchLimit: 6, plan: 'launch' });
    common = project.inputs;
    neon = new NeonApi({ apiKey: project.apiKey, projectId: project.projectId, baseUrl: project.apiHost, log: silent });
    client = new MongoClient(stack.MONGODB_SRV_URL);
    await client.connect();
    for (const name of HOSTILE) {
      await client
        .db(DB)
        .collection<{ _id: number; name?: string; n?: number }>(name)
        .insertMany([
          { _id: 1, name },
          { _id: 2, n: 2 },
        ]);
      names.push(name);
    }
    await client
      .db(LONG_DB)
      .collection<{ _id: number }>('orders')
      .insertMany([{ _id: 1 }, { _id: 2 }]);
    await client.db(EMPTY_DB).createCollection('nothing_yet');
  }, 300_000);

  afterAll(async () => {
    for (const db of [DB, LONG_DB, EMPTY_DB])
      await client
        ?.db(db)
        .dropDatabase()
        .catch(() => undefined);
    await client?.close();
    await project?.dispose();
  });

  test('backup and restore of hostile names with a one-letter MongoDB password: no command forged, outputs intact, one warning', async () => {
    const backup = await runAction(
      { ...common, mode: 'backup', 'mongodb-uri': withPassword('r'), databases: `${DB},${LONG_DB}` },
      { env, timeoutMs: 300_000 },
    );
    expect({ exit: backup.exitCode, stderr: backup.stderr }).toEqual({ exit: 0, stderr: '' });
    expect(forgedCommands(backup)).toEqual([]);
    expect(
      workflowCommands(backup.stdout)
        .filter((c) => c.name === 'add-mask')
        .map((c) => c.data),
    ).not.toContain('r');
    // Our own outputs are ours: not rewritten, not dropped.
    expect(backup.outputs['branch-id']).toMatch(/^br-[a-z0-9-]+$/);
    expect((await backupIds())[0]).toBe(backup.outputs['branch-id']);
    expect(backup.outputs.consistency).toBe('per-collection');
    expect(backup.outputs.collections).toBe(String(HOSTILE.length + 1));
    expect(backup.outputs.documents).toBe(String(2 * HOSTILE.length + 2));
    const warnings = workflowCommands(backup.stdout).filter((c) => c.name === 'warning');
    expect(warnings.filter((w) => /too short to mask safely/.test(w.data))).toHaveLength(1);
    // The password never appears in a connection string (but in the masks that register the URL).
    expect(backup.stdout.split('\n').filter((l) => !l.startsWith('::add-mask::') && l.includes('hostile_user:r@'))).toEqual([]);
    // The summary shows the names as text: no HTML, no emphasis, every row one line.
    expect(backup.summary).not.toMatch(/<img|\*\*bold\*\*|(?<!\\)\]\(https/);
    expect(backup.summary).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(backup.summary.split('\n').filter((l) => l.startsWith(`| ${DB}.`))).toHaveLength(HOSTILE.length);

    const restore = await runAction(
      { ...common, mode: 'restore', 'backup-branch': backup.outputs['branch-id'] },
      { env, timeoutMs: 300_000 },
    );
    expect(restore.exitCode).toBe(0);
    expect(restore.outputs.verified).toBe('true');
    expect(forgedCommands(restore)).toEqual([]);
    expect(restore.summary).not.toMatch(/<img|\*\*bold\*\*/);
  }, 700_000);

  test('recover: a prefix that pushes a database name past 63 bytes is refused before anything is written', async () => {
    const prefix = 'p'.repeat(30);
    const run = await runAction(
      {
        ...common,
        mode: 'recover',
        'backup-branch': 'standby',
        databases: LONG_DB,
        'target-mongodb-uri': stack.MONGODB_SRV_URL,
        'target-database-prefix': prefix,
      },
      { env, timeoutMs: 300_000 },
    );
    expect(run.exitCode).toBe(1);
    const failure =
      workflowCommands(run.stdout).find((c) => c.name === 'error' && c.data.startsWith('supaneon-sync recover failed'))?.data ?? '';
    expect(failure).toContain(`${LONG_DB}.orders: target database name "${prefix}${LONG_DB}"`);
    expect(failure).toContain(`target-database-prefix '${prefix}'`);
    expect(failure).toMatch(/is 70 bytes; MongoDB allows at most 63 bytes in a database name/);
    expect(failure).toMatch(/Fix: use a target-database-prefix of at most 23 bytes/);
    const dbs = (await client!.db('admin').admin().listDatabases({ nameOnly: true })).databases.map((d) => d.name);
    expect(dbs.filter((d) => d.startsWith(prefix))).toEqual([]);
  }, 300_000);

  test('backup: a listed database that does not exist stops the run and changes nothing; only separators are a usage error', async () => {
    const tables = await standbyTables();
    const before = await backupIds();
    const missing = await runAction(
      { ...common, mode: 'backup', 'mongodb-uri': stack.MONGODB_SRV_URL, databases: `${DB},nosuchdb_${process.pid}` },
      { env, timeoutMs: 300_000 },
    );
    expect(missing.exitCode).toBe(1);
    expect(missing.stdout).toContain(
      `::error::supaneon-sync backup failed: database nosuchdb_${process.pid} listed in 'databases' does not exist: fix the names in the 'databases' input`,
    );
    const separators = await runAction(
      { ...common, mode: 'backup', 'mongodb-uri': stack.MONGODB_SRV_URL, databases: ' , ,' },
      { env, timeoutMs: 120_000 },
    );
    expect(separators.exitCode).toBe(1);
    expect(separators.stdout).toMatch(/input 'databases' holds only separators/);
    expect(await standbyTables()).toEqual(tables);
    expect(await backupIds()).toEqual(before);

    // A listed database that exists but is empty is said, and the backup goes on.
    // (An earlier backup in this file selected DB too: dropping it from the selection is deliberate here.)
    const empty = await runAction(
      {
        ...common,
        mode: 'backup',
        'mongodb-uri': stack.MONGODB_SRV_URL,
        databases: `${LONG_DB},${EMPTY_DB}`,
        'allow-selection-change': 'true',
      },
      { env, timeoutMs: 300_000 },
    );
    expect(empty.exitCode).toBe(0);
    expect(empty.stdout).toContain(`database ${EMPTY_DB} (listed in 'databases') is empty: its 1 collection(s) hold no documents`);
  }, 600_000);

  test('restore and recover refuse a branch this tool did not make, unless the standby is asked for by name', async () => {
    const main = (await neon.listBranches()).find((b) => b.isDefault);
    for (const mode of ['restore', 'recover']) {
      const run = await runAction(
        { ...common, mode, 'backup-branch': main!.name, 'target-mongodb-uri': stack.MONGODB_SRV_URL, 'target-database-prefix': 'never_' },
        { env, timeoutMs: 300_000 },
      );
      expect({ mode, exit: run.exitCode }).toEqual({ mode, exit: 1 });
      expect(run.stdout).toMatch(
        new RegExp(`failed: backup-branch "${main!.name}" is branch "${main!.name}" \\(${main!.id}\\), which is the standby, not a backup`),
      );
      expect(run.stdout).toMatch(/set backup-branch: standby to read the standby itself/);
    }
    const standby = await runAction({ ...common, mode: 'restore', 'backup-branch': 'standby' }, { env, timeoutMs: 300_000 });
    expect(standby.exitCode).toBe(0);
    expect(standby.outputs.verified).toBe('true');
    expect(standby.outputs['backup-branch-id']).toBe(main!.id);
  }, 900_000);

  test('secrets of every shape: none leaks, short ones are not masked, outputs stay intact; the driver never echoes an option value', async () => {
    const shapes = {
      'one character': 'x',
      'URL-encoded': encodeURIComponent('@:/%?#[]'),
      unicode: encodeURIComponent('пароль-ü-密码-🔑'),
      'short unicode': encodeURIComponent('ü'),
    };
    // One after the other: four bundles validating at once on a loaded two-core runner can miss
    // validate's own connect deadlines, which would test the machine rather than the masking.
    const runs = [];
    for (const [label, password] of Object.entries(shapes)) {
      const run = await runAction(
        { ...common, mode: 'validate', 'mongodb-uri': withPassword(password), databases: DB },
        { env, timeoutMs: 120_000 },
      );
      runs.push({ label, password, run });
    }
    for (const { label, password, run } of runs) {
      const decoded = decodeURIComponent(password);
      const long = [password, decoded].filter((f) => [...f].length >= 8);
      expect({ label, leaks: findSecretLeaks(run, long) }).toEqual({ label, leaks: [] });
      // Anywhere but the ::add-mask:: lines that hand the whole URL to the runner.
      const written = [run.stdout, run.stderr, run.summary, run.files.output, run.files.state]
        .join('\n')
        .split('\n')
        .filter((l) => !l.startsWith('::add-mask::'));
      expect({ label, inUrl: written.some((l) => l.includes(`hostile_user:${password}@`)) }).toEqual({ label, inUrl: false });
      expect({ label, valid: run.outputs.valid }).toEqual({ label, valid: 'true' });
      expect(forgedCommands(run)).toEqual([]);
      expect(() => JSON.parse(run.outputs.report)).not.toThrow();
    }

    const VALUE = 'Zq7OptionValueEcho';
    const option = await runAction(
      { ...common, mode: 'validate', 'mongodb-uri': `${stack.MONGODB_SRV_URL.replace(/\/?$/, '/')}?readPreference=${VALUE}` },
      { env, timeoutMs: 120_000 },
    );
    expect(option.exitCode).toBe(1);
    expect(findSecretLeaks(option, [VALUE])).toEqual([]);
    expect(option.summary).toContain('readPreference (value not shown)');
  }, 600_000);

  test('the CLI names a stray argument by its position, never its value', async () => {
    const run = await runCli(['backup', '--retain', '3', 'RAWSECRET21'], { env, timeoutMs: 60_000 });
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('unexpected argument 4');
    expect(`${run.stdout}${run.stderr}`).not.toContain('RAWSECRET21');

    // Run from a workflow's run: step, the CLI's output is read by the runner too: a value it
    // prints (here an invalid project id) cannot act as a command.
    const inStep = await runCli(['validate', '--neon-project-id', 'x\n::add-mask::br-\ny'], {
      env: { ...env, GITHUB_ACTIONS: 'true' },
      timeoutMs: 60_000,
    });
    expect(inStep.exitCode).toBe(1);
    expect(inStep.stdout + inStep.stderr).toContain('::add-mask::br-');
    expect(forgedCommands(inStep)).toEqual([]);
  });

  test('at the branch limit with retain backups, nothing is deleted before the new backup exists: the run refuses and says why', async () => {
    const limit = (await neon.getProject()).branchLimit ?? 10;
    const first = { ...common, mode: 'backup', 'mongodb-uri': stack.MONGODB_SRV_URL, databases: LONG_DB, 'allow-selection-change': 'true' };
    while ((await backupIds()).length < 2) expect((await runAction(first, { env, timeoutMs: 300_000 })).exitCode).toBe(0);
    // retain = the backups there are: none of them may go before a new one exists.
    const retain = (await backupIds()).length;
    const inputs = { ...first, retain: String(retain) };
    const made: string[] = [];
    for (let i = (await neon.listBranches()).length; i < limit; i++) {
      made.push(await project.createPlainBranch(`hostile-manual-${i}`));
    }
    // One of them protected: never deleted, counted toward the limit.
    // (Retrying the 423 a project answers while the previous operation still runs, for at most 30 s.)
    const protect = async (on: boolean): Promise<number> => {
      for (let attempt = 0; ; attempt++) {
        const res = await fetch(`${project.apiHost}/projects/${project.projectId}/branches/${made[0]}`, {
          method: 'PATCH',
          headers: { authorization: `Bearer ${project.apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ branch: { protected: on } }),
          signal: AbortSignal.timeout(30_000),
        });
        if (res.status !== 423 || attempt >= 100) return res.status;
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    };
    expect(await protect(true)).toBe(200);
    try {
      const before = await backupIds();
      const tables = await standbyTables();
      const run = await runAction(inputs, { env, timeoutMs: 300_000 });
      expect(run.exitCode).toBe(1);
      expect(run.stdout).toMatch(new RegExp(`branch limit \\(${limit}\\) leaves no room`));
      expect(run.stdout).toContain(`fewer than ${retain} completed backups`);
      expect(run.stdout).toMatch(/1 protected branch\(es\) count toward the limit and are never deleted/);
      expect(run.stdout).toContain(`Fix: lower retain to ${retain - 1}`);
      expect(await backupIds()).toEqual(before);
      expect(await standbyTables()).toEqual(tables);
      expect((await neon.listBranches()).filter((b) => b.annotations[TOOL_ANNOTATION] === undefined && made.includes(b.id))).toHaveLength(
        made.length,
      );
    } finally {
      await protect(false);
      for (const id of made) await neon.deleteBranch(id).catch(() => undefined);
    }
  }, 900_000);
});
