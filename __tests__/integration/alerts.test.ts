// Alerts through GitHub: against a stand-in of GitHub's REST API over HTTP (test/support/github-api.ts),
// first the alert module itself, then the built bundle (`node dist/index.js`, which proves the
// ESM-only @actions/github runs bundled) with the runner's environment: a failure opens one tracking
// issue, a further failure comments on it, a success comments and closes it, and an alert that
// cannot be sent is a warning that leaves the original failure as it was.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../src/io.js';
import { ALERT_LABEL, alertMarker, sendAlert } from '../../src/alerts.js';
import { currentGithubRun, type GithubRunInfo } from '../../src/github-run.js';
import { readManifest } from '../../src/manifest.js';
import { connectMongo } from '../../src/mongo.js';
import { connectPostgres } from '../../src/postgres.js';
import { loadCollection } from '../../devkit/shop.js';
import { randomDocuments } from '../../test/support/random-documents.js';
import { startGithubStandIn, type GithubStandIn } from '../../test/support/github-api.js';
import { recordingIo } from '../../test/support/recording-io.js';
import { findSecretLeaks, runAction, type ActionRun } from '../../devkit/action.js';
import { describeWithStack } from '../../test/support/describe-with-stack.js';
import { createTestProject, type TestProject } from '../../test/support/test-project.js';

const REPOSITORY = 'acme/shop';
const TOKEN = 'ghs_AlertTestToken0123456789abcdef';
const SHA = '0123456789abcdef0123456789abcdef01234567';
const SERVER = 'https://github.example';

/** An address where nothing listens: a port that was free a moment ago. */
async function closedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

let api: GithubStandIn;
beforeEach(async () => {
  api = await startGithubStandIn({ repository: REPOSITORY, token: TOKEN });
});
afterEach(async () => {
  await api.close();
});

