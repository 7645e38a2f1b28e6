// HTTP edge of the emulator: Bearer auth, Neon's error bodies, fault injection, and the routes of
// Neon API v2 the product calls (under /api/v2), plus test-only control routes (under /__emulator).
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type {
  GeneralError,
  GetProjectOperationResponse,
  GetProjectResponse,
  ListProjectBranchDatabasesResponse,
  ListProjectBranchEndpointsResponse,
  ListProjectBranchRolesResponse,
  ListProjectEndpointsResponse,
  ListProjectOperationsResponse,
} from '@neon/sdk';
import { isPlanName, PLANS } from './plan.js';
import { ApiError, type Log, type Project } from './project.js';

export type FaultStatus = 423 | 429 | 500 | 503 | 'hang';

/**
 * The next `count` API calls matching method/path answer `status` (or hang) instead of doing
 * anything; with `after`, they do their work first and only their answer is replaced.
 */
export interface Fault {
  status: FaultStatus;
  count: number;
  method?: string;
  path?: string;
  after?: boolean;
}

const FAULT_BODIES: Record<Exclude<FaultStatus, 'hang'>, { code: string; message: string }> = {
  423: { code: 'LOCKED', message: 'project already has running conflicting operations, scheduling of new ones is prohibited' },
  429: { code: 'TOO_MANY_REQUESTS', message: 'rate limit exceeded, retry later' },
  500: { code: 'INTERNAL_ERROR', message: 'internal server error' },
  503: { code: 'SERVICE_UNAVAILABLE', message: 'service is temporarily unavailable, retry later' },
};

const MAX_BODY_BYTES = 1024 * 1024;

interface Reply {
  status: number;
  body?: unknown;
}

type Handler = (params: string[], url: URL, body: unknown) => Reply | Promise<Reply>;

/**
 * sha256 (hex) of this directory's .ts files concatenated in byte order of their names, as
 * `cat $(ls test/support/neon-emulator/*.ts | LC_ALL=C sort) | sha256sum` computes it: lets a
 * start script tell that a running emulator is older than the code and should be restarted.
 */
export function emulatorSourceHash(): string {
  const dir = path.dirname(fileURLToPath(import.meta.url));
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.ts')).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const hash = crypto.createHash('sha256');
  for (const f of files) hash.update(fs.readFileSync(path.join(dir, f)));
  return hash.digest('hex');
}

