/**
 * The Neon management API as this product needs it: branches, their endpoints and annotations,
 * over the official `@neon/sdk` client.
 *
 * Every call goes through one failure policy (neon-call.ts: timeouts, retries, Retry-After, the
 * error and its fix). After an ambiguous POST (the branch may or may not exist) the branch is looked
 * up by its exact name before anything is created again, so a branch is never created twice.
 * The SDK's raw layer is used because the ergonomic `branches.create` cannot send annotations and
 * `branches.list` drops the response's annotation map; the raw layer does no retries of its own,
 * so that policy is the only one in force.
 *
 * Mutations return operations; a branch or endpoint is used only after they have all finished.
 */
import {
  createNeonClient,
  raw,
  type NeonClient,
  type Branch,
  type ConnectionDetails,
  type ConnectionParameters,
  type Endpoint,
  type Operation,
} from '@neon/sdk';
import type { Config } from './config.js';
import type { Logger } from './io.js';
import { directHostOf, endpointIdOf } from './connection-string.js';
import { AmbiguousPostError, backoffMs, CallPolicy, NeonCallError, sleep } from './neon-call.js';

/** Annotation key marking what this product made; its value is the branch's kind (below). */
export const TOOL_ANNOTATION = 'supaneon-sync';
/** The kind of a backup branch (a frozen snapshot of the standby). */
export const BACKUP_KIND = 'backup';
/**
 * The kind of a temporary branch, the expiring child through which restore and recover read a
 * backup. Stored as `restore-test`, its name from when only restore made one: branches in users'
 * Neon projects carry that value, and retention, the post step and the expiry sweep find them by
 * it, so the stored value never changes.
 */
export const TEMPORARY_KIND = 'restore-test';
export type ToolBranchKind = typeof BACKUP_KIND | typeof TEMPORARY_KIND;

export interface BranchInfo {
  id: string;
  name: string;
  parentId?: string;
  createdAt: string;
  expiresAt?: string;
  isDefault: boolean;
  /** Protected in Neon: it cannot be deleted, still counts toward the branch limit, and its children get new role passwords. */
  protected?: boolean;
  annotations: Record<string, string>;
}

/** What a temporary branch is reached with: its endpoint, and the role's password on that branch. */
export interface CreatedTemporaryBranch {
  branch: BranchInfo;
  host: string;
  endpointId: string;
  /** The password of `role` on this branch, as Neon handed it out (never the standby URL's). */
  password: string;
}

export interface NeonApiOptions {
  apiKey: string;
  projectId: string;
  baseUrl: string;
  log: Logger;
  /** One HTTP request (default 30 s); a request that hangs longer is treated as a timeout. */
  requestTimeoutMs?: number;
  /** How long one call keeps retrying 423/429/5xx before giving up (default 3 min). */
  retryDeadlineMs?: number;
  /** How long to wait for a mutation's operations to finish (default 10 min). */
  operationTimeoutMs?: number;
}

/**
 * The client every mode uses: the configured project, key and API host, and the timeouts from the
 * configuration unless the caller needs its own (validate answers quickly rather than retrying).
 */
export function neonApiFor(
  config: Pick<Config, 'neonApiKey' | 'neonProjectId' | 'neonApiHost' | 'neonTimeouts'>,
  log: Logger,
  overrides: Pick<NeonApiOptions, 'requestTimeoutMs' | 'retryDeadlineMs'> = {},
): NeonApi {
  return new NeonApi({
    apiKey: config.neonApiKey,
    projectId: config.neonProjectId,
    baseUrl: config.neonApiHost,
    log,
    ...config.neonTimeouts,
    ...overrides,
  });
}

const OPERATION_SUCCESS = new Set(['finished', 'skipped']);
const OPERATION_FAILURE = new Set(['failed', 'error', 'cancelled']);

export class NeonApi {
  private readonly neon: NeonClient;
  private readonly projectId: string;
  private readonly log: Logger;
  private readonly calls: CallPolicy;
  private readonly operationTimeoutMs: number;

  constructor(opts: NeonApiOptions) {
    this.projectId = opts.projectId;
    this.log = opts.log;
    this.calls = new CallPolicy({
      projectId: opts.projectId,
      log: opts.log,
      requestTimeoutMs: opts.requestTimeoutMs ?? 30_000,
      retryDeadlineMs: opts.retryDeadlineMs ?? 180_000,
    });
    this.operationTimeoutMs = opts.operationTimeoutMs ?? 600_000;
    // retries: 0 because every call below goes through `calls`, which owns the retry policy.
    this.neon = createNeonClient({ apiKey: opts.apiKey, baseUrl: opts.baseUrl.replace(/\/+$/, ''), retries: 0 });
  }