describe('sendAlert', () => {
  const run = (runId: number): GithubRunInfo =>
    currentGithubRun({ repo: { owner: 'acme', repo: 'shop' }, runId, sha: SHA, serverUrl: `${SERVER}/`, apiUrl: api.apiUrl })!;
  const failure = { ok: false as const, failure: 'supaneon-sync backup failed: MongoDB is unreachable', details: ['error: `x` ``` y'] };

  test('the run record comes from the context: repository, run id, sha and the run page on this server', () => {
    expect(run(7)).toEqual({
      owner: 'acme',
      repo: 'shop',
      repository: REPOSITORY,
      runId: '7',
      sha: SHA,
      serverUrl: SERVER,
      apiUrl: api.apiUrl,
      runUrl: `${SERVER}/acme/shop/actions/runs/7`,
    });
    expect(currentGithubRun({ repo: { owner: 'a', repo: 'b' }, runId: NaN, sha: '', serverUrl: SERVER, apiUrl: SERVER })).toBeUndefined();
    const noRepo = {
      get repo(): never {
        throw new Error('context.repo requires a GITHUB_REPOSITORY');
      },
      runId: 1,
      sha: '',
      serverUrl: SERVER,
      apiUrl: SERVER,
    };
    expect(currentGithubRun(noRepo)).toBeUndefined();
  });

  test('failure opens one issue per mode; a further failure comments; a success comments and closes; pull requests and other modes are left alone', async () => {
    api.issues.push({
      number: 1,
      title: 'a PR quoting the marker',
      body: alertMarker('backup'),
      state: 'open',
      stateReason: null,
      labels: [ALERT_LABEL],
      comments: [],
      pullRequest: true,
    });
    const io = recordingIo();
    await sendAlert({ token: TOKEN, mode: 'backup', run: run(11), outcome: failure, log: io.log, now: new Date('2026-12-01T03:17:00Z') });
    expect(api.issues).toHaveLength(2);
    const issue = api.issues[1];
    expect(issue).toMatchObject({ title: 'supaneon-sync backup is failing', state: 'open', labels: [ALERT_LABEL], comments: [] });
    expect(issue.body).toContain(alertMarker('backup'));
    expect(issue.body).toContain(`[run 11](${SERVER}/acme/shop/actions/runs/11) at 2026-12-01T03:17:00.000Z (commit \`0123456789ab\`)`);
    expect(issue.body).toContain('```text\nsupaneon-sync backup failed: MongoDB is unreachable\n```');
    expect(issue.body).toContain('````text\nerror: `x` ``` y\n````');
    expect(io.lines).toEqual([`alert: opened tracking issue #2 (https://github.example/${REPOSITORY}/issues/2)`]);

    await sendAlert({ token: TOKEN, mode: 'backup', run: run(12), outcome: failure, log: io.log });
    await sendAlert({
      token: TOKEN,
      mode: 'restore',
      run: run(12),
      outcome: { ...failure, failure: 'supaneon-sync restore failed: x' },
      log: io.log,
    });
    expect(api.issues.map((i) => [i.number, i.title, i.comments.length])).toEqual([
      [1, 'a PR quoting the marker', 0],
      [2, 'supaneon-sync backup is failing', 1],
      [3, 'supaneon-sync restore is failing', 0],
    ]);
    expect(api.issues[1].comments[0]).toContain(`[run 12](${SERVER}/acme/shop/actions/runs/12)`);

    await sendAlert({ token: TOKEN, mode: 'backup', run: run(13), outcome: { ok: true }, log: io.log });
    expect(api.issues[1]).toMatchObject({ state: 'closed', stateReason: 'completed' });
    expect(api.issues[1].comments[1]).toMatch(
      new RegExp(`^supaneon-sync backup succeeded again in \\[run 13\\]\\(${SERVER}/acme/shop/actions/runs/13\\)`),
    );
    expect(api.issues[2].state).toBe('open');

    // Nothing failing: a success sends no write at all.
    const writes = api.requests.filter((r) => r.method !== 'GET').length;
    await sendAlert({ token: TOKEN, mode: 'backup', run: run(14), outcome: { ok: true }, log: io.log });
    expect(api.requests.filter((r) => r.method !== 'GET').length).toBe(writes);
    expect(api.requests.every((r) => r.authorization === `token ${TOKEN}`)).toBe(true);
  });

  test.each([
    [
      403,
      /could not look for the open tracking issue in acme\/shop at .*: HTTP 403 \(Resource not accessible by integration.*\): give the job 'permissions: issues: write'/,
    ],
    [401, /the token was refused \(HTTP 401\)/],
    [500, /HTTP 500/],
  ])('HTTP %d: a warning naming the fix, never a throw', async (status, warning) => {
    api.failWith = status;
    const warnings: string[] = [];
    const log: Logger = {
      info: () => undefined,
      warn: (m) => void warnings.push(m),
      error: () => undefined,
      debug: () => undefined,
      group: (_n, fn) => fn(),
    };
    await expect(sendAlert({ token: TOKEN, mode: 'backup', run: run(1), outcome: failure, log })).resolves.toBeUndefined();
    expect(warnings).toEqual([expect.stringMatching(warning)]);
    expect(warnings[0]).toContain("the run's own result stands");
  });

  test('an API that cannot be reached is a warning too', async () => {
    const unreachable = { ...run(1), apiUrl: await closedPort() };
    const io = recordingIo();
    await sendAlert({ token: TOKEN, mode: 'validate', run: unreachable, outcome: failure, log: io.log });
    expect(io.lines).toEqual([
      expect.stringMatching(
        /^warning: alert: could not look for the open tracking issue .*check that this runner can reach GITHUB_API_URL/,
      ),
    ]);
  });
});

describe('the bundle alerts with the runner environment', () => {
  const runnerEnv = (runId: number, apiUrl = api.apiUrl) => ({
    GITHUB_REPOSITORY: REPOSITORY,
    GITHUB_RUN_ID: String(runId),
    GITHUB_SHA: SHA,
    GITHUB_SERVER_URL: SERVER,
    GITHUB_API_URL: apiUrl,
  });
  // A backup whose configuration is refused fails at once, with no service needed.
  const broken = { mode: 'backup', retain: 'many', 'github-token': TOKEN };

  function expectFailedWithoutLeak(run: ActionRun): void {
    expect(run.exitCode).toBe(1);
    expect(run.stdout).toContain(
      "::error::supaneon-sync backup failed: invalid configuration (1 problem):%0A- input 'retain' must be a whole number",
    );
    expect(run.stdout.split('\n')).toContain(`::add-mask::${TOKEN}`);
    expect(findSecretLeaks(run, [TOKEN])).toEqual([]);
  }

  test('a failure opens the tracking issue, the next failure comments on it', async () => {
    const first = await runAction(broken, { env: runnerEnv(101) });
    expectFailedWithoutLeak(first);
    expect(api.issues).toHaveLength(1);
    expect(api.issues[0].title).toBe('supaneon-sync backup is failing');
    expect(api.issues[0].body).toContain(`[run 101](${SERVER}/${REPOSITORY}/actions/runs/101)`);
    expect(api.issues[0].body).toContain("input 'retain' must be a whole number");
    expect(api.issues[0].body).not.toContain(TOKEN);

    const second = await runAction(broken, { env: runnerEnv(102) });
    expectFailedWithoutLeak(second);
    expect(api.issues).toHaveLength(1);
    expect(api.issues[0].comments).toEqual([expect.stringContaining(`[run 102](${SERVER}/${REPOSITORY}/actions/runs/102)`)]);
  });

  test.each([
    ['the API refuses (no issues: write)', 403],
    ['the API cannot be reached', 0],
  ])('%s: a warning, and the original failure as it was', async (_label, status) => {
    if (status) api.failWith = status;
    const run = await runAction(broken, { env: runnerEnv(103, status ? api.apiUrl : await closedPort()) });
    expectFailedWithoutLeak(run);
    expect(run.stdout).toMatch(
      status
        ? /::warning::alert: could not look for the open tracking issue in acme\/shop .*HTTP 403/
        : /::warning::alert: could not look for the open tracking issue in acme\/shop .*check that this runner can reach GITHUB_API_URL/,
    );
    // The failure is the last word, after the warning.
    expect(run.stdout.trimEnd().split('\n').at(-1)).toMatch(/^::error::supaneon-sync backup failed: invalid configuration/);
  });

  test('without the runner environment, a warning says why nothing was sent', async () => {
    const run = await runAction(broken, { env: {} });
    expectFailedWithoutLeak(run);
    expect(run.stdout).toContain('::warning::alert: github-token is set, but GITHUB_REPOSITORY and GITHUB_RUN_ID are not');
    expect(api.requests).toEqual([]);
  });
});

