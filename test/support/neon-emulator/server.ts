// HTTP edge of the emulator: Bearer auth, Neon's error bodies, fault injection, and the routes of
// Neon API v2 that the product, the tests and the demo call (under /api/v2) and no other, plus
// test-only control routes (under /__emulator/projects/{project_id}), scoped by project like
// everything else.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type {
  GeneralError,
  GetProjectOperationResponse,
  GetProjectResponse,
  ListProjectBranchEndpointsResponse,
  ListProjectEndpointsResponse,
  ListProjectOperationsResponse,
} from '@neon/sdk';
import { ApiError, type Log } from './errors.js';
import { FAULT_BODIES, type Fault } from './faults.js';
import type { Project } from './project.js';
import type { Projects } from './projects.js';

const MAX_BODY_BYTES = 1024 * 1024;

interface Reply {
  status: number;
  body?: unknown;
}

type ProjectHandler = (project: Project, params: string[], url: URL, body: unknown) => Reply | Promise<Reply>;
type ProjectRoute = [method: string, pattern: RegExp, handler: ProjectHandler];

/**
 * sha256 (hex) of this directory's .ts files concatenated in byte order of their names, as
 * `cat $(ls test/support/neon-emulator/*.ts | LC_ALL=C sort) | sha256sum` computes it: lets a
 * start script tell that a running emulator is older than the code and should be restarted.
 */
export function emulatorSourceHash(): string {
  const dir = path.dirname(fileURLToPath(import.meta.url));
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const hash = crypto.createHash('sha256');
  for (const f of files) hash.update(fs.readFileSync(path.join(dir, f)));
  // The one source it imports from outside its folder: a change to the relay must restart it too.
  hash.update(fs.readFileSync(path.join(dir, '..', '..', '..', 'devkit', 'latency-proxy.ts')));
  return hash.digest('hex');
}

