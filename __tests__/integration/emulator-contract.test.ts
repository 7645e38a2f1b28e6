// The emulator against real Neon: every recorded read (test/fixtures/neon-recordings, real API
// traffic) is replayed against it, with the recorded ids mapped onto the test's project, and the
// answer must have the recorded status and every field the recorded answer has, with the same JSON
// type. Fields Neon sent as null may be absent or of any type. Reads of routes the emulator does not
// serve on purpose are skipped, each listed below with the reason; recorded writes are not replayed
// (they would change the project under test; the emulator's own tests cover them).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { parse } from 'yaml';
import { createTestProject, type TestProject } from '../../test/support/test-project.js';
import { describeWithStack } from '../../test/support/describe-with-stack.js';
import { repoRoot } from '../../devkit/stack.js';

const DIR = path.join(repoRoot, 'test', 'fixtures', 'neon-recordings');
const STACK = ['NEON_API_KEY', 'NEON_API_HOST'];

interface Interaction {
  file: string;
  method: string;
  path: string;
  body: unknown;
  status: number;
  response: unknown;
}

/**
 * Recorded reads of routes the emulator does not serve, on purpose: neither the product nor its
 * tests, demo, benchmark or stack scripts call them, and the emulator serves only what they call.
 */
const NOT_SERVED: Array<[RegExp, string]> = [
  [/^\/projects\/shared$/, 'projects shared with the user (another route than a project id): not called'],
  [/^\/projects\/[^/]+\/endpoints\/[^/]+$/, 'one endpoint by id: the product lists the endpoints instead'],
  [/^\/projects\/[^/]+\/branches\/[^/]+\/roles$/, "a branch's roles: the product reveals the owner role's password by name"],
  [/^\/projects\/[^/]+\/branches\/[^/]+\/roles\/[^/]+$/, 'one role: not called'],
  [/^\/projects\/[^/]+\/branches\/[^/]+\/databases$/, "a branch's databases: the database is read from the connection string"],
];

function recordedInteractions(): Interaction[] {
  const out: Interaction[] = [];
  for (const file of readdirSync(DIR)
    .filter((f) => f.endsWith('.yaml'))
    .sort()) {
    const doc = parse(readFileSync(path.join(DIR, file), 'utf8')) as {
      interactions: {
        request: { method: string; uri: string; body: string | null };
        response: { status: { code: number }; body: { string: string } };
      }[];
    };
    for (const i of doc.interactions) {
      const url = new URL(i.request.uri);
      const apiPath = url.pathname.replace(/^\/api\/v2/, '');
      if (i.request.method !== 'GET' || NOT_SERVED.some(([route]) => route.test(apiPath))) continue;
      out.push({
        file,
        method: i.request.method,
        path: apiPath + url.search,
        body: i.request.body ? (JSON.parse(i.request.body) as unknown) : undefined,
        status: i.response.status.code,
        response: i.response.body.string ? (JSON.parse(i.response.body.string) as unknown) : undefined,
      });
    }
  }
  return out;
}

function typeOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/** Fields of `recorded` that `actual` lacks or has with another JSON type, as `path: why`. */
export function shapeDifferences(recorded: unknown, actual: unknown, at = '$'): string[] {
  if (recorded === null || recorded === undefined) return [];
  if (typeOf(recorded) !== typeOf(actual))
    return [`${at}: Neon sends ${typeOf(recorded)}, the emulator ${actual === undefined ? 'nothing' : typeOf(actual)}`];
  if (Array.isArray(recorded)) {
    const a = actual as unknown[];
    return recorded.length > 0 && a.length > 0 ? shapeDifferences(recorded[0], a[0], `${at}[0]`) : [];
  }
  if (typeof recorded === 'object') {
    const a = actual as Record<string, unknown>;
    return Object.entries(recorded as Record<string, unknown>).flatMap(([k, v]) => {
      // Maps keyed by ids (annotations by branch id) cannot be compared key by key; pending_state
      // is there only while a transition runs (the recordings caught some mid-way).
      if (/^(br|ep)-/.test(k) || k === 'pending_state') return [];
      return shapeDifferences(v, a[k], `${at}.${k}`);
    });
  }
  return [];
}

describeWithStack('emulator contract: recorded Neon traffic replayed', STACK, () => {
  let project: TestProject;
  const ids = new Map<string, string>();
  const interactions = recordedInteractions();

  const api = async (method: string, route: string): Promise<{ status: number; json: unknown }> => {
    const res = await fetch(`${project.apiHost}${route}`, { method, headers: { authorization: `Bearer ${project.apiKey}` } });
    const text = await res.text();
    return { status: res.status, json: text === '' ? undefined : (JSON.parse(text) as unknown) };
  };

  beforeAll(async () => {
    project = await createTestProject('emulator-contract.test.ts');
    // One branch with an endpoint, so operations exist; then the recorded ids map onto ours.
    const created = await fetch(`${project.apiHost}/projects/${project.projectId}/branches`, {
      method: 'POST',
      headers: { authorization: `Bearer ${project.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ branch: { name: 'contract' }, endpoints: [{ type: 'read_write' }] }),
    });
    const body = (await created.json()) as {
      branch: { id: string };
      endpoints: { id: string }[];
      operations: { id: string; status: string; endpoint_id?: string }[];
    };
    expect(created.status).toBe(201);
    // As on Neon, a create answers at once, its operations not yet finished.
    expect(body.operations.map((o) => o.status).every((s) => s === 'scheduling' || s === 'running')).toBe(true);
    const main = (
      (await api('GET', `/projects/${project.projectId}/branches`)).json as { branches: { id: string; default: boolean }[] }
    ).branches.find((b) => b.default);
    for (const i of interactions) {
      for (const m of i.path.matchAll(/\/projects\/([^/?]+)/g)) ids.set(m[1], project.projectId);
      for (const m of i.path.matchAll(/\b(br-[a-z0-9-]+)/g)) ids.set(m[1], main?.id ?? body.branch.id);
      // The recorded operation is a start_compute (it names an endpoint): so is ours.
      for (const m of i.path.matchAll(/\/operations\/([0-9a-f-]{36})/g))
        ids.set(m[1], (body.operations.find((o) => o.endpoint_id) ?? body.operations[0]).id);
    }
  }, 120_000);

  afterAll(async () => {
    await project?.dispose();
  });

  test('the recordings hold requests the emulator serves', () => {
    expect(interactions.length).toBeGreaterThanOrEqual(10);
  });

  test('every served recorded request: same status, every recorded field present with the same JSON type', async () => {
    const problems: string[] = [];
    for (const i of interactions) {
      let route = i.path;
      for (const [from, to] of ids) route = route.split(from).join(to);
      const answer = await api(i.method, route);
      if (answer.status !== i.status) problems.push(`${i.file} ${i.method} ${i.path}: status ${answer.status}, Neon answered ${i.status}`);
      else for (const d of shapeDifferences(i.response, answer.json)) problems.push(`${i.file} ${i.method} ${i.path}: ${d}`);
    }
    expect([...new Set(problems)]).toEqual([]);
  });

  test("lists carry pagination.next even when everything fits on one page, as Neon's do", async () => {
    const listed = (await api('GET', `/projects/${project.projectId}/branches`)).json as { pagination?: { next?: string } };
    expect(typeof listed.pagination?.next).toBe('string');
  });
});