export function createServer(project: Project, apiKey: string, log: Log): http.Server {
  const sourceHash = emulatorSourceHash();
  const faults: Fault[] = [];

  const api: Array<[method: string, pattern: RegExp, handler: Handler]> = [
    ['GET', /^\/projects\/([^/]+)$/, () => ok(project.projectJson() satisfies GetProjectResponse)],
    ['GET', /^\/projects\/([^/]+)\/branches$/, (_p, url) => ok(project.listBranches(url.searchParams))],
    ['POST', /^\/projects\/([^/]+)\/branches$/, async (_p, _u, body) => ({ status: 201, body: await project.createBranch(body) })],
    ['GET', /^\/projects\/([^/]+)\/branches\/([^/]+)$/, ([, id]) => ok(project.getBranch(id))],
    ['PATCH', /^\/projects\/([^/]+)\/branches\/([^/]+)$/, ([, id], _u, body) => ok(project.updateBranch(id, body))],
    // A branch deleted before: Neon answers 204 ("doesn't exist or has already been deleted").
    ['DELETE', /^\/projects\/([^/]+)\/branches\/([^/]+)$/, async ([, id]) => (project.wasDeleted(id) ? { status: 204 } : ok(await project.deleteBranch(id)))],
    ['GET', /^\/projects\/([^/]+)\/branches\/([^/]+)\/roles\/([^/]+)\/reveal_password$/, ([, id, role]) => ok(project.revealRolePassword(id, role))],
    ['POST', /^\/projects\/([^/]+)\/branches\/([^/]+)\/roles\/([^/]+)\/reset_password$/, async ([, id, role]) => ok(await project.resetRolePassword(id, role))],
    ['GET', /^\/projects\/([^/]+)\/branches\/([^/]+)\/endpoints$/,
      ([, id]) => ok({ endpoints: project.endpointsOf(id) } satisfies ListProjectBranchEndpointsResponse)],
    ['GET', /^\/projects\/([^/]+)\/branches\/([^/]+)\/roles$/, ([, id]) => ok({ roles: project.rolesOf(id) } satisfies ListProjectBranchRolesResponse)],
    ['GET', /^\/projects\/([^/]+)\/branches\/([^/]+)\/databases$/,
      ([, id]) => ok({ databases: project.databasesOf(id) } satisfies ListProjectBranchDatabasesResponse)],
    ['GET', /^\/projects\/([^/]+)\/endpoints$/, () => ok({ endpoints: project.allEndpoints() } satisfies ListProjectEndpointsResponse)],
    ['GET', /^\/projects\/([^/]+)\/connection_uri$/, (_p, url) => ok(project.connectionUri(url.searchParams))],
    ['GET', /^\/projects\/([^/]+)\/operations$/, () => {
      const operations = project.operations.list();
      return ok({ operations, pagination: { cursor: operations.at(-1)?.created_at ?? '' } } satisfies ListProjectOperationsResponse);
    }],
    ['GET', /^\/projects\/([^/]+)\/operations\/([^/]+)$/,
      ([, id]) => ok({ operation: project.operations.toApi(project.operation(id)) } satisfies GetProjectOperationResponse)],
  ];

  const control: Array<[method: string, path: string, handler: Handler]> = [
    ['GET', '/__emulator/faults', () => ok({ faults })],
    ['POST', '/__emulator/faults', (_p, _u, body) => {
      faults.push(parseFault(body));
      return ok({ faults });
    }],
    ['DELETE', '/__emulator/faults', () => {
      faults.length = 0;
      return ok({ faults });
    }],
    ['POST', '/__emulator/sweep', async () => ok({ deleted: await project.sweepExpired() })],
    ['POST', '/__emulator/plan', (_p, _u, body) => {
      const plan = (body as { plan?: unknown } | undefined)?.plan;
      if (typeof plan !== 'string' || !isPlanName(plan)) throw new ApiError(400, 'BAD_REQUEST', `plan must be one of ${PLANS.join(', ')} (got ${JSON.stringify(plan)})`);
      project.setPlan(plan);
      return ok({ plan });
    }],
    ['POST', '/__emulator/reset', async () => {
      faults.length = 0;
      await project.reset();
      return ok(project.health());
    }],
  ];

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const method = req.method ?? 'GET';
    if (method === 'GET' && url.pathname === '/__emulator/health') return send(res, ok({ ...project.health(), sourceHash }));
    if (!authorized(req.headers.authorization, apiKey)) {
      return send(res, error(401, 'UNAUTHORIZED', 'authentication failed: the Authorization header must be "Bearer <API key>" with a valid key'));
    }

    if (url.pathname.startsWith('/__emulator/')) {
      const route = control.find(([m, p]) => m === method && p === url.pathname);
      if (route === undefined) return send(res, error(404, 'NOT_FOUND', `no emulator control route ${method} ${url.pathname}`));
      return send(res, await route[2]([], url, await readJson(req)));
    }

    if (!url.pathname.startsWith('/api/v2/')) return send(res, error(404, 'NOT_FOUND', `no route ${method} ${url.pathname}; the API lives under /api/v2`));
    const fault = takeFault(faults, method, url.pathname + url.search);
    if (fault !== undefined && !fault.after) return answerFault(res, fault, `${method} ${url.pathname}`);
    const reply = await routeApi(method, url, req).catch((err: unknown) => {
      if (err instanceof ApiError) return error(err.status, err.code, err.message);
      throw err;
    });
    // An `after` fault lets the call take effect and then loses its answer, as a dropped
    // connection or a proxy error after a successful POST would.
    if (fault !== undefined) return answerFault(res, fault, `${method} ${url.pathname} (after answering ${reply.status})`);
    send(res, reply);
  }

  async function routeApi(method: string, url: URL, req: http.IncomingMessage): Promise<Reply> {
    const apiPath = url.pathname.slice('/api/v2'.length);
    for (const [m, pattern, handler] of api) {
      const match = pattern.exec(apiPath);
      if (match === null || m !== method) continue;
      const params = match.slice(1).map(decodeURIComponent);
      project.checkProject(params[0]);
      return handler(params, url, await readJson(req));
    }
    return error(404, 'NOT_FOUND', `no route ${method} ${url.pathname} in the emulated Neon API`);
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

function parseFault(body: unknown): Fault {
  const f = (body ?? {}) as Partial<Fault>;
  const statuses: FaultStatus[] = [423, 429, 500, 503, 'hang'];
  if (!statuses.includes(f.status as FaultStatus)) {
    throw new ApiError(400, 'BAD_REQUEST', `fault status must be one of 423, 429, 500, 503, "hang" (got ${JSON.stringify(f.status)})`);
  }
  if (!Number.isInteger(f.count) || (f.count as number) < 1) {
    throw new ApiError(400, 'BAD_REQUEST', `fault count must be a positive integer (got ${JSON.stringify(f.count)})`);
  }
  if (f.method !== undefined && typeof f.method !== 'string') throw new ApiError(400, 'BAD_REQUEST', 'fault method must be a string');
  if (f.path !== undefined && typeof f.path !== 'string') throw new ApiError(400, 'BAD_REQUEST', 'fault path must be a string');
  if (f.after !== undefined && typeof f.after !== 'boolean') throw new ApiError(400, 'BAD_REQUEST', 'fault after must be a boolean');
  return { status: f.status as FaultStatus, count: f.count as number, method: f.method?.toUpperCase(), path: f.path, after: f.after };
}

/** Consumes one use of the first fault matching this call. */
function takeFault(faults: Fault[], method: string, pathAndQuery: string): Fault | undefined {
  const index = faults.findIndex((f) => (f.method === undefined || f.method === method) && (f.path === undefined || pathAndQuery.includes(f.path)));
  if (index === -1) return undefined;
  const fault = faults[index];
  fault.count -= 1;
  if (fault.count === 0) faults.splice(index, 1);
  return fault;
}
