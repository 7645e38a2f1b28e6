// A Neon project of a test file's own in the local stack's emulator: its own default branch (the
// standby), branches, operations (and 423 lock), faults and branch limit, so test files running in
// parallel never see each other's state and nothing has to wait for anything. Created through
// Neon's own route (POST /projects) and deleted the same way (DELETE /projects/{id}), which stops
// and removes its clusters. See docs/LOCAL-STACK.md, "Tests and the stack".
/** Every call to the emulator gives up after this long: a test never waits on it for ever. */
const CALL_TIMEOUT_MS = 30_000;
/** Making a project copies and starts a cluster: seconds, longer on a loaded machine. */
const CREATE_TIMEOUT_MS = 120_000;
/** Projects of test runs are named `test:<pid>:<label>`, so leftovers of a killed run can be found. */
const NAME_PREFIX = 'test:';

export interface TestProjectOptions {
  /** Branches the project allows, its default branch included (Neon's plan limit; default 10). */
  branchLimit?: number;
  /** The Neon plan the project is on (default free, which refuses protected branches, as Neon does). */
  plan?: 'free' | 'launch' | 'scale';
}

export type FaultStatus = 423 | 429 | 500 | 503 | 'hang';

export interface Fault {
  status: FaultStatus;
  count: number;
  method?: string;
  /** Matches calls whose path (with query) contains this text, e.g. '/branches'. */
  path?: string;
  /** The call takes effect, then only its answer is lost. */
  after?: boolean;
}

export interface TestProject {
  readonly label: string;
  /** Neon API base URL, ending in /api/v2. */
  readonly apiHost: string;
  readonly apiKey: string;
  readonly projectId: string;
  readonly defaultBranchId: string;
  /** The default branch's connection string (the standby), sslmode=require. */
  readonly databaseUrl: string;
  /** The default branch's endpoint address, e.g. 127.0.1.7. */
  readonly defaultHost: string;
  /** The action's Neon inputs for this project. */
  readonly inputs: { 'neon-api-key': string; 'neon-project-id': string; 'neon-database-url': string; 'neon-api-host': string };
  /** The same as environment variables, for the CLI's fallbacks and for bundle runs. */
  readonly env: { NEON_API_KEY: string; NEON_PROJECT_ID: string; NEON_DATABASE_URL: string; NEON_API_HOST: string };
  /** Makes this project's next `count` matching API calls answer `status` (or hang). */
  injectFault(fault: Fault): Promise<void>;
  clearFaults(): Promise<void>;
  /** Deletes this project's expired branches now; answers their ids. */
  sweep(): Promise<string[]>;
  /** A branch made as a person would in the console: no annotation, no endpoint; answers its id. */
  createPlainBranch(name: string): Promise<string>;
  /** Deletes the project and everything in it. Safe to call twice, and when creation failed half-way. */
  dispose(): Promise<void>;
}

interface StackAccess {
  apiHost: string;
  apiKey: string;
}

function stackAccess(): StackAccess {
  const apiHost = process.env.NEON_API_HOST;
  const apiKey = process.env.SUPANEON_STACK_API_KEY ?? process.env.NEON_API_KEY;
  if (!apiHost || !apiKey) {
    throw new Error("the local stack's settings (NEON_API_HOST, NEON_API_KEY) are not in the environment; run the tests with 'npm test'");
  }
  return { apiHost: apiHost.replace(/\/$/, ''), apiKey };
}

/** One bounded call to the emulator; an answer other than `expect` throws with its body. */
async function call<T>(
  stack: StackAccess,
  method: string,
  url: string,
  what: string,
  { body, expect = [200], timeoutMs = CALL_TIMEOUT_MS }: { body?: unknown; expect?: number[]; timeoutMs?: number } = {},
): Promise<{ status: number; json: T }> {
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${stack.apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    const e = error as Error & { cause?: Error };
    const why =
      e.name === 'TimeoutError'
        ? `got no answer within ${timeoutMs / 1000} s`
        : `failed: ${e.message}${e.cause ? ` (${e.cause.message})` : ''}`;
    throw new Error(`${what}: ${method} ${url} ${why}; is the stack up ('npm run stack:up')?`, { cause: error });
  }
  const text = await res.text();
  if (!expect.includes(res.status)) throw new Error(`${what}: ${method} ${url} answered HTTP ${res.status} ${text}`);
  return { status: res.status, json: (text === '' ? {} : JSON.parse(text)) as T };
}

const controlBase = (stack: StackAccess): string => stack.apiHost.replace(/\/api\/v2$/, '/__emulator');

interface CreatedProject {
  project: { id: string };
  branch: { id: string };
  connection_uris: Array<{ connection_uri: string; connection_parameters: { host: string } }>;
  operations: Array<{ id: string }>;
}

/**
 * Creates a project for one test file. Call it in beforeAll and `dispose()` it in afterAll; the
 * project is ready (its default branch's operations finished) when this resolves.
 */
