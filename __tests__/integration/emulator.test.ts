// The Neon API emulator, driven over HTTP the way the product drives Neon: the official @neon/sdk
// client for the API, plain fetch for control routes and raw error bodies, `pg` over verified TLS
// for the branches' data. Each group of tests below works in a project of its own, made fresh for
// it (only the default branch, with an empty database), so no test sees another's branches.
import fs from 'node:fs';
import pg from 'pg';
import { createNeonClient, type AnnotationData, type Branch, type Endpoint, type NeonApiError, type Operation } from '@neon/sdk';
import { emulatorSourceHash } from '../../test/support/neon-emulator/server.js';
import { describeWithStack } from '../../test/support/describe-with-stack.js';
import { createTestProject, type TestProject } from '../../test/support/test-project.js';

/** Whichever of these fields a route answers with (error bodies carry code and message). */
interface ApiBody {
  code: string;
  message: string;
  branch: Branch;
  branches: Branch[];
  annotation: AnnotationData;
  annotations: Record<string, AnnotationData>;
  operation: Operation;
  operations: Operation[];
}

const STACK_SETTINGS = ['NEON_API_HOST', 'NEON_API_KEY', 'NEON_PROJECT_ID', 'SUPANEON_STACK_CA'] as const;
/** Every call a test makes here gives up after this long instead of waiting for ever. */
const CALL_TIMEOUT_MS = 30_000;