const STACK = ['MONGODB_SRV_URL', 'NEON_API_KEY', 'NEON_API_HOST'];
describeWithStack('a successful backup closes the tracking issue and records the run in the manifest', STACK, (env) => {
  const DB = `alert_${process.pid}_${Date.now().toString(36)}`;
  // This file's own Neon project: an empty standby to start with, and nobody else's backups.
  let project: TestProject;

  beforeAll(async () => {
    project = await createTestProject('alerts.test.ts');
    const mongo = await connectMongo(env.MONGODB_SRV_URL);
    try {
      await loadCollection(mongo, DB, 'items', randomDocuments(3, 10));
    } finally {
      await mongo.close();
    }
  }, 2_400_000);

  afterAll(async () => {
    const mongo = await connectMongo(env.MONGODB_SRV_URL);
    await mongo
      .db(DB)
      .dropDatabase()
      .catch(() => undefined);
    await mongo.close();
    await project?.dispose();
  });

  const runner = (runId: number) => ({
    ...project.env,
    GITHUB_REPOSITORY: REPOSITORY,
    GITHUB_RUN_ID: String(runId),
    GITHUB_SHA: SHA,
    GITHUB_SERVER_URL: SERVER,
    GITHUB_API_URL: api.apiUrl,
  });

  test('a stale standby: the freshness failure of restore opens the restore issue, with the age check in it', async () => {
    const run = await runAction({ mode: 'restore', 'max-backup-age': '26h', 'github-token': TOKEN }, { env: runner(200) });
    expect(run.exitCode).toBe(1);
    expect(run.stdout).toContain(
      '::error::supaneon-sync restore failed: no completed backup exists, so none is younger than max-backup-age 26h',
    );
    expect(findSecretLeaks(run, [TOKEN])).toEqual([]);
    expect(api.issues.map((i) => i.title)).toEqual(['supaneon-sync restore is failing']);
    expect(api.issues[0].body).toContain('no completed backup exists, so none is younger than max-backup-age 26h: run mode backup');
  });

  test('backup succeeds: comment, close, and the manifest names the run', async () => {
    api.issues.push({
      number: 1,
      title: 'supaneon-sync backup is failing',
      body: alertMarker('backup'),
      state: 'open',
      stateReason: null,
      labels: [ALERT_LABEL],
      comments: [],
    });
    const run = await runAction({ mode: 'backup', databases: DB, 'github-token': TOKEN }, { env: runner(201) });
    expect({ exit: run.exitCode, stderr: run.stderr }).toEqual({ exit: 0, stderr: '' });
    expect(findSecretLeaks(run, [TOKEN])).toEqual([]);
    expect(api.issues[0]).toMatchObject({
      state: 'closed',
      stateReason: 'completed',
      comments: [expect.stringContaining(`[run 201](${SERVER}/${REPOSITORY}/actions/runs/201)`)],
    });

    const client = await connectPostgres(project.databaseUrl);
    try {
      expect((await readManifest(client)).backup.github).toEqual({
        repository: REPOSITORY,
        runId: '201',
        sha: SHA,
        runUrl: `${SERVER}/${REPOSITORY}/actions/runs/201`,
      });
    } finally {
      await client.end();
    }
  });
});