export function createServer(projects: Projects, apiKey: string, log: Log): http.Server {
  const sourceHash = emulatorSourceHash();

  // Under /api/v2/projects/{project_id}: the handler gets the project (Neon's 404 when there is none).
  const projectApi: ProjectRoute[] = [
    ['GET', /^$/, (p) => ok(p.projectJson() satisfies GetProjectResponse)],
    ['DELETE', /^$/, async (p) => ok(await projects.delete(p.id))],
    ['GET', /^\/branches$/, (p, _a, url) => ok(p.listBranches(url.searchParams))],
    ['POST', /^\/branches$/, async (p, _a, _u, body) => ({ status: 201, body: await p.createBranch(body) })],
    ['GET', /^\/branches\/([^/]+)$/, (p, [id]) => ok(p.getBranch(id))],
    ['PATCH', /^\/branches\/([^/]+)$/, (p, [id], _u, body) => ok(p.updateBranch(id, body))],
    // A branch deleted before: Neon answers 204 ("doesn't exist or has already been deleted").
    ['DELETE', /^\/branches\/([^/]+)$/, async (p, [id]) => (p.wasDeleted(id) ? { status: 204 } : ok(await p.deleteBranch(id)))],
    ['GET', /^\/branches\/([^/]+)\/roles\/([^/]+)\/reveal_password$/, (p, [id, role]) => ok(p.revealRolePassword(id, role))],
    ['POST', /^\/branches\/([^/]+)\/roles\/([^/]+)\/reset_password$/, async (p, [id, role]) => ok(await p.resetRolePassword(id, role))],
    [
      'GET',
      /^\/branches\/([^/]+)\/endpoints$/,
      (p, [id]) => ok({ endpoints: p.endpointsOf(id) } satisfies ListProjectBranchEndpointsResponse),
    ],
    ['GET', /^\/endpoints$/, (p) => ok({ endpoints: p.allEndpoints() } satisfies ListProjectEndpointsResponse)],
    ['GET', /^\/connection_uri$/, (p, _a, url) => ok(p.connectionUri(url.searchParams))],
    // Newest first, all on one page, with Neon's cursor (the last one's created_at): the page after
    // it holds only older operations, so a client following cursors stops at an empty page.
    [
      'GET',
      /^\/operations$/,
      (p, _a, url) => {
        const after = url.searchParams.get('cursor');
        const operations = p.operations.list().filter((op) => !after || op.created_at < after);
        return ok({
          operations,
          pagination: { cursor: operations.at(-1)?.created_at ?? after ?? '' },
        } satisfies ListProjectOperationsResponse);
      },
    ],
    [
      'GET',
      /^\/operations\/([^/]+)$/,
      (p, [id]) => ok({ operation: p.operations.toApi(p.operation(id)) } satisfies GetProjectOperationResponse),
    ],
  ];

  // Under /__emulator/projects/{project_id}: what a test may do to its own project and nobody else's.
  const projectControl: ProjectRoute[] = [
    ['PATCH', /^$/, (p, _a, _u, body) => ok({ settings: publicSettings(p.updateSettings(body)) })],
    ['GET', /^\/faults$/, (p) => ok({ faults: p.faults.list() })],
    [
      'POST',
      /^\/faults$/,
      (p, _a, _u, body) => {
        p.faults.add(body);
        return ok({ faults: p.faults.list() });
      },
    ],
    [
      'DELETE',
      /^\/faults$/,
      (p) => {
        p.faults.clear();
        return ok({ faults: p.faults.list() });
      },
    ],
    // A simulated network between clients and this project's endpoints (devkit/latency-proxy.ts).
    ['GET', /^\/network$/, (p) => ok(p.network())],
    ['PUT', /^\/network$/, (p, _a, _u, body) => ok(p.setNetwork(body))],
    ['POST', /^\/sweep$/, async (p) => ok({ deleted: await p.sweepExpired() })],
    [
      'POST',
      /^\/reset$/,
      async (p) => {
        await p.reset();
        const { defaultBranchId, defaultHost } = p.defaultEndpoint();
        return ok({ defaultBranchId, defaultHost });
      },
    ],
  ];

  function health(): unknown {
    const stack = projects.stackDefault;
    const { defaultBranchId, defaultHost } = stack.defaultEndpoint();
    return { defaultProjectId: stack.id, defaultBranchId, defaultHost, sourceHash };
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const method = req.method ?? 'GET';
    if (method === 'GET' && url.pathname === '/__emulator/health') return send(res, ok(health()));
    if (!authorized(req.headers.authorization, apiKey)) {
      return send(
        res,
        error(401, 'UNAUTHORIZED', 'authentication failed: the Authorization header must be "Bearer <API key>" with a valid key'),
      );
    }

    if (url.pathname.startsWith('/__emulator/')) {
      const scoped = /^\/__emulator\/projects\/([^/]+)(.*)$/.exec(url.pathname);
      const route = scoped === null ? undefined : findRoute(projectControl, method, scoped[2]);
      if (scoped === null || route === undefined) {
        return send(
          res,
          error(404, 'NOT_FOUND', `no emulator control route ${method} ${url.pathname}; they live under /__emulator/projects/{project_id}`),
        );
      }
      const project = projects.get(decodeURIComponent(scoped[1]));
      return send(res, await route.handler(project, route.params, url, await readJson(req)));
    }

    if (!url.pathname.startsWith('/api/v2/'))
      return send(res, error(404, 'NOT_FOUND', `no route ${method} ${url.pathname}; the API lives under /api/v2`));
    const apiPath = url.pathname.slice('/api/v2'.length);
    if (apiPath === '/projects' && method === 'GET') return send(res, ok(projects.list()));
    if (apiPath === '/projects' && method === 'POST') return send(res, { status: 201, body: await projects.create(await readJson(req)) });
    const scoped = /^\/projects\/([^/]+)(.*)$/.exec(apiPath);
    const route = scoped === null ? undefined : findRoute(projectApi, method, scoped[2]);
    if (scoped === null || route === undefined)
      return send(res, error(404, 'NOT_FOUND', `no route ${method} ${url.pathname} in the emulated Neon API`));
    const project = projects.get(decodeURIComponent(scoped[1]));

    const fault = project.faults.take(method, url.pathname + url.search);
    if (fault !== undefined && !fault.after) return answerFault(res, fault, `${method} ${url.pathname}`);
    const body = await readJson(req);
    const reply = await Promise.resolve()
      .then(() => route.handler(project, route.params, url, body))
      .catch((err: unknown) => {
        if (err instanceof ApiError) return error(err.status, err.code, err.message);
        throw err;
      });
    // An `after` fault lets the call take effect and then loses its answer, as a dropped
    // connection or a proxy error after a successful POST would.
    if (fault !== undefined) return answerFault(res, fault, `${method} ${url.pathname} (after answering ${reply.status})`);
    send(res, reply);
  }

  function answerFault(res: http.ServerResponse, fault: Fault, call: string): void {
    if (fault.status === 'hang') {
      log(`fault: ${call} hangs`);
      return; // never answered: the client has to give up (the server closes it on shutdown)
    }
    log(`fault: ${call} answers ${fault.status}`);
    if (fault.status === 429) res.setHeader('Retry-After', '1');
    send(res, error(fault.status, FAULT_BODIES[fault.status].code, FAULT_BODIES[fault.status].message));
  }

  return http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof ApiError) return send(res, error(err.status, err.code, err.message));
      log(`error: ${req.method} ${req.url}: ${(err as Error).stack ?? String(err)}`);
      send(res, error(500, 'INTERNAL_ERROR', (err as Error).message));
    });
  });
}

function findRoute(routes: ProjectRoute[], method: string, rest: string): { handler: ProjectHandler; params: string[] } | undefined {
  for (const [m, pattern, handler] of routes) {
    const match = pattern.exec(rest);
    if (match !== null && m === method) return { handler, params: match.slice(1).map(decodeURIComponent) };
  }
  return undefined;
}

/** A project's emulator settings as the control route shows them: never its password. */
function publicSettings(settings: Project['settings']): Record<string, unknown> {
  return { id: settings.id, name: settings.name, role: settings.role, database: settings.database, branch_limit: settings.branchLimit };
}

function ok(body: unknown): Reply {
  return { status: 200, body };
}

function error(status: number, code: string, message: string): Reply {
  return { status, body: { code, message, request_id: crypto.randomUUID() } satisfies GeneralError };
}

function send(res: http.ServerResponse, reply: Reply): void {
  if (res.headersSent) return;
  if (reply.status === 204) {
    res.writeHead(204);
    res.end();
    return;
  }
  const text = JSON.stringify(reply.body ?? {});
  res.writeHead(reply.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Constant-time comparison, so the key cannot be guessed byte by byte from response times. */
function authorized(header: string | undefined, apiKey: string): boolean {
  const match = /^Bearer (.+)$/.exec(header ?? '');
  if (match === null) return false;
  const given = crypto.createHash('sha256').update(match[1]).digest();
  const expected = crypto.createHash('sha256').update(apiKey).digest();
  return crypto.timingSafeEqual(given, expected);
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new ApiError(413, 'PAYLOAD_TOO_LARGE', `request body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ApiError(400, 'BAD_REQUEST', 'request body is not valid JSON');
  }
}