  async getProject(): Promise<{ id: string; name: string; branchLimit?: number }> {
    const data = await this.calls.call({ what: `get project "${this.projectId}"`, method: 'GET', projectScoped: true }, (signal) =>
      raw.getProject({ client: this.neon.client, path: { project_id: this.projectId }, throwOnError: false, signal }),
    );
    const project = data.project;
    // Neon reports the plan's branch allowance on the owner; absent (e.g. org-owned projects
    // seen through a project-scoped key) means callers fall back to the free plan's 10.
    const limit = project.owner?.branches_limit;
    return { id: project.id, name: project.name, branchLimit: typeof limit === 'number' && limit > 0 ? limit : undefined };
  }

  async listBranches(): Promise<BranchInfo[]> {
    return this.listBranchesMatching(undefined);
  }

  /** Branches whose name is exactly `name` (the API's `search` is a partial match on name or id). */
  async findBranchesByName(name: string): Promise<BranchInfo[]> {
    return (await this.listBranchesMatching(name)).filter((b) => b.name === name);
  }

  /** A branch by exact id or exact name (an id wins); undefined if neither matches. */
  async findBranch(nameOrId: string): Promise<BranchInfo | undefined> {
    const candidates = await this.listBranchesMatching(nameOrId);
    return candidates.find((b) => b.id === nameOrId) ?? candidates.find((b) => b.name === nameOrId);
  }

  /**
   * The branch whose endpoint a connection string reaches (the standby). Matched on the endpoint
   * id (`options=endpoint=…`, else the host's first label without `-pooler`), so legacy, alias and
   * pooler hosts of the same endpoint all find it; only a URL that names no endpoint id (an IP
   * address or a custom name as host, no `options=endpoint`) is matched on the whole direct host.
   */
  async findBranchByEndpoint(connectionString: string): Promise<BranchInfo | undefined> {
    const url = new URL(connectionString);
    const wantedId = endpointIdOf(url);
    const wantedHost = directHostOf(url.hostname);
    const data = await this.calls.call({ what: 'list endpoints', method: 'GET', projectScoped: true }, (signal) =>
      raw.listProjectEndpoints({ client: this.neon.client, path: { project_id: this.projectId }, throwOnError: false, signal }),
    );
    // An endpoint id, once named, decides alone: Neon's proxy routes by it, so a host that
    // happens to match another endpoint must not pick that one.
    const endpoint =
      wantedId !== undefined
        ? data.endpoints.find((e: Endpoint) => e.id.toLowerCase() === wantedId)
        : data.endpoints.find((e: Endpoint) => directHostOf(e.host) === wantedHost);
    if (!endpoint) return undefined;
    return (await this.listBranches()).find((b) => b.id === endpoint.branch_id);
  }

  /** A storage-only child of `parentId` (no compute endpoint), annotated as a backup. */
  async createBackupBranch(a: { name: string; parentId: string; runId: string }): Promise<BranchInfo> {
    const annotations = { [TOOL_ANNOTATION]: BACKUP_KIND, 'run-id': a.runId, 'standby-branch-id': a.parentId };
    const { branch } = await this.createBranch({ name: a.name, parentId: a.parentId, annotations, withEndpoint: false });
    return branch;
  }

  /**
   * A short-lived child of a backup branch with a read-write endpoint, and an expiry as a safety
   * net should every cleanup fail. Returns once the endpoint is usable, with the password of
   * `role` on the new branch: from the create response's `connection_uris` when it carries one for
   * this role and database, else revealed through the API. A branch made from a protected branch
   * gets new passwords, and a password reset on the standby never reaches older backups, so the
   * standby URL's password cannot be assumed to work there.
   */
  async createTemporaryBranch(a: {
    name: string;
    parentId: string;
    expiresAt: string;
    role: string;
    database: string;
  }): Promise<CreatedTemporaryBranch> {
    const annotations = { [TOOL_ANNOTATION]: TEMPORARY_KIND, 'backup-branch-id': a.parentId };
    const created = await this.createBranch({
      name: a.name,
      parentId: a.parentId,
      expiresAt: a.expiresAt,
      annotations,
      withEndpoint: true,
    });
    const endpoint = created.endpoint ?? (await this.readWriteEndpointOf(created.branch.id));
    const given = created.connectionParameters?.find((c) => c.role === a.role && c.database === a.database)?.password;
    const password = given ?? (await this.rolePassword(created.branch.id, a.role));
    return { branch: created.branch, host: endpoint.host, endpointId: endpoint.id, password };
  }

