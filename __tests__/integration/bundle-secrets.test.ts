// No secret leaves the action: every mode runs through the built bundle (main and post steps)
// with distinctive credentials, and nothing it writes (stdout, stderr, GITHUB_OUTPUT,
// GITHUB_STEP_SUMMARY, GITHUB_STATE) may contain any form of them except the `::add-mask::`
// lines that register them with the runner.
//
// The runs take the paths where leaks happen: driver errors that echo connection strings
// (unreachable MongoDB, refused Postgres password, refused API key), configuration errors on
// malformed secret inputs, and a complete backup -> restore -> recover that logs everything it
// reached along the way.
import { MongoClient } from 'mongodb';
import { MODES } from '../../src/config.js';
import { findSecretLeaks, runAction, runCli, runPost, type ActionRun } from '../../devkit/action.js';
import { describeWithStack } from '../../test/support/describe-with-stack.js';
import { createTestProject, type TestProject } from '../../test/support/test-project.js';

const STACK = ['MONGODB_SRV_URL', 'NEON_API_KEY', 'NEON_API_HOST'] as const;
/** Environment variables the product falls back to: none may carry credentials into these runs. */
const FALLBACKS = ['MONGODB_SRV_URL', 'NEON_API_KEY', 'NEON_PROJECT_ID', 'NEON_DATABASE_URL', 'NEON_API_HOST'] as const;

// URL-special characters in the passwords, percent-encoded inside the URLs.
const MONGO_USER = 'leak_user';
const MONGO_PASSWORD = 'p@ss:w/rd%zz+Mg1';
const PG_PASSWORD = 'Pg#pa55:w/rd@x%zz';
const TARGET_PASSWORD = 'T@rget:pw/%zz9';
const API_KEY = 'napi_LeakTestKey_7f3a9c2e1b';

function passwordForms(user: string, password: string): string[] {
  const encoded = encodeURIComponent(password);
  return [password, encoded, `${user}:${password}`, `${user}:${encoded}`];
}