export async function createTestProject(label: string, opts: TestProjectOptions = {}): Promise<TestProject> {
  const stack = stackAccess();
  const { json: created } = await call<CreatedProject>(stack, 'POST', `${stack.apiHost}/projects`, `creating a project for ${label}`, {
    body: { project: { name: `${NAME_PREFIX}${process.pid}:${label}` } },
    expect: [201],
    timeoutMs: CREATE_TIMEOUT_MS,
  });
  const projectId = created.project.id;
  const project = testProject(stack, label, projectId, created);
  try {
    if (opts.plan !== undefined) {
      await call(stack, 'PATCH', `${controlBase(stack)}/projects/${projectId}`, `setting the plan of ${label}'s project`, {
        body: { plan: opts.plan },
      });
    }
    if (opts.branchLimit !== undefined) {
      await call(stack, 'PATCH', `${controlBase(stack)}/projects/${projectId}`, `setting the branch limit of ${label}'s project`, {
        body: { branch_limit: opts.branchLimit },
      });
    }
    await waitForOperations(stack, projectId, label);
  } catch (error) {
    await project.dispose().catch(() => undefined);
    throw error;
  }
  return project;
}

function testProject(stack: StackAccess, label: string, projectId: string, created: CreatedProject): TestProject {
  const projectUrl = `${stack.apiHost}/projects/${projectId}`;
  const controlUrl = `${controlBase(stack)}/projects/${projectId}`;
  const databaseUrl = created.connection_uris[0].connection_uri;
  let disposed = false;
  return {
    label,
    apiHost: stack.apiHost,
    apiKey: stack.apiKey,
    projectId,
    defaultBranchId: created.branch.id,
    databaseUrl,
    defaultHost: created.connection_uris[0].connection_parameters.host,
    inputs: {
      'neon-api-key': stack.apiKey,
      'neon-project-id': projectId,
      'neon-database-url': databaseUrl,
      'neon-api-host': stack.apiHost,
    },
    env: { NEON_API_KEY: stack.apiKey, NEON_PROJECT_ID: projectId, NEON_DATABASE_URL: databaseUrl, NEON_API_HOST: stack.apiHost },
    async injectFault(fault) {
      await call(stack, 'POST', `${controlUrl}/faults`, `injecting a fault into ${label}'s project`, { body: fault });
    },
    async clearFaults() {
      await call(stack, 'DELETE', `${controlUrl}/faults`, `clearing the faults of ${label}'s project`);
    },
    async sweep() {
      return (await call<{ deleted: string[] }>(stack, 'POST', `${controlUrl}/sweep`, `sweeping ${label}'s project`)).json.deleted;
    },
    async createPlainBranch(name) {
      // A project answers 423 while an earlier operation runs; retry until a deadline, as a person would.
      const deadline = Date.now() + CALL_TIMEOUT_MS;
      for (;;) {
        const { status, json } = await call<{ branch: { id: string } }>(
          stack,
          'POST',
          `${projectUrl}/branches`,
          `creating branch "${name}" in ${label}'s project`,
          {
            body: { branch: { name } },
            expect: [201, 423],
          },
        );
        if (status === 201) return json.branch.id;
        if (Date.now() > deadline)
          throw new Error(`creating branch "${name}" in ${label}'s project: it stayed locked (423) for ${CALL_TIMEOUT_MS / 1000} s`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await call(stack, 'DELETE', projectUrl, `deleting ${label}'s project`, { expect: [200, 404], timeoutMs: CREATE_TIMEOUT_MS });
    },
  };
}

/** Waits until the project's operations (its default branch starting) have finished. */
async function waitForOperations(stack: StackAccess, projectId: string, label: string): Promise<void> {
  const deadline = Date.now() + CALL_TIMEOUT_MS;
  for (;;) {
    const { json } = await call<{ operations: Array<{ status: string }> }>(
      stack,
      'GET',
      `${stack.apiHost}/projects/${projectId}/operations`,
      `reading the operations of ${label}'s project`,
    );
    if (json.operations.every((op) => op.status === 'finished')) return;
    if (json.operations.some((op) => op.status === 'failed' || op.status === 'error')) {
      throw new Error(`${label}'s project ${projectId} did not start: ${JSON.stringify(json.operations)}`);
    }
    if (Date.now() > deadline) throw new Error(`${label}'s project ${projectId} was not ready within ${CALL_TIMEOUT_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Deletes the projects that test runs left behind when they were killed (their process is gone),
 * so their clusters and endpoint addresses are freed. Jest's global setup calls it once per run.
 */
export async function deleteAbandonedTestProjects(): Promise<string[]> {
  const stack = stackAccess();
  const { json } = await call<{ projects: Array<{ id: string; name: string }> }>(
    stack,
    'GET',
    `${stack.apiHost}/projects`,
    'listing projects',
  );
  const abandoned = json.projects.filter((p) => {
    if (!p.name.startsWith(NAME_PREFIX)) return false;
    const pid = Number(p.name.slice(NAME_PREFIX.length).split(':')[0]);
    return Number.isInteger(pid) && pid > 0 && !alive(pid);
  });
  for (const p of abandoned) {
    await call(stack, 'DELETE', `${stack.apiHost}/projects/${p.id}`, `deleting abandoned test project ${p.name}`, {
      expect: [200, 404],
      timeoutMs: CREATE_TIMEOUT_MS,
    });
  }
  return abandoned.map((p) => p.name);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