  /**
   * The password of `role` on a branch (`GET …/roles/{role}/reveal_password`). Neon keeps it only
   * for roles it created or reset itself; a role made in SQL has none to reveal.
   */
  async rolePassword(branchId: string, role: string): Promise<string> {
    const what = `reveal the password of role "${role}" on branch ${branchId}`;
    try {
      const data = await this.calls.call({ what, method: 'GET' }, (signal) =>
        raw.getProjectBranchRolePassword({
          client: this.neon.client,
          path: { project_id: this.projectId, branch_id: branchId, role_name: role },
          throwOnError: false,
          signal,
        }),
      );
      if (typeof data.password !== 'string' || data.password === '') throw new Error('the answer holds no password');
      return data.password;
    } catch (e) {
      if (
        e instanceof NeonCallError &&
        e.status !== undefined &&
        e.status >= 400 &&
        e.status < 500 &&
        e.status !== 401 &&
        e.status !== 403
      ) {
        throw new NeonCallError(
          `${e.message.split(' Fix: ')[0]} ` +
            `Fix: the role of neon-database-url must be one Neon manages (created or reset in the Neon console or API), ` +
            "so that a new branch's password can be read; reset its password in the console once, or use such a role.",
          e.status,
        );
      }
      if (e instanceof NeonCallError) throw e;
      throw new NeonCallError(`Neon API: ${what} in project "${this.projectId}" failed: ${(e as Error).message}.`);
    }
  }

  /** Moves a branch's expiry (`PATCH` `branch.expires_at`), so long work does not lose its branch. */
  async setBranchExpiry(branchId: string, expiresAt: string): Promise<void> {
    const what = `extend the expiry of branch ${branchId} to ${expiresAt}`;
    const data = await this.calls.call({ what, method: 'PATCH' }, (signal) =>
      raw.updateProjectBranch({
        client: this.neon.client,
        path: { project_id: this.projectId, branch_id: branchId },
        body: { branch: { expires_at: expiresAt } },
        throwOnError: false,
        signal,
      }),
    );
    await this.waitForOperations(data.operations ?? [], what);
  }

  /** Deletes a branch and waits for the deletion to finish; a branch already gone is done. */
  async deleteBranch(id: string): Promise<void> {
    const data = await this.calls.call({ what: `delete branch ${id}`, method: 'DELETE', notFoundIsDone: true }, (signal) =>
      raw.deleteProjectBranch({
        client: this.neon.client,
        path: { project_id: this.projectId, branch_id: id },
        throwOnError: false,
        signal,
      }),
    );
    // 204 (no body) and 404 mean nothing is left to wait for.
    const operations = (data as { operations?: Operation[] } | undefined)?.operations ?? [];
    await this.waitForOperations(operations, `delete branch ${id}`);
  }

  /** This product's branches of one kind, newest first. */
  async toolBranches(kind: ToolBranchKind): Promise<BranchInfo[]> {
    return (await this.listBranches()).filter((b) => b.annotations[TOOL_ANNOTATION] === kind).sort(newestFirst);
  }

  // --- internals -------------------------------------------------------------------------------

  private async listBranchesMatching(search: string | undefined): Promise<BranchInfo[]> {
    const out: BranchInfo[] = [];
    const seenCursors = new Set<string>();
    let cursor: string | undefined;
    for (;;) {
      const query: { search?: string; cursor?: string } = {};
      if (search !== undefined) query.search = search;
      if (cursor !== undefined) query.cursor = cursor;
      const data = await this.calls.call({ what: 'list branches', method: 'GET', projectScoped: true }, (signal) =>
        raw.listProjectBranches({ client: this.neon.client, path: { project_id: this.projectId }, query, throwOnError: false, signal }),
      );
      const annotations = data.annotations ?? {};
      for (const b of data.branches) out.push(toBranchInfo(b, annotations[b.id]?.value ?? {}));
      const next = data.pagination?.next;
      // Stop on an empty page or a cursor seen before, so a server that always hands back a
      // cursor cannot keep this loop going.
      if (!next || data.branches.length === 0 || seenCursors.has(next)) break;
      seenCursors.add(next);
      cursor = next;
    }
    const unique = new Map(out.map((b) => [b.id, b]));
    return [...unique.values()];
  }