describeWithStack('secrets never appear in what the bundle writes', STACK, (stack) => {
  // This file's own Neon project: the runs that get past a check use its real credentials.
  let project: TestProject;
  let fixture: ReturnType<typeof secretsFixture>;

  /** The scenarios' inputs, and every form of every secret in them, for this file's project. */
  function secretsFixture(project: TestProject) {
    const standby = new URL(project.databaseUrl);
    const pgUser = decodeURIComponent(standby.username);
    const realPgPassword = decodeURIComponent(standby.password);
    const mongo = new URL(stack.MONGODB_SRV_URL);

    // FerretDB (SQLite backend) accepts any user and password over the PLAIN mechanism (it refuses
    // SCRAM), so these credentials reach the real server.
    const PLAIN = '?authMechanism=PLAIN&authSource=%24external';
    const reachableMongo = `mongodb://${MONGO_USER}:${encodeURIComponent(MONGO_PASSWORD)}@${mongo.host}/${PLAIN}`;
    const unreachableMongo = `mongodb://${MONGO_USER}:${encodeURIComponent(MONGO_PASSWORD)}@127.0.0.1:1/`;
    const wrongPgPassword = new URL(project.databaseUrl);
    wrongPgPassword.password = encodeURIComponent(PG_PASSWORD);
    const target = `mongodb://${MONGO_USER}:${encodeURIComponent(TARGET_PASSWORD)}@127.0.0.1:1/`;

    const secrets = [
      ...passwordForms(MONGO_USER, MONGO_PASSWORD),
      `${MONGO_USER}:${encodeURIComponent(TARGET_PASSWORD)}@${mongo.host}`,
      ...passwordForms(pgUser, PG_PASSWORD),
      ...passwordForms(MONGO_USER, TARGET_PASSWORD),
      API_KEY,
      reachableMongo,
      unreachableMongo,
      wrongPgPassword.toString(),
      target,
      // the stack's real credentials, used where a run must get past a check
      project.apiKey,
      realPgPassword,
      project.databaseUrl,
    ];

    const base = {
      'neon-project-id': project.projectId,
      'neon-api-host': project.apiHost,
      'target-database-prefix': 'leaktest_',
      'backup-branch': 'no-such-backup-branch',
    };
    const scenarios: Record<string, Record<string, string>> = {
      'every service refuses or is unreachable': {
        ...base,
        'mongodb-uri': unreachableMongo,
        'neon-database-url': wrongPgPassword.toString(),
        'neon-api-key': API_KEY,
        'target-mongodb-uri': target,
      },
      'MongoDB and Postgres accept, the API key is refused': {
        ...base,
        'mongodb-uri': reachableMongo,
        'neon-database-url': project.databaseUrl,
        'neon-api-key': API_KEY,
        'target-mongodb-uri': target,
      },
      'the API accepts, Postgres refuses the password': {
        ...base,
        'mongodb-uri': reachableMongo,
        'neon-database-url': wrongPgPassword.toString(),
        'neon-api-key': project.apiKey,
        'target-mongodb-uri': target,
      },
      // Unescaped '@' and '/' in the passwords: drivers would misparse these URLs and echo pieces.
      'passwords not percent-encoded': {
        ...base,
        'mongodb-uri': `mongodb://${MONGO_USER}:${MONGO_PASSWORD}@${mongo.host}/`,
        'neon-database-url': `postgresql://${pgUser}:${PG_PASSWORD}@${standby.host}/neondb?sslmode=require`,
        'neon-api-key': API_KEY,
        'target-mongodb-uri': `mongodb://${MONGO_USER}:${TARGET_PASSWORD}@127.0.0.1:1/`,
      },
      'malformed secret inputs': {
        ...base,
        'mongodb-uri': `https://${MONGO_USER}:${encodeURIComponent(MONGO_PASSWORD)}@example.net/`,
        'neon-database-url': wrongPgPassword.toString().replace('sslmode=require', 'sslmode=disable'),
        'neon-api-key': API_KEY,
        'target-mongodb-uri': `mongodb+srv://${MONGO_USER}:${encodeURIComponent(TARGET_PASSWORD)}@a.example.net,b.example.net/`,
      },
    };
    return { standby, pgUser, realPgPassword, mongo, PLAIN, reachableMongo, secrets, scenarios };
  }

  beforeAll(async () => {
    project = await createTestProject('bundle-secrets.test.ts');
    fixture = secretsFixture(project);
  });

  afterAll(async () => {
    await project?.dispose();
  });

  // No env fallbacks: only the inputs above carry credentials.
  const env = Object.fromEntries(FALLBACKS.map((k) => [k, undefined]));

  /** Values registered with the runner (`::add-mask::` lines, command escaping undone). */
  function maskedValues(run: ActionRun): string[] {
    return run.stdout
      .split('\n')
      .filter((l) => l.startsWith('::add-mask::'))
      .map((l) => l.slice('::add-mask::'.length).replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%25/g, '%'));
  }

  function expectNoLeak(run: ActionRun, label: string): void {
    expect({ label, leaks: findSecretLeaks(run, fixture.secrets) }).toEqual({ label, leaks: [] });
  }

  test.each(MODES.map((m) => [m]))('mode %s: main and post steps, every scenario', async (mode) => {
    const { scenarios, realPgPassword } = fixture;
    const runs = await Promise.all(
      Object.entries(scenarios).map(async ([name, inputs]) => {
        const main = await runAction({ mode, ...inputs }, { env, timeoutMs: 60_000 });
        const post = await runPost({ mode, ...inputs }, main.state, { env, timeoutMs: 60_000 });
        return { name, main, post };
      }),
    );
    for (const { name, main, post } of runs) {
      expectNoLeak(main, `${mode} / ${name} / main`);
      expectNoLeak(post, `${mode} / ${name} / post`);
      // Every scenario is built to fail, and must say so on the failure line.
      expect({ name, exitCode: main.exitCode }).toEqual({ name, exitCode: 1 });
      expect(main.stdout).toMatch(new RegExp(`^::error::supaneon-sync ${mode} failed: `, 'm'));
      // Every form of every secret input was registered with the runner before anything else was
      // written, so the runner hides them even if a message slipped through redaction.
      const masked = maskedValues(main);
      const firstOther = main.stdout.split('\n').findIndex((l) => l !== '' && !l.startsWith('::add-mask::'));
      expect(
        main.stdout
          .split('\n')
          .slice(firstOther)
          .some((l) => l.startsWith('::add-mask::')),
      ).toBe(false);
      const inputs = scenarios[name];
      const expected = [
        MONGO_PASSWORD,
        `${MONGO_USER}:${MONGO_PASSWORD}`,
        TARGET_PASSWORD,
        API_KEY === inputs['neon-api-key'] ? API_KEY : project.apiKey,
        inputs['neon-database-url'].includes(encodeURIComponent(PG_PASSWORD)) || inputs['neon-database-url'].includes(PG_PASSWORD)
          ? PG_PASSWORD
          : realPgPassword,
      ];
      expect({ name, missing: expected.filter((form) => !masked.includes(form)) }).toEqual({ name, missing: [] });
    }
  });

  test('the CLI, on the same failures', async () => {
    const inputs = fixture.scenarios['every service refuses or is unreachable'];
    const args = ['validate', ...Object.entries(inputs).flatMap(([k, v]) => [`--${k}`, v])];
    const run = await runCli(args, { env, timeoutMs: 60_000 });
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toMatch(/^supaneon-sync validate failed: /m);
    expectNoLeak(run, 'cli validate');
  });

  describe('a complete backup, restore and recover', () => {
    const SOURCE_DB = `leak_src_${process.pid}`;
    const PREFIX = 'leak_rec_';
    let mongoClient: MongoClient | undefined;

    beforeAll(async () => {
      mongoClient = new MongoClient(stack.MONGODB_SRV_URL);
      await mongoClient.connect();
      await mongoClient
        .db(SOURCE_DB)
        .collection<{ _id: number; owner: string; note: string }>('accounts')
        .insertMany(Array.from({ length: 50 }, (_, i) => ({ _id: i, owner: `user${i}`, note: 'not a secret' })));
    }, 600_000);

    afterAll(async () => {
      for (const db of [SOURCE_DB, `${PREFIX}${SOURCE_DB}`])
        await mongoClient
          ?.db(db)
          .dropDatabase()
          .catch(() => undefined);
      await mongoClient?.close();
    });

    test('nothing secret in any step, main or post', async () => {
      const { reachableMongo, mongo, PLAIN } = fixture;
      const common = { ...project.inputs, databases: SOURCE_DB };
      const backup = await runAction({ ...common, mode: 'backup', 'mongodb-uri': reachableMongo }, { env, timeoutMs: 300_000 });
      expectNoLeak(backup, 'backup');
      expect(backup.exitCode).toBe(0);
      const branchId = backup.outputs['branch-id'];
      expect(branchId).toMatch(/^br-/);

      const restoreInputs = {
        ...common,
        mode: 'restore',
        'backup-branch': branchId,
        'mongodb-uri': reachableMongo,
        'compare-source': 'true',
      };
      const restore = await runAction(restoreInputs, { env, timeoutMs: 300_000 });
      expectNoLeak(restore, 'restore');
      expect(restore.exitCode).toBe(0);
      expect(restore.outputs.verified).toBe('true');
      expectNoLeak(await runPost(restoreInputs, restore.state, { env, timeoutMs: 120_000 }), 'restore post');

      const recoverTarget = `mongodb://${MONGO_USER}:${encodeURIComponent(TARGET_PASSWORD)}@${mongo.host}/${PLAIN}`;
      const recover = await runAction(
        { ...common, mode: 'recover', 'backup-branch': branchId, 'target-mongodb-uri': recoverTarget, 'target-database-prefix': PREFIX },
        { env, timeoutMs: 300_000 },
      );
      expectNoLeak(recover, 'recover');
      expect(recover.exitCode).toBe(0);
      expect(recover.outputs.verified).toBe('true');
      expect(recover.outputs.documents).toBe('50');
    }, 900_000);
  });
});
