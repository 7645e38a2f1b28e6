// The Neon API wrapper against the emulator over HTTP: branches with annotations, operation waits,
// the retry policy (423/429/503 always, 5xx and hangs only where replaying is safe), a create whose
// answer is lost (never a second branch), errors that name the call and the fix without the key.
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import type { Logger } from '../../src/io.js';
import { NeonApi, TOOL_ANNOTATION, normaliseEndpointHost, type NeonApiOptions } from '../../src/neon.js';
import { roleAndDatabaseOf } from '../../src/connection-string.js';
import { connectPostgres } from '../../src/postgres.js';
import { describeWithStack } from '../../test/support/describe-with-stack.js';
import { createTestProject, type TestProject } from '../../test/support/test-project.js';

const STACK = ['NEON_API_KEY', 'NEON_API_HOST'];

function recordingLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => void lines.push(m),
    warn: (m) => void lines.push(`warning: ${m}`),
    error: (m) => void lines.push(`error: ${m}`),
    debug: (m) => void lines.push(`debug: ${m}`),
    group: (_n, fn) => fn(),
  };
}

describe('normaliseEndpointHost', () => {
  test('reads a pooler host as its direct endpoint host', () => {
    expect(normaliseEndpointHost('ep-cool-darkness-123456-pooler.eu-central-1.aws.neon.tech')).toBe(
      'ep-cool-darkness-123456.eu-central-1.aws.neon.tech',
    );
    expect(normaliseEndpointHost('EP-Cool-1-POOLER.example.com.')).toBe('ep-cool-1.example.com');
    expect(normaliseEndpointHost('ep-cool-1.example.com')).toBe('ep-cool-1.example.com');
    // Only the first label's suffix counts.
    expect(normaliseEndpointHost('ep-a.pooler-zone-pooler.example.com')).toBe('ep-a.pooler-zone-pooler.example.com');
    expect(normaliseEndpointHost('127.0.0.2')).toBe('127.0.0.2');
  });
});