  private async createBranch(a: {
    name: string;
    parentId: string;
    expiresAt?: string;
    annotations: Record<string, string>;
    withEndpoint: boolean;
  }): Promise<{ branch: BranchInfo; endpoint?: { id: string; host: string }; connectionParameters?: ConnectionParameters[] }> {
    const what = `create branch "${a.name}" from ${a.parentId}`;
    const body = {
      branch: { name: a.name, parent_id: a.parentId, ...(a.expiresAt ? { expires_at: a.expiresAt } : {}) },
      ...(a.withEndpoint
        ? {
            // Only the type: Free and Launch refuse a create that sets scale-to-zero ("suspend
            // interval changing is not allowed for your account") and limit compute sizes, so the
            // project's own defaults apply, which every plan accepts. The branch is deleted as soon
            // as the work is done, and its compute then stops.
            endpoints: [{ type: 'read_write' as const }],
          }
        : {}),
      annotation_value: a.annotations,
    };

    const started = Date.now();
    for (let n = 1; ; n++) {
      try {
        const result = await this.calls.call({ what, method: 'POST' }, (signal) =>
          raw.createProjectBranch({ client: this.neon.client, path: { project_id: this.projectId }, body, throwOnError: false, signal }),
        );
        await this.waitForOperations(result.operations ?? [], what);
        const rw = result.endpoints?.find((e: Endpoint) => e.type === 'read_write');
        const connectionParameters = (result.connection_uris ?? []).map((c: ConnectionDetails) => c.connection_parameters).filter(Boolean);
        return {
          branch: toBranchInfo(result.branch, a.annotations),
          ...(rw ? { endpoint: { id: rw.id, host: rw.host } } : {}),
          connectionParameters,
        };
      } catch (e) {
        // A create that was only slow may finish after it was given up on: its retry then meets
        // the name taken (409). That branch is ours if its annotations say so.
        if (e instanceof NeonCallError && e.status === 409 && n > 1) {
          const existing = await this.adoptCreatedBranch(a.name, a.parentId, a.annotations, what);
          if (existing) return { branch: existing };
        }
        if (!(e instanceof AmbiguousPostError)) throw e;
        await this.calls.pause(
          { what, method: 'POST' },
          e.failure,
          n,
          started,
          backoffMs(n, undefined),
          'checking whether the branch was created before trying again',
        );
        const existing = await this.adoptCreatedBranch(a.name, a.parentId, a.annotations, what);
        if (existing) return { branch: existing };
      }
    }
  }

  /** After an ambiguous create: the branch if it exists (made by this call), else undefined. */
  private async adoptCreatedBranch(
    name: string,
    parentId: string,
    annotations: Record<string, string>,
    what: string,
  ): Promise<BranchInfo | undefined> {
    const existing = (await this.findBranchesByName(name)).find((b) => b.parentId === parentId);
    if (!existing) return undefined;
    if (Object.entries(annotations).some(([k, v]) => existing.annotations[k] !== v)) {
      throw new NeonCallError(
        `Neon API: ${what}: a branch with this name and parent already exists (${existing.id}) but was not made by this run. ` +
          'Fix: delete or rename that branch, or choose another branch prefix.',
      );
    }
    this.log.info(`Neon API: branch "${name}" (${existing.id}) was created despite the error; using it.`);
    await this.waitForOperations(await this.pendingOperationsOf(existing.id), what);
    return existing;
  }

  private async readWriteEndpointOf(branchId: string): Promise<{ id: string; host: string }> {
    const data = await this.calls.call({ what: `list endpoints of branch ${branchId}`, method: 'GET' }, (signal) =>
      raw.listProjectBranchEndpoints({
        client: this.neon.client,
        path: { project_id: this.projectId, branch_id: branchId },
        throwOnError: false,
        signal,
      }),
    );
    const endpoint = data.endpoints.find((e: Endpoint) => e.type === 'read_write');
    if (!endpoint) throw new NeonCallError(`Neon API: branch ${branchId} has no read-write endpoint.`);
    return { id: endpoint.id, host: endpoint.host };
  }