describeWithStack('Neon API emulator', STACK_SETTINGS, (env) => {
  const apiHost = env.NEON_API_HOST;
  const apiKey = env.NEON_API_KEY;
  const ca = fs.readFileSync(env.SUPANEON_STACK_CA, 'utf8');
  const controlBase = new URL(apiHost).origin;
  const auth = { Authorization: `Bearer ${apiKey}` };

  // The project the current group of tests works in (see freshProject).
  let project: TestProject | undefined;
  let projectId: string;
  let projectUrl: string;
  let databaseUrl: URL;

  /** Deletes the previous group's project and makes a new one, with only its default branch. */
  async function freshProject(label: string, opts: { branchLimit?: number } = {}): Promise<void> {
    await project?.dispose();
    project = await createTestProject(`emulator.test.ts ${label}`, opts);
    projectId = project.projectId;
    projectUrl = `${apiHost}/projects/${projectId}`;
    databaseUrl = new URL(project.databaseUrl);
  }

  const neon = createNeonClient({
    apiKey,
    baseUrl: apiHost,
    throwOnError: true,
    requestTimeoutMs: CALL_TIMEOUT_MS,
    wait: { pollIntervalMs: 50, timeoutMs: 60_000 },
  });

  /** A control route of the current project (faults, sweep, reset, settings). */
  async function control(method: string, path: string, body?: unknown): Promise<Response> {
    const res = await fetch(`${controlBase}/__emulator/projects/${projectId}/${path}`, {
      method,
      headers: { ...auth, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
    });
    if (!res.ok) throw new Error(`${method} /__emulator/projects/${projectId}/${path} answered ${res.status}: ${await res.text()}`);
    return res;
  }

  async function api(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = auth,
  ): Promise<{ status: number; json: ApiBody; headers: Headers }> {
    const res = await fetch(`${projectUrl}${path}`, {
      method,
      headers: { ...headers, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
    });
    const text = await res.text();
    return { status: res.status, json: (text === '' ? {} : JSON.parse(text)) as ApiBody, headers: res.headers };
  }

  /** A pg client on one endpoint host (the current project's credentials), TLS verified against the stack's CA. */
  async function connect(host: string, url: URL = databaseUrl): Promise<pg.Client> {
    const client = new pg.Client({
      host,
      port: Number(url.port),
      user: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      database: url.pathname.slice(1),
      ssl: { ca, rejectUnauthorized: true },
      connectionTimeoutMillis: 10_000,
      query_timeout: CALL_TIMEOUT_MS,
    });
    await client.connect();
    return client;
  }

  async function sql<T extends pg.QueryResultRow = pg.QueryResultRow>(
    host: string,
    text: string,
    params: unknown[] = [],
    url?: URL,
  ): Promise<T[]> {
    const client = await connect(host, url);
    try {
      return (await client.query<T>(text, params)).rows;
    } finally {
      await client.end();
    }
  }

  async function defaultBranch(): Promise<Branch> {
    return neon.branches.getDefault({ projectId });
  }

  async function hostOf(branchId: string): Promise<string> {
    const endpoints: Endpoint[] = await neon.postgres.endpoints.listByBranch({ projectId, branchId });
    expect(endpoints).toHaveLength(1);
    return endpoints[0].host;
  }

  /** Waits until no operation of the project is in flight, so the next mutation is not refused with 423. */
  async function settle(): Promise<void> {
    const ops = await neon.operations.list({ projectId }).all();
    await neon.operations.waitFor({ operations: ops });
  }

  function inDays(days: number): string {
    return new Date(Date.now() + days * 24 * 3600 * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  beforeAll(async () => {
    await freshProject('authentication and errors');
  });

  afterEach(async () => {
    await control('DELETE', 'faults');
  });

  afterAll(async () => {
    await project?.dispose();
  });

  test('the running emulator runs the code of this checkout', async () => {
    const health = (await (await fetch(`${controlBase}/__emulator/health`, { signal: AbortSignal.timeout(CALL_TIMEOUT_MS) })).json()) as {
      sourceHash: string;
    };
    // A stale emulator would test old behaviour: restart it with `npm run stack:down && npm run stack:up`.
    expect({ runningEmulator: health.sourceHash }).toEqual({ runningEmulator: emulatorSourceHash() });
  });

  describe('authentication and errors', () => {
    test('a wrong or missing API key gets 401 with {code, message}', async () => {
      const wrong = await api('GET', '', undefined, { Authorization: 'Bearer not-the-key' });
      expect(wrong.status).toBe(401);
      expect(wrong.json).toEqual(expect.objectContaining({ code: expect.any(String), message: expect.any(String) }));
      expect(JSON.stringify(wrong.json)).not.toContain(apiKey);

      const missing = await api('GET', '/branches', undefined, {});
      expect(missing.status).toBe(401);

      // Control routes need the key too (health excepted: it is the readiness probe).
      const control401 = await fetch(`${controlBase}/__emulator/projects/${projectId}/faults`, {
        method: 'POST',
        headers: { Authorization: 'Bearer not-the-key' },
        body: JSON.stringify({ status: 500, count: 1 }),
        signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
      });
      expect(control401.status).toBe(401);
      expect((await fetch(`${controlBase}/__emulator/health`, { signal: AbortSignal.timeout(CALL_TIMEOUT_MS) })).status).toBe(200);
      expect((await api('GET', '/branches')).status).toBe(200); // no fault was injected

      const bad = createNeonClient({ apiKey: 'not-the-key', baseUrl: apiHost });
      const { error } = await bad.projects.get({ projectId });
      expect(error?.kind).toBe('auth');
    });

    test('an unknown branch or project gets 404 with {code, message} naming it', async () => {
      const branch = await api('GET', '/branches/br-no-such-branch-00000000');
      expect(branch.status).toBe(404);
      expect(branch.json.code).toEqual(expect.any(String));
      expect(branch.json.message).toContain('br-no-such-branch-00000000');

      const project = await fetch(`${apiHost}/projects/no-such-project/branches`, {
        headers: auth,
        signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
      });
      expect(project.status).toBe(404);
      expect(((await project.json()) as { message: string }).message).toContain('no-such-project');

      const { error } = await createNeonClient({ apiKey, baseUrl: apiHost }).branches.get({ projectId, branchId: 'br-missing-00000000' });
      expect(error?.kind).toBe('not_found');
    });

    test('the project reports the branch limit it enforces', async () => {
      const project = await neon.projects.get({ projectId });
      expect(project.id).toBe(projectId);
      expect(project.owner?.branches_limit).toBeGreaterThanOrEqual(3);
    });
  });

  describe('branches are isolated copies of their parent', () => {
    beforeAll(async () => {
      await freshProject('branches are isolated copies of their parent');
    });

    test('a write on a child is invisible on the parent, and the reverse', async () => {
      const main = await defaultBranch();
      const mainHost = await hostOf(main.id);
      expect(mainHost).toBe(databaseUrl.hostname);
      await sql(mainHost, 'CREATE TABLE items (id int PRIMARY KEY, note text)');
      await sql(mainHost, "INSERT INTO items VALUES (1, 'before the branch')");

      const child = await neon.branches.create({ projectId, name: 'isolation-child', parent_id: main.id });
      expect(child.parent_id).toBe(main.id);
      const childHost = await hostOf(child.id);
      expect(childHost).not.toBe(mainHost);

      await sql(childHost, "INSERT INTO items VALUES (2, 'only on the child')");
      await sql(mainHost, "INSERT INTO items VALUES (3, 'only on the parent')");

      const onChild = await sql<{ id: number }>(childHost, 'SELECT id FROM items ORDER BY id');
      const onMain = await sql<{ id: number }>(mainHost, 'SELECT id FROM items ORDER BY id');
      expect(onChild.map((r) => r.id)).toEqual([1, 2]);
      expect(onMain.map((r) => r.id)).toEqual([1, 3]);

      // Same role, password and database on the child: only the host differs.
      const [who] = await sql<{ user: string; db: string; ssl: boolean }>(
        childHost,
        'SELECT current_user AS user, current_database() AS db, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
      );
      expect(who).toEqual({ user: decodeURIComponent(databaseUrl.username), db: databaseUrl.pathname.slice(1), ssl: true });
    });

    test('a branch of a storage-only branch carries the data of both generations', async () => {
      const main = await defaultBranch();
      const mainHost = await hostOf(main.id);
      await sql(mainHost, 'CREATE TABLE generations (name text)');
      await sql(mainHost, "INSERT INTO generations VALUES ('root')");

      const middle = await neon.branches.create({ projectId, name: 'storage-only-middle', parent_id: main.id, noCompute: true });
      expect(await neon.postgres.endpoints.listByBranch({ projectId, branchId: middle.id })).toEqual([]);
      await sql(mainHost, "INSERT INTO generations VALUES ('after the middle branch')");

      const leaf = await neon.branches.create({ projectId, name: 'leaf-of-middle', parent_id: middle.id });
      expect(leaf.parent_id).toBe(middle.id);
      const leafHost = await hostOf(leaf.id);
      await sql(leafHost, "INSERT INTO generations VALUES ('leaf')");

      expect((await sql<{ name: string }>(leafHost, 'SELECT name FROM generations ORDER BY name')).map((r) => r.name)).toEqual([
        'leaf',
        'root',
      ]);
      expect((await sql<{ name: string }>(mainHost, 'SELECT name FROM generations ORDER BY name')).map((r) => r.name)).toEqual([
        'after the middle branch',
        'root',
      ]);
    });

    test('the connection URI of a branch reaches its own data over verified TLS', async () => {
      const [leaf] = await neon.branches.list({ projectId, search: 'leaf-of-middle' }).all();
      const uri = await neon.postgres.connectionString({
        projectId,
        branchId: leaf.id,
        roleName: databaseUrl.username,
        databaseName: 'neondb',
        pooled: false,
      });
      const parsed = new URL(uri);
      expect(parsed.hostname).toBe(await hostOf(leaf.id));
      expect((await sql<{ n: string }>(parsed.hostname, 'SELECT count(*) AS n FROM generations'))[0].n).toBe('2');
    });

    test('a plain (non-TLS) connection to a branch is refused', async () => {
      const [leaf] = await neon.branches.list({ projectId, search: 'leaf-of-middle' }).all();
      const plain = new pg.Client({
        host: await hostOf(leaf.id),
        port: Number(databaseUrl.port),
        user: decodeURIComponent(databaseUrl.username),
        password: decodeURIComponent(databaseUrl.password),
        database: databaseUrl.pathname.slice(1),
        ssl: false,
      });
      await expect(plain.connect()).rejects.toThrow(/no encryption|pg_hba/);
    });

    test('deleting a branch with children is refused; leaf first, then the parent; deleted again is 204, as on Neon', async () => {
      const [middle] = await neon.branches.list({ projectId, search: 'storage-only-middle' }).all();
      const [leaf] = await neon.branches.list({ projectId, search: 'leaf-of-middle' }).all();

      const refused = await api('DELETE', `/branches/${middle.id}`);
      expect([400, 422]).toContain(refused.status);
      expect(refused.json.message).toContain(middle.id);
      expect(refused.json.message).toContain(leaf.id);

      const main = await defaultBranch();
      const mainRefused = await api('DELETE', `/branches/${main.id}`);
      expect([400, 422]).toContain(mainRefused.status);
      expect(mainRefused.json.message).toMatch(/default/);

      await settle();
      const deleted = await api('DELETE', `/branches/${leaf.id}`);
      expect(deleted.status).toBe(200);
      expect(deleted.json.branch.id).toBe(leaf.id);
      expect(deleted.json.operations.length).toBeGreaterThan(0);
      await neon.operations.waitFor({ operations: deleted.json.operations });
      await neon.branches.delete({ projectId, branchId: middle.id });
      await settle();

      // Neon answers a repeated delete 204 ("doesn't exist or has already been deleted").
      expect((await api('DELETE', `/branches/${leaf.id}`)).status).toBe(204);
      const names = (await neon.branches.list({ projectId }).all()).map((b) => b.name);
      expect(names).not.toContain('leaf-of-middle');
      expect(names).not.toContain('storage-only-middle');
    });
  });

  describe('operations', () => {
    beforeAll(async () => {
      await freshProject('operations');
    });

    test('a mutation while an operation runs gets 423; after it finishes the same call succeeds', async () => {
      await settle();
      const body = (name: string) => ({ branch: { name }, endpoints: [{ type: 'read_write' }] });
      const [a, b] = await Promise.all([api('POST', '/branches', body('race-a')), api('POST', '/branches', body('race-b'))]);
      const created = [a, b].find((r) => r.status === 201);
      const locked = [a, b].find((r) => r.status === 423);
      expect(created).toBeDefined();
      expect(locked?.json).toEqual(
        expect.objectContaining({
          code: 'LOCKED',
          message: 'project already has running conflicting operations, scheduling of new ones is prohibited',
        }),
      );

      // The new branch is 'init' and its operations pass through to 'finished'.
      expect(created!.json.branch.current_state).toBe('init');
      const statuses = new Set<string>();
      for (const op of created!.json.operations) statuses.add(op.status);
      for (;;) {
        const ops = await Promise.all(created!.json.operations.map((op: { id: string }) => api('GET', `/operations/${op.id}`)));
        for (const op of ops) statuses.add(op.json.operation.status);
        if (ops.every((op) => op.json.operation.status === 'finished')) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect([...statuses].some((s) => s === 'scheduling' || s === 'running')).toBe(true);
      expect((await api('GET', `/branches/${created!.json.branch.id}`)).json.branch.current_state).toBe('ready');

      const retried = await api('POST', '/branches', body(locked === a ? 'race-a' : 'race-b'));
      expect(retried.status).toBe(201);
      await neon.operations.waitFor({ operations: retried.json.operations });
    });

    test('the operations list shows the latest operations, newest first', async () => {
      const ops = await neon.operations.list({ projectId }).all();
      expect(ops.length).toBeGreaterThan(0);
      expect(ops.every((op) => op.project_id === projectId)).toBe(true);
      const created = ops.map((op) => op.created_at);
      expect([...created].sort().reverse()).toEqual(created);
    });
  });

  describe('expires_at', () => {
    beforeAll(async () => {
      await freshProject('expires_at');
    });

    test('malformed, past and too distant expiry times are refused with 400', async () => {
      await settle();
      for (const expires_at of ['tomorrow', '2030-01-01T00:00:00', new Date(Date.now() - 60_000).toISOString(), inDays(31)]) {
        const res = await api('POST', '/branches', { branch: { name: 'bad-expiry', expires_at } });
        expect(res.status).toBe(400);
        expect(res.json.message).toContain('expires_at');
      }
      expect(await neon.branches.list({ projectId, search: 'bad-expiry' }).all()).toEqual([]);
    });

    test('accepted on a leaf; refused on a branch with children; no child of an expiring branch', async () => {
      const parent = await neon.branches.create({ projectId, name: 'expiry-parent', noCompute: true });
      const child = await neon.branches.create({ projectId, name: 'expiry-child', parent_id: parent.id, noCompute: true });

      const expiresAt = inDays(1);
      const updated = await neon.branches.update({ projectId, branchId: child.id, expires_at: expiresAt });
      expect(updated.expires_at).toBe(expiresAt);
      await settle();

      const onParent = await api('PATCH', `/branches/${parent.id}`, { branch: { expires_at: inDays(1) } });
      expect(onParent.status).toBe(400);
      expect(onParent.json.message).toContain(parent.id);

      const grandchild = await api('POST', '/branches', { branch: { name: 'child-of-expiring', parent_id: child.id } });
      expect([400, 422]).toContain(grandchild.status);
      expect(grandchild.json.message).toContain(child.id);

      const leaf = await neon.branches.create({ projectId, name: 'expiring-at-creation', noCompute: true, expires_at: inDays(2) });
      expect(leaf.expires_at).toBeDefined();

      const cleared = await neon.branches.update({ projectId, branchId: child.id, expires_at: null });
      expect(cleared.expires_at).toBeUndefined();
      await settle();
    });

    test('an expired branch is deleted by the sweep', async () => {
      // Whole seconds, as Neon takes them: at least 4 s ahead, so the branch outlives its creation.
      const soon = new Date(Date.now() + 5000).toISOString().replace(/\.\d{3}Z$/, 'Z');
      const doomed = await neon.branches.create({ projectId, name: 'expires-soon', noCompute: true, expires_at: soon });
      await settle();
      const before = await control('POST', 'sweep');
      expect(((await before.json()) as { deleted: string[] }).deleted).not.toContain(doomed.id);
      await new Promise((r) => setTimeout(r, Date.parse(soon) - Date.now() + 100));
      // The emulator's own background sweep may get there first; either way the branch is gone.
      await control('POST', 'sweep');
      expect((await api('GET', `/branches/${doomed.id}`)).status).toBe(404);
    });

    test('the background job deletes an expired branch without being asked, not before its time', async () => {
      await settle(); // the previous test's deletion must not answer this create with 423
      const soon = new Date(Date.now() + 5000).toISOString().replace(/\.\d{3}Z$/, 'Z');
      const doomed = await neon.branches.create({ projectId, name: 'expires-unattended', noCompute: true, expires_at: soon });
      // The event is the branch's disappearance; it must come within a few sweeps of expires_at.
      let status = 200;
      for (const deadline = Date.parse(soon) + 15_000; status === 200 && Date.now() < deadline;) {
        await new Promise((r) => setTimeout(r, 250));
        status = (await api('GET', `/branches/${doomed.id}`)).status;
      }
      expect(status).toBe(404);
      // And not before its time: the deletion's operations were recorded at or after expires_at.
      const deletion = (await neon.operations.list({ projectId }).all()).find(
        (op) => op.branch_id === doomed.id && op.action === 'delete_timeline',
      );
      expect(deletion).toBeDefined();
      expect(Date.parse(deletion!.created_at)).toBeGreaterThanOrEqual(Date.parse(soon));
    });
  });

  describe('branch limit', () => {
    beforeAll(async () => {
      await freshProject('branch limit', { branchLimit: 4 });
    });

    test('creating a branch beyond the limit (default branch included) gets 422', async () => {
      const limit = (await neon.projects.get({ projectId })).owner!.branches_limit;
      expect(limit).toBe(4); // this project's own limit, set when the test made it
      const existing = (await neon.branches.list({ projectId }).all()).length;
      expect(existing).toBe(1);
      for (let i = existing; i < limit; i++) {
        await neon.branches.create({ projectId, name: `limit-${i}`, noCompute: true });
      }
      await settle();
      const over = await api('POST', '/branches', { branch: { name: 'one-too-many' } });
      expect(over.status).toBe(422);
      expect(over.json.message).toMatch(/branches limit exceeded/);
      expect((await neon.branches.list({ projectId }).all()).length).toBe(limit);
    });
  });

  describe('listing and annotations', () => {
    beforeAll(async () => {
      await freshProject('listing and annotations');
    });

    test('search matches part of a name or of an id; annotations are keyed by branch id', async () => {
      const annotated = await api('POST', '/branches', {
        branch: { name: 'backup-20250101T000000Z' },
        annotation_value: { 'supaneon-sync': 'backup', 'run-id': 'r1' },
      });
      expect(annotated.status).toBe(201);
      await neon.operations.waitFor({ operations: annotated.json.operations });
      const id: string = annotated.json.branch.id;

      const byName = await api('GET', '/branches?search=backup-2025');
      expect(byName.json.branches.map((b: Branch) => b.id)).toEqual([id]);
      expect(byName.json.annotations[id]).toEqual(
        expect.objectContaining({
          object: { type: 'console/branch', id },
          value: { 'supaneon-sync': 'backup', 'run-id': 'r1' },
        }),
      );
      const byId = await api('GET', `/branches?search=${id.slice(3, 12)}`);
      expect(byId.json.branches.map((b: Branch) => b.id)).toContain(id);

      const one = await api('GET', `/branches/${id}`);
      expect(one.json.annotation.value).toEqual({ 'supaneon-sync': 'backup', 'run-id': 'r1' });

      // Names are unique in a project, as on Neon.
      const again = await api('POST', '/branches', { branch: { name: 'backup-20250101T000000Z' } });
      expect(again.status).toBe(409);
      expect(again.json.message).toMatch(/branch already exists/);
      expect(again.json.message).toContain(id);
    });
  });

  describe('fault injection', () => {
    beforeAll(async () => {
      await freshProject('fault injection');
    });

    test('500: the next matching call fails, the one after succeeds', async () => {
      await control('POST', 'faults', { status: 500, count: 1, method: 'GET', path: '/branches' });
      const failed = await api('GET', '/branches');
      expect(failed.status).toBe(500);
      expect(failed.json).toEqual(expect.objectContaining({ code: expect.any(String), message: expect.any(String) }));
      expect((await api('GET', '/branches')).status).toBe(200);
    });

    test('429 carries Retry-After, and the official client retries through it', async () => {
      await control('POST', 'faults', { status: 429, count: 1, path: '/branches' });
      const limited = await api('GET', '/branches');
      expect(limited.status).toBe(429);
      expect(limited.headers.get('retry-after')).toBe('1');

      const main = await defaultBranch();
      await control('POST', 'faults', { status: 423, count: 2, method: 'GET', path: `/branches/${main.id}` });
      const fetched = await neon.branches.get({ projectId, branchId: main.id });
      expect(fetched.id).toBe(main.id);
      // Both injected 423s were answered (and retried) before the call succeeded.
      expect(((await (await control('GET', 'faults')).json()) as { faults: unknown[] }).faults).toEqual([]);
    });

    test('hang: the call is never answered until the client gives up', async () => {
      await control('POST', 'faults', { status: 'hang', count: 1, path: '/endpoints' });
      const started = Date.now();
      await expect(fetch(`${projectUrl}/endpoints`, { headers: auth, signal: AbortSignal.timeout(500) })).rejects.toThrow(/abort|timeout/i);
      expect(Date.now() - started).toBeGreaterThanOrEqual(450);

      await control('POST', 'faults', { status: 'hang', count: 1, path: '/endpoints' });
      const { error } = await createNeonClient({ apiKey, baseUrl: apiHost, requestTimeoutMs: 300 }).postgres.endpoints.list({ projectId });
      expect(error?.kind).toBe('timeout');

      const endpoints = await neon.postgres.endpoints.list({ projectId });
      expect(endpoints.length).toBeGreaterThan(0);
    });

    test('an `after` fault lets the call take effect and loses only its answer', async () => {
      await settle();
      await control('POST', 'faults', { status: 500, count: 1, method: 'POST', path: '/branches', after: true });
      const lost = await api('POST', '/branches', { branch: { name: 'created-but-answer-lost' } });
      expect(lost.status).toBe(500);
      const [made] = await neon.branches.list({ projectId, search: 'created-but-answer-lost' }).all();
      expect(made?.name).toBe('created-but-answer-lost');
      await settle();
      await neon.branches.delete({ projectId, branchId: made.id });
      await settle();
    });

    test('a fault only hits matching calls, and DELETE .../faults clears them', async () => {
      await control('POST', 'faults', { status: 503, count: 5, method: 'DELETE' });
      expect((await api('GET', '/branches')).status).toBe(200);
      expect(((await (await control('GET', 'faults')).json()) as { faults: unknown[] }).faults).toEqual([
        expect.objectContaining({ status: 503, count: 5 }),
      ]);
      await control('DELETE', 'faults');
      const err: NeonApiError | undefined = (
        await createNeonClient({ apiKey, baseUrl: apiHost, retries: 0 }).branches.delete({ projectId, branchId: 'br-missing-00000000' })
      ).error as NeonApiError | undefined;
      expect(err?.status).toBe(404);
    });
  });

  describe('projects', () => {
    interface CreatedProject {
      project: { id: string; name: string };
      branch: { id: string; name: string; default?: boolean; primary?: boolean };
      endpoints: Array<{ host: string; branch_id: string; type: string }>;
      roles: Array<{ name: string; password?: string }>;
      databases: Array<{ name: string; owner_name: string }>;
      operations: Operation[];
      connection_uris: Array<{ connection_uri: string; connection_parameters: { host: string; role: string; database: string } }>;
    }

    async function account(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
      const res = await fetch(`${apiHost}${path}`, {
        method,
        headers: { ...auth, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(120_000),
      });
      const text = await res.text();
      return { status: res.status, json: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown> };
    }

    test('POST /projects answers as Neon does; DELETE /projects/{id} stops and removes everything', async () => {
      const made = await account('POST', '/projects', { project: { name: 'emulator-shape-check' } });
      expect(made.status).toBe(201);
      const created = made.json as unknown as CreatedProject;
      const id = created.project.id;
      try {
        expect(id).toMatch(/^[a-z]+-[a-z]+-\d{8}$/);
        expect(created.project.name).toBe('emulator-shape-check');
        expect(created.branch).toEqual(expect.objectContaining({ name: 'main', default: true, primary: true }));
        expect(created.endpoints).toEqual([expect.objectContaining({ branch_id: created.branch.id, type: 'read_write' })]);
        expect(created.roles).toEqual([expect.objectContaining({ name: 'neondb_owner', password: expect.any(String) })]);
        expect(created.databases).toEqual([expect.objectContaining({ name: 'neondb', owner_name: 'neondb_owner' })]);
        expect(created.operations.map((op) => op.action).sort()).toEqual(['create_timeline', 'start_compute']);
        const uri = new URL(created.connection_uris[0].connection_uri);
        expect(uri.hostname).toBe(created.endpoints[0].host);
        expect(uri.searchParams.get('sslmode')).toBe('require');
        await neon.operations.waitFor({ operations: created.operations });

        // Its own role password, its own endpoint, over verified TLS.
        const client = new pg.Client({
          host: uri.hostname,
          port: Number(uri.port),
          user: decodeURIComponent(uri.username),
          password: decodeURIComponent(uri.password),
          database: uri.pathname.slice(1),
          ssl: { ca, rejectUnauthorized: true },
          connectionTimeoutMillis: 10_000,
          query_timeout: CALL_TIMEOUT_MS,
        });
        await client.connect();
        try {
          // Through the endpoint's entry (like Neon's proxy) to the branch's cluster on 127.1.X.Y.
          expect((await client.query('SELECT host(inet_server_addr()) AS addr')).rows[0].addr).toBe(
            uri.hostname.replace(/^127\.0\./, '127.1.'),
          );
        } finally {
          await client.end();
        }
        expect((await account('GET', `/projects/${id}`)).json.project).toEqual(
          expect.objectContaining({ id, name: 'emulator-shape-check' }),
        );
        expect(((await account('GET', '/projects')).json.projects as Array<{ id: string }>).map((p) => p.id)).toContain(id);

        const deleted = await account('DELETE', `/projects/${id}`);
        expect(deleted.status).toBe(200);
        expect(deleted.json.project).toEqual(expect.objectContaining({ id }));
        expect((await account('GET', `/projects/${id}`)).status).toBe(404);
        expect((await account('GET', `/projects/${id}/branches`)).status).toBe(404);
        expect(((await account('GET', '/projects')).json.projects as Array<{ id: string }>).map((p) => p.id)).not.toContain(id);
        // Its cluster no longer runs: nothing answers on its endpoint.
        const gone = new pg.Client({
          host: uri.hostname,
          port: Number(uri.port),
          user: 'neondb_owner',
          password: 'x',
          database: 'neondb',
          ssl: { ca, rejectUnauthorized: true },
          connectionTimeoutMillis: 5_000,
        });
        await expect(gone.connect()).rejects.toThrow(/ECONNREFUSED|timeout|terminated/i);
      } finally {
        await account('DELETE', `/projects/${id}`);
      }
    });

    test('projects share nothing: branches, data, faults, limits and the 423 lock are each their own', async () => {
      const [a, b] = await Promise.all([
        createTestProject('emulator.test.ts isolation a'),
        createTestProject('emulator.test.ts isolation b', { branchLimit: 2 }),
      ]);
      try {
        expect(a.defaultHost).not.toBe(b.defaultHost);
        const [aUrl, bUrl] = [new URL(a.databaseUrl), new URL(b.databaseUrl)];
        expect(aUrl.password).not.toBe(bUrl.password); // each project's role has its own password
        await sql(aUrl.hostname, 'CREATE TABLE only_in_a (x int)', [], aUrl);
        const inB = await sql(bUrl.hostname, "SELECT tablename FROM pg_tables WHERE tablename = 'only_in_a'", [], bUrl);
        expect(inB).toEqual([]);

        // A branch being made in one project (its operation in flight) locks only that project.
        const [inA, inBranch] = await Promise.all([
          neon.branches.create({ projectId: a.projectId, name: 'same-name', noCompute: true }),
          neon.branches.create({ projectId: b.projectId, name: 'same-name', noCompute: true }),
        ]);
        expect(inA.project_id).toBe(a.projectId);
        expect(inBranch.project_id).toBe(b.projectId);
        expect((await neon.branches.list({ projectId: a.projectId }).all()).map((x) => x.id).sort()).toEqual(
          [a.defaultBranchId, inA.id].sort(),
        );

        // b's limit of 2 is reached; a keeps the default limit.
        expect((await neon.projects.get({ projectId: b.projectId })).owner?.branches_limit).toBe(2);
        expect((await neon.projects.get({ projectId: a.projectId })).owner?.branches_limit).toBe(10);

        // A fault injected into a is never seen by b.
        await a.injectFault({ status: 500, count: 1, method: 'GET', path: '/branches' });
        const bList = await fetch(`${apiHost}/projects/${b.projectId}/branches`, {
          headers: auth,
          signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
        });
        expect(bList.status).toBe(200);
        const aList = await fetch(`${apiHost}/projects/${a.projectId}/branches`, {
          headers: auth,
          signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
        });
        expect(aList.status).toBe(500);
      } finally {
        await Promise.all([a.dispose(), b.dispose()]);
      }
    });

    test("the stack's own project (the one in .stack/env) is never deleted", async () => {
      const refused = await account('DELETE', `/projects/${env.NEON_PROJECT_ID}`);
      expect(refused.status).toBe(422);
      expect(String(refused.json.message)).toContain(env.NEON_PROJECT_ID);
      expect((await account('GET', `/projects/${env.NEON_PROJECT_ID}`)).status).toBe(200);
    });
  });

  describe('simulated network (for the benchmark)', () => {
    beforeAll(async () => {
      await freshProject('simulated network');
    });

    test("adds the round trip to every statement on the project's endpoints, counts the turns, and goes away when set to 0", async () => {
      const host = await hostOf((await defaultBranch()).id);
      expect(await (await control('PUT', 'network', { rtt_ms: 200 })).json()).toEqual({ rtt_ms: 200, connections: 0, turns: 0 });
      try {
        const client = await connect(host);
        try {
          const started = performance.now();
          expect((await client.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
          // One round trip at least; generous above for a loaded machine.
          expect(performance.now() - started).toBeGreaterThanOrEqual(190);
        } finally {
          await client.end();
        }
        const counted = (await (await control('GET', 'network')).json()) as { connections: number; turns: number };
        expect(counted.connections).toBe(1);
        // TLS, authentication, the statement.
        expect(counted.turns).toBeGreaterThanOrEqual(3);
      } finally {
        await control('PUT', 'network', { rtt_ms: 0 });
      }
      const started = performance.now();
      await sql(host, 'SELECT 1');
      expect(performance.now() - started).toBeLessThan(10_000);
      expect(((await (await control('GET', 'network')).json()) as { connections: number }).connections).toBe(0);
      const refused = await fetch(`${controlBase}/__emulator/projects/${projectId}/network`, {
        method: 'PUT',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ rtt_ms: -1 }),
      });
      expect(refused.status).toBe(400);
    });
  });

  describe("reset (what the demo does to the stack's own project)", () => {
    beforeAll(async () => {
      await freshProject('reset');
    });

    test('leaves only the default branch, with an empty database', async () => {
      const main = await defaultBranch();
      const mainHost = await hostOf(main.id);
      await sql(mainHost, 'CREATE TABLE leftover (x int)');
      await neon.branches.create({ projectId, name: 'to-be-reset', noCompute: true });
      await control('POST', 'reset');

      const branches = await neon.branches.list({ projectId }).all();
      expect(branches.map((b) => b.id)).toEqual([main.id]);
      const tables = await sql(mainHost, "SELECT tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')");
      expect(tables).toEqual([]);
    });
  });
});
