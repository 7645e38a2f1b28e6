// mode: validate through the built bundle, as GitHub runs it, against the local stack (FerretDB,
// the Neon emulator, TLS PostgreSQL branches).
import net from 'node:net';
import { findSecretLeaks, runAction, runCli, type ActionRun } from '../../devkit/action.js';
import { describeWithStack } from '../../test/support/describe-with-stack.js';
import { createTestProject, type TestProject } from '../../test/support/test-project.js';

const STACK = ['MONGODB_SRV_URL', 'NEON_API_KEY', 'NEON_API_HOST'] as const;
/** Environment variables the product falls back to. */
const FALLBACKS = ['MONGODB_SRV_URL', 'NEON_API_KEY', 'NEON_PROJECT_ID', 'NEON_DATABASE_URL', 'NEON_API_HOST'] as const;

interface Report {
  valid: boolean;
  checks: { group: string; name: string; ok: boolean; detail: string }[];
}

function errorLines(run: ActionRun): string[] {
  return run.stdout.split('\n').filter((l) => l.startsWith('::error::'));
}

function reportOf(run: ActionRun): Report {
  return JSON.parse(run.outputs.report) as Report;
}

describeWithStack('mode: validate (bundle, local stack)', STACK, (stack) => {
  // Inputs given explicitly; the env fallbacks are removed so each case controls every value.
  const noFallbacks = Object.fromEntries(FALLBACKS.map((k) => [k, undefined]));
  // This file's own Neon project: validate sees a healthy project whatever other files do to theirs.
  let project: TestProject;
  const inputs = (overrides: Record<string, string> = {}) => ({
    mode: 'validate',
    'mongodb-uri': stack.MONGODB_SRV_URL,
    ...project.inputs,
    ...overrides,
  });
  const validate = (overrides: Record<string, string> = {}) => runAction(inputs(overrides), { env: noFallbacks, timeoutMs: 60_000 });

  beforeAll(async () => {
    project = await createTestProject('validate.test.ts');
  });
  afterAll(async () => {
    await project?.dispose();
  });

  test('everything reachable: every check passes, exit 0, outputs and summary written', async () => {
    const run = await validate();
    expect(errorLines(run)).toEqual([]);
    expect(run.exitCode).toBe(0);
    expect(run.outputs.valid).toBe('true');
    const report = reportOf(run);
    expect(report.valid).toBe(true);
    const names = report.checks.map((c) => `${c.group}/${c.name}`);
    expect(names).toEqual([
      'configuration/inputs',
      'mongodb/reachable, credentials accepted',
      'mongodb/server version and topology',
      'mongodb/list databases',
      'mongodb/read selected collections',
      'neon-api/API key valid, project exists',
      'neon-api/standby branch',
      'neon-api/branch usage',
      'neon-api/existing backups',
      'postgres/reachable over TLS, certificate verified',
      'postgres/create schemas and tables',
    ]);
    expect(report.checks.every((c) => c.ok)).toBe(true);
    expect(report.checks.find((c) => c.name === 'standby branch')?.detail).toMatch(/neon-database-url points at branch ".+" \(br-/);
    expect(report.checks.find((c) => c.name === 'reachable over TLS, certificate verified')?.detail).toMatch(/TLSv1\.[23]/);
    expect(run.summary).toMatch(/^## supaneon-sync validate: ready to back up/m);
    expect(run.summary).toContain('| Area | Check | Result | Details |');
    expect(run.stdout).toMatch(/All 11 checks passed in/);
  });

  test('the CLI runs the same checks and prints the outputs', async () => {
    const run = await runCli(
      [
        'validate',
        '--mongodb-uri',
        stack.MONGODB_SRV_URL,
        '--neon-api-key',
        project.apiKey,
        '--neon-project-id',
        project.projectId,
        '--neon-database-url',
        project.databaseUrl,
        '--neon-api-host',
        project.apiHost,
      ],
      { env: noFallbacks, timeoutMs: 60_000 },
    );
    expect(run.stderr).toBe('');
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toMatch(/^valid=true$/m);
    expect(run.stdout).toMatch(/^supaneon-sync validate: ready to back up$/m);
  });

  test('the CLI falls back to the environment variables', async () => {
    const run = await runCli(['validate'], { env: { MONGODB_SRV_URL: stack.MONGODB_SRV_URL, ...project.env }, timeoutMs: 60_000 });
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toMatch(/^valid=true$/m);
  });

  test('sslmode=disable: refused before connecting, one line, exit 1', async () => {
    const url = new URL(project.databaseUrl);
    url.searchParams.set('sslmode', 'disable');
    const run = await validate({ 'neon-database-url': url.toString() });
    expect(run.exitCode).toBe(1);
    expect(run.durationMs).toBeLessThan(20_000);
    expect(errorLines(run)).toEqual([
      expect.stringMatching(/^::error::Configuration: input 'neon-database-url' has sslmode=disable.*TLS to Neon is required/),
      '::error::supaneon-sync validate failed: 1 configuration problem (listed above)',
    ]);
    expect(run.outputs.valid).toBe('false');
    expect(reportOf(run).checks).toHaveLength(1);
  });

  test('wrong API key: the Neon API check fails naming neon-api-key, the rest still run', async () => {
    const run = await validate({ 'neon-api-key': 'napi_wrong_key_for_test_000' });
    expect(run.exitCode).toBe(1);
    expect(run.durationMs).toBeLessThan(20_000);
    const errors = errorLines(run);
    expect(errors).toHaveLength(2); // the problem and the final line; dependent checks are 'not checked'
    expect(errors[0]).toMatch(/^::error::Neon API: API key valid, project exists: .*401.*neon-api-key/);
    expect(run.stdout).toMatch(/^ {2}skip {2}standby branch: not checked: the project cannot be read$/m);
    expect(run.stdout).toMatch(/^1 of 11 checks failed, 3 not checked\.$/m);
    const report = reportOf(run);
    expect(report.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual([
      'API key valid, project exists',
      'standby branch',
      'branch usage',
      'existing backups',
    ]);
    expect(report.checks.filter((c) => c.group === 'mongodb').every((c) => c.ok)).toBe(true);
    expect(report.checks.filter((c) => c.group === 'postgres').every((c) => c.ok)).toBe(true);
    expect(run.outputs.valid).toBe('false');
  });

  // FerretDB (SQLite backend) cannot check a password: it accepts any over PLAIN and refuses every
  // SCRAM login. A refused SCRAM login stands in for a wrong password; a wrong port for a wrong host.
  test('MongoDB refuses the credentials: the check fails naming MongoDB, the rest still run', async () => {
    const mongo = new URL(stack.MONGODB_SRV_URL);
    const run = await validate({ 'mongodb-uri': `mongodb://app:WrongPassword1@${mongo.host}/` });
    expect(run.exitCode).toBe(1);
    expect(run.durationMs).toBeLessThan(20_000);
    const errors = errorLines(run);
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatch(
      /^::error::MongoDB: reachable, credentials accepted: cannot reach MongoDB at 127\.0\.0\.1:\d+: .*authentication/i,
    );
    expect(findSecretLeaks(run, ['WrongPassword1'])).toEqual([]);
    expect(
      reportOf(run)
        .checks.filter((c) => c.group !== 'mongodb')
        .every((c) => c.ok),
    ).toBe(true);
  });

  test('MongoDB unreachable (wrong port): fails within 20 s, naming MongoDB', async () => {
    const run = await validate({ 'mongodb-uri': 'mongodb://127.0.0.1:1/' });
    expect(run.exitCode).toBe(1);
    expect(run.durationMs).toBeLessThan(20_000);
    const errors = errorLines(run);
    expect(errors[0]).toMatch(/^::error::MongoDB: reachable, credentials accepted: cannot reach MongoDB at 127\.0\.0\.1:1/);
    expect(
      reportOf(run)
        .checks.filter((c) => !c.ok)
        .every((c) => c.group === 'mongodb'),
    ).toBe(true);
  });

  test('Postgres and the Neon API unreachable: fails within 20 s with one line per problem', async () => {
    const url = new URL(project.databaseUrl);
    url.hostname = '127.0.0.1';
    url.port = '1';
    const run = await validate({ 'neon-database-url': url.toString(), 'neon-api-host': 'http://127.0.0.1:1/api/v2' });
    expect(run.exitCode).toBe(1);
    expect(run.durationMs).toBeLessThan(20_000);
    const errors = errorLines(run);
    expect(errors).toContainEqual(expect.stringMatching(/^::error::Neon API: API key valid, project exists: /));
    expect(errors).toContainEqual(
      expect.stringMatching(
        /^::error::Neon Postgres: reachable over TLS, certificate verified: cannot connect to Postgres at 127\.0\.0\.1:1/,
      ),
    );
    expect(errors[errors.length - 1]).toBe(
      '::error::supaneon-sync validate failed: one or more checks failed (see the errors above and the job summary)',
    );
  });

  test('an address that never answers is given up on in time', async () => {
    // 192.0.2.0/24 is reserved for documentation: packets go nowhere, so only timeouts end it.
    const url = new URL(project.databaseUrl);
    url.hostname = '192.0.2.1';
    const run = await validate({
      'mongodb-uri': 'mongodb://192.0.2.1:27017/',
      'neon-database-url': url.toString(),
      'neon-api-host': 'https://192.0.2.1/api/v2',
    });
    expect(run.exitCode).toBe(1);
    expect(run.durationMs).toBeLessThan(20_000);
    expect(errorLines(run)).toContainEqual(expect.stringMatching(/^::error::MongoDB: /));
    expect(errorLines(run)).toContainEqual(expect.stringMatching(/^::error::Neon API: /));
    expect(errorLines(run)).toContainEqual(expect.stringMatching(/^::error::Neon Postgres: /));
  });

  test('servers that accept connections and never answer: every check gives up in time', async () => {
    // The worst case for timeouts: TCP connects, then silence (no TLS, no MongoDB hello, no HTTP reply).
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const url = new URL(project.databaseUrl);
      url.hostname = '127.0.0.1';
      url.port = String(port);
      const run = await validate({
        'mongodb-uri': `mongodb://127.0.0.1:${port}/`,
        'neon-database-url': url.toString(),
        'neon-api-host': `http://127.0.0.1:${port}/api/v2`,
      });
      expect(run.exitCode).toBe(1);
      expect(run.durationMs).toBeLessThan(20_000);
      const errors = errorLines(run);
      expect(errors).toContainEqual(expect.stringMatching(/^::error::MongoDB: /));
      expect(errors).toContainEqual(expect.stringMatching(/^::error::Neon API: /));
      expect(errors).toContainEqual(expect.stringMatching(/^::error::Neon Postgres: /));
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