  /** Unfinished operations of one branch (used when a create response was lost). */
  private async pendingOperationsOf(branchId: string): Promise<Operation[]> {
    const data = await this.calls.call({ what: 'list operations', method: 'GET', projectScoped: true }, (signal) =>
      raw.listProjectOperations({ client: this.neon.client, path: { project_id: this.projectId }, throwOnError: false, signal }),
    );
    return data.operations.filter((op: Operation) => op.branch_id === branchId && !OPERATION_SUCCESS.has(op.status));
  }

  /**
   * Polls each operation until it finishes. Our own loop rather than the SDK's `waitFor`, because
   * a poll that meets a 423/5xx must be retried, not end the wait.
   */
  private async waitForOperations(operations: readonly Operation[], what: string): Promise<void> {
    const deadline = Date.now() + this.operationTimeoutMs;
    let pending = operations.filter((op) => !OPERATION_SUCCESS.has(op.status));
    let interval = 200;
    while (pending.length > 0) {
      for (const op of pending) {
        if (OPERATION_FAILURE.has(op.status)) {
          throw new NeonCallError(
            `Neon API: ${what}: operation ${op.id} (${op.action}) ended "${op.status}"${op.error ? `: ${op.error}` : ''}. ` +
              'Fix: check the project in the Neon console; the run can be retried.',
          );
        }
      }
      if (Date.now() > deadline) {
        throw new NeonCallError(
          `Neon API: ${what}: ${pending.length} operation(s) still running after ${Math.round(this.operationTimeoutMs / 1000)} s ` +
            `(${pending.map((op) => `${op.id} ${op.action} ${op.status}`).join(', ')}). Fix: check the project in the Neon console and retry.`,
        );
      }
      await sleep(interval);
      interval = Math.min(2000, interval * 1.5);
      const polled: Operation[] = [];
      for (const op of pending) {
        const data = await this.calls.call({ what: `get operation ${op.id}`, method: 'GET' }, (signal) =>
          raw.getProjectOperation({
            client: this.neon.client,
            path: { project_id: this.projectId, operation_id: op.id },
            throwOnError: false,
            signal,
          }),
        );
        polled.push(data.operation);
      }
      pending = polled.filter((op) => !OPERATION_SUCCESS.has(op.status));
    }
  }
}

/**
 * The standby: the branch whose endpoint neon-database-url reaches (see findBranchByEndpoint);
 * undefined when it reaches no branch of the project (standbyNotFound says so).
 */
export function findStandby(
  neon: Pick<NeonApi, 'findBranchByEndpoint'>,
  config: Pick<Config, 'neonDatabaseUrl'>,
): Promise<BranchInfo | undefined> {
  return neon.findBranchByEndpoint(config.neonDatabaseUrl);
}

/**
 * The one line for a standby URL that reaches no branch of the project: names the input, the
 * endpoint it was read as, and the fix.
 */
export function standbyNotFound(config: { neonDatabaseUrl: string; neonProjectId: string }): string {
  let where = '(unparseable URL)';
  try {
    const u = new URL(config.neonDatabaseUrl);
    const id = endpointIdOf(u);
    where = id ? `endpoint ${id} (host ${u.hostname})` : `host ${u.hostname}`;
  } catch {
    // the configuration check names a malformed URL on its own
  }
  return (
    `neon-database-url reaches ${where}, which is in no branch of Neon project "${config.neonProjectId}"; ` +
    "copy the connection string from that project's dashboard (Connect), or set neon-project-id to the project that holds this endpoint"
  );
}

/** `ep-cool-1234-pooler.eu.aws.neon.tech` → `ep-cool-1234.eu.aws.neon.tech`, lower-cased. */
export const normaliseEndpointHost = directHostOf;

function toBranchInfo(b: Branch, annotations: Record<string, string>): BranchInfo {
  return {
    id: b.id,
    name: b.name,
    ...(b.parent_id ? { parentId: b.parent_id } : {}),
    createdAt: b.created_at,
    ...(b.expires_at ? { expiresAt: b.expires_at } : {}),
    isDefault: b.default === true,
    ...(b.protected === true ? { protected: true } : {}),
    annotations: { ...annotations },
  };
}

export function newestFirst(a: BranchInfo, b: BranchInfo): number {
  const byTime = Date.parse(b.createdAt) - Date.parse(a.createdAt);
  return byTime !== 0 ? byTime : b.name.localeCompare(a.name);
}