describeWithStack('NeonApi against the emulator', STACK, () => {
  // This file's own project: its branches, operations and faults are nobody else's.
  let project: TestProject;
  let defaultBranchId: string;
  const api = (over: Partial<NeonApiOptions> = {}) =>
    new NeonApi({ apiKey: project.apiKey, projectId: project.projectId, baseUrl: project.apiHost, log: recordingLog(), ...over });

  beforeAll(async () => {
    project = await createTestProject('neon.test.ts');
    defaultBranchId = project.defaultBranchId;
  });

  // Each test leaves the project as it found it, even when it fails half-way.
  afterEach(async () => {
    await project.clearFaults();
    const neon = api();
    for (let round = 0; round < 10; round++) {
      const branches = await neon.listBranches();
      const leaves = branches.filter((b) => !b.isDefault && !branches.some((c) => c.parentId === b.id));
      if (leaves.length === 0) break;
      for (const b of leaves) await neon.deleteBranch(b.id);
    }
  });

  afterAll(async () => {
    await project?.dispose();
  });

  test('getProject reports the branch limit; the standby is found by its endpoint host', async () => {
    const neon = api();
    const info = await neon.getProject();
    expect(info.id).toBe(project.projectId);
    expect(info.branchLimit).toBe(10);

    const standby = await neon.findBranchByEndpoint(project.databaseUrl);
    expect(standby?.id).toBe(defaultBranchId);
    expect(standby?.isDefault).toBe(true);
    expect(await neon.findBranchByEndpoint('postgresql://u@ep-nowhere-1.example.com/db')).toBeUndefined();
  });

  test('backup branches: storage only, annotated, listed newest first, exact names only', async () => {
    const neon = api();
    const first = await neon.createBackupBranch({ name: 'nt-backup-1', parentId: defaultBranchId, runId: 'run-1' });
    const second = await neon.createBackupBranch({ name: 'nt-backup-12', parentId: defaultBranchId, runId: 'run-12' });
    expect(first.annotations).toEqual({ [TOOL_ANNOTATION]: 'backup', 'run-id': 'run-1', 'standby-branch-id': defaultBranchId });

    // The annotations come back from the list, not only from our own request.
    const listed = (await neon.listBranches()).find((b) => b.id === first.id);
    expect(listed?.annotations).toEqual(first.annotations);
    expect(listed?.parentId).toBe(defaultBranchId);
    expect(listed?.isDefault).toBe(false);

    const backups = await neon.toolBranches('backup');
    expect(backups.map((b) => b.id)).toEqual([second.id, first.id]);
    expect(await neon.toolBranches('restore-test')).toEqual([]);

    // `search` is a partial match on Neon: "nt-backup-1" also finds "nt-backup-12".
    expect((await neon.findBranchesByName('nt-backup-1')).map((b) => b.id)).toEqual([first.id]);
    expect((await neon.findBranch('nt-backup-12'))?.id).toBe(second.id);
    expect((await neon.findBranch(first.id))?.name).toBe('nt-backup-1');
    expect(await neon.findBranch('nt-backup')).toBeUndefined();

    // No compute: no endpoint was made for it.
    const res = await fetch(`${project.apiHost}/projects/${project.projectId}/branches/${first.id}/endpoints`, {
      headers: { authorization: `Bearer ${project.apiKey}` },
      signal: AbortSignal.timeout(30_000),
    });
    expect(((await res.json()) as { endpoints: unknown[] }).endpoints).toEqual([]);

    await neon.deleteBranch(second.id);
    await neon.deleteBranch(first.id);
    expect((await neon.toolBranches('backup')).length).toBe(0);
  });

  test('restore branches: a usable endpoint, an expiry, the standby credentials work on it', async () => {
    const neon = api();
    const backupBranch = await neon.createBackupBranch({ name: 'nt-backup-r', parentId: defaultBranchId, runId: 'run-r' });
    const expiresAt = new Date(Date.now() + 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const { branch, host } = await neon.createTemporaryBranch({
      name: 'nt-restore-1',
      parentId: backupBranch.id,
      expiresAt,
      ...roleAndDatabaseOf(project.databaseUrl),
    });
    expect(branch.annotations).toEqual({ [TOOL_ANNOTATION]: 'restore-test', 'backup-branch-id': backupBranch.id });
    expect(host).not.toBe(new URL(project.databaseUrl).hostname);
    const listed = (await neon.toolBranches('restore-test'))[0];
    expect(listed.id).toBe(branch.id);
    expect(Date.parse(listed.expiresAt ?? '')).toBe(Date.parse(expiresAt));

    const client = await connectPostgres(project.databaseUrl, { host });
    try {
      const r = await client.query('SELECT host(inet_server_addr()) AS addr');
      // The endpoint's entry (like Neon's proxy) forwards to the branch's cluster on 127.1.X.Y.
      expect(r.rows[0].addr).toBe(host.replace(/^127\.0\./, '127.1.'));
    } finally {
      await client.end();
    }

    // A parent with a child cannot go: the error names the call, the branch, Neon's code and a fix.
    await expect(neon.deleteBranch(backupBranch.id)).rejects.toThrow(
      new RegExp(`delete branch ${backupBranch.id} in project "${project.projectId}" failed: HTTP 422 BRANCH_HAS_CHILDREN: .*Fix: `),
    );
    await neon.deleteBranch(branch.id);
    // Deleting what is already gone is done, not an error.
    await neon.deleteBranch(branch.id);
    await neon.deleteBranch(backupBranch.id);
  });

  test('423, 429 and 503 are retried for every call; the log says so', async () => {
    const log = recordingLog();
    const neon = api({ log });
    await project.injectFault({ status: 423, count: 2, method: 'POST', path: '/branches' });
    await project.injectFault({ status: 503, count: 1, method: 'GET', path: '/operations/' });
    const b = await neon.createBackupBranch({ name: 'nt-retry', parentId: defaultBranchId, runId: 'run-retry' });
    expect(log.lines.filter((l) => /HTTP 423/.test(l) && /retrying/.test(l))).toHaveLength(2);
    expect(log.lines.some((l) => /HTTP 503/.test(l) && /retrying/.test(l))).toBe(true);

    await project.injectFault({ status: 429, count: 1, method: 'GET', path: '/branches' });
    expect((await neon.toolBranches('backup')).map((x) => x.id)).toEqual([b.id]);
    expect(log.lines.some((l) => /HTTP 429/.test(l))).toBe(true);
    await neon.deleteBranch(b.id);
  });

  test('a 500 answering a create is checked by name before trying again: one branch, not two', async () => {
    const log = recordingLog();
    const neon = api({ log });
    await project.injectFault({ status: 500, count: 1, method: 'POST', path: '/branches' });
    const b = await neon.createBackupBranch({ name: 'nt-500', parentId: defaultBranchId, runId: 'run-500' });
    expect(log.lines.some((l) => /checking whether the branch was created/.test(l))).toBe(true);
    expect((await neon.listBranches()).filter((x) => x.name === 'nt-500').map((x) => x.id)).toEqual([b.id]);
    await neon.deleteBranch(b.id);
  });

  test('a create whose answer is lost after Neon carried it out is adopted, never made twice', async () => {
    for (const status of [500, 'hang'] as const) {
      const log = recordingLog();
      const neon = api({ log, requestTimeoutMs: 2000 });
      const name = `nt-lost-${status}`;
      // The emulator creates the branch, then answers 500 (or never answers) instead of 201.
      await project.injectFault({ status, count: 1, method: 'POST', path: '/branches', after: true });
      const b = await neon.createBackupBranch({ name, parentId: defaultBranchId, runId: `run-lost-${status}` });
      // After a 500 the branch is there at once; after a hang it may appear only later, when the
      // create is retried or answered 409: either way exactly one branch, this run's.
      if (status === 500) expect(log.lines.some((l) => /was created despite the error; using it/.test(l))).toBe(true);
      expect(b.annotations['run-id']).toBe(`run-lost-${status}`);
      expect((await api().listBranches()).filter((x) => x.name === name).map((x) => x.id)).toEqual([b.id]);
    }
  });

  test('a branch of the same name made by someone else is never adopted', async () => {
    const userBranch = await project.createPlainBranch('nt-taken');
    await project.injectFault({ status: 500, count: 1, method: 'POST', path: '/branches' });
    await expect(api().createBackupBranch({ name: 'nt-taken', parentId: defaultBranchId, runId: 'run-x' })).rejects.toThrow(
      new RegExp(`a branch with this name and parent already exists \\(${userBranch}\\) but was not made by this run`),
    );
  });

  test('a hanging GET times out and is retried; a hanging POST is checked before any retry', async () => {
    const log = recordingLog();
    const neon = api({ log, requestTimeoutMs: 1000 });
    await project.injectFault({ status: 'hang', count: 1, method: 'GET', path: '/branches' });
    const started = Date.now();
    await neon.listBranches();
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(log.lines.some((l) => /no answer within 1 s; retrying/.test(l))).toBe(true);

    await project.injectFault({ status: 'hang', count: 1, method: 'POST', path: '/branches' });
    const b = await neon.createBackupBranch({ name: 'nt-hang', parentId: defaultBranchId, runId: 'run-hang' });
    expect((await neon.listBranches()).filter((x) => x.name === 'nt-hang')).toHaveLength(1);
    await neon.deleteBranch(b.id);
  });

  test('a lock that outlasts the retry deadline fails with the call, the status and a fix', async () => {
    const neon = api({ retryDeadlineMs: 1500 });
    await project.injectFault({ status: 423, count: 50, method: 'POST', path: '/branches' });
    try {
      await expect(neon.createBackupBranch({ name: 'nt-locked', parentId: defaultBranchId, runId: 'run-l' })).rejects.toThrow(
        /create branch "nt-locked" from .* failed: HTTP 423 .*gave up after \d+ attempts.*Fix: another operation kept the project locked/,
      );
    } finally {
      await project.clearFaults();
    }
    expect((await neon.listBranches()).some((b) => b.name === 'nt-locked')).toBe(false);
  });

  test('a wrong key or project id says which input to fix, and never shows the key', async () => {
    const wrongKey = 'napi_wrong_key_0123456789abcdef';
    const badKey = api({ apiKey: wrongKey });
    const keyError = await badKey.listBranches().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(keyError?.message).toMatch(/HTTP 401.*Fix: check the neon-api-key input/);
    expect(keyError?.message).not.toContain(wrongKey);
    expect(keyError?.message).not.toContain(project.apiKey);

    const badProject = api({ projectId: 'no-such-project-42' });
    await expect(badProject.getProject()).rejects.toThrow(
      /HTTP 404.*check the neon-project-id input: project "no-such-project-42" was not found/,
    );
  });
});
