// The emulated Neon project: its branches and the rules Neon enforces on them (isolation by copy,
// the branch limit, no deleting a parent or the default branch, expires_at, 423 while an operation
// runs). HTTP lives in server.ts; this module speaks in Neon's JSON shapes, typed by the official
// client's types so the emulator cannot drift from Neon's spec.
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type {
  AnnotationData,
  Branch,
  BranchOperations,
  CreateProjectBranchData,
  CreateProjectBranchResponse,
  Database,
  Endpoint,
  GetConnectionUriResponse,
  GetProjectBranchResponse,
  ListProjectBranchesResponse,
  OperationAction,
  Project as NeonProject,
  Role,
  UpdateProjectBranchData,
} from '@neon/sdk';
import type { EmulatorConfig } from './config.js';
import { Clusters, LAST_HOST_NUMBER } from './clusters.js';
import { Entries } from './entry.js';
import { Operations } from './operations.js';
import { checkCanProtect, checkEndpointSettings, subscriptionTypeOf, type PlanName } from './plan.js';
import crypto from 'node:crypto';
import { neonId, StateStore, timestamp, type BranchRecord, type EmulatorState, type OperationRecord } from './state.js';

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

export type Log = (message: string) => void;

const DEFAULT_HOST_NUMBER = 2;
const MAX_EXPIRY_MS = 30 * 24 * 3600 * 1000;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;
const REGION = 'aws-local-1';

type CreateBody = NonNullable<CreateProjectBranchData['body']>;
type UpdateBody = UpdateProjectBranchData['body'];

const createBodySchema: z.ZodType<CreateBody> = z.object({
  branch: z.object({
    parent_id: z.string().optional(),
    name: z.string().min(1).max(256).optional(),
    parent_lsn: z.string().optional(),
    parent_timestamp: z.string().optional(),
    protected: z.boolean().optional(),
    archived: z.boolean().optional(),
    init_source: z.string().optional(),
    expires_at: z.string().optional(),
  }).optional(),
  endpoints: z.array(z.object({
    type: z.enum(['read_write', 'read_only']),
    autoscaling_limit_min_cu: z.number().optional(),
    autoscaling_limit_max_cu: z.number().optional(),
    suspend_timeout_seconds: z.number().optional(),
  })).optional(),
  annotation_value: z.record(z.string(), z.string()).optional(),
});

const updateBodySchema: z.ZodType<UpdateBody> = z.object({
  branch: z.object({
    name: z.string().min(1).max(256).optional(),
    protected: z.boolean().optional(),
    expires_at: z.string().nullable().optional(),
  }),
});

export class Project {
  readonly #config: EmulatorConfig;
  readonly #clusters: Clusters;
  readonly #store: StateStore;
  readonly #state: EmulatorState;
  readonly #ops: Operations;
  readonly #log: Log;
  /** The endpoints' connection entries (Neon's proxy): 127.0.0.N in front of each running cluster. */
  readonly #entries: Entries;
  /** Cluster work (copy, start, stop, remove) runs one job at a time, in arrival order. */
  #work: Promise<unknown> = Promise.resolve();
  /** Ids of branches deleted since start: a repeated DELETE of one answers 204, as Neon does. */
  readonly #deleted = new Set<string>();

  private constructor(config: EmulatorConfig, clusters: Clusters, store: StateStore, state: EmulatorState, log: Log) {
    this.#config = config;
    this.#clusters = clusters;
    this.#store = store;
    this.#state = state;
    this.#ops = new Operations(state, config.projectId, config.operationDelayMs);
    this.#log = log;
    this.#entries = new Entries(config, (n) => this.#state.branches.find((b) => b.endpoint?.hostNumber === n)?.endpoint?.id, log);
  }

  async #openEntries(): Promise<void> {
    for (const b of this.#state.branches) if (b.endpoint) await this.#entries.open(b.endpoint.hostNumber);
  }

  /** First start: a fresh default branch cluster. Warm start: the saved branches, clusters started. */
  static async open(config: EmulatorConfig, clusters: Clusters, log: Log): Promise<Project> {
    await clusters.prepareDirectories();
    const store = new StateStore(config.stateDir);
    const saved = store.load();
    if (saved === undefined) {
      // Leftovers of a first start that never completed: nothing refers to them.
      await clusters.stopEverything();
      await fs.rm(path.join(config.stateDir, 'clusters'), { recursive: true, force: true });
      await clusters.prepareDirectories();
      const now = timestamp();
      const main: BranchRecord = {
        id: neonId('br'), name: 'main', createdAt: now, updatedAt: now, isDefault: true, protected: false,
        logicalSize: 0, creationOperationIds: [],
        endpoint: { id: neonId('ep'), hostNumber: DEFAULT_HOST_NUMBER, createdAt: now, minCu: 0.25, maxCu: 2, suspendTimeoutSeconds: 0 },
      };
      log(`first start: creating the default branch ${main.id} (initdb)`);
      await clusters.initDefault(main.id, DEFAULT_HOST_NUMBER);
      main.logicalSize = await clusters.logicalSize(main.id);
      const state: EmulatorState = { version: 1, projectCreatedAt: now, branches: [main], operations: [] };
      store.save(state);
      const fresh = new Project(config, clusters, store, state, log);
      await fresh.#openEntries();
      return fresh;
    }
    const project = new Project(config, clusters, store, saved, log);
    await project.#recoverInterruptedWork();
    const orphans = await clusters.removeAllExcept(saved.branches.map((b) => b.id));
    if (orphans.length > 0) log(`removed data directories no branch refers to: ${orphans.join(', ')}`);
    const running = saved.branches.filter((b) => b.endpoint !== undefined);
    log(`warm start: starting ${running.length} cluster(s) of ${saved.branches.length} branch(es)`);
    await Promise.all(running.map((b) => clusters.start(b.id, b.endpoint!.hostNumber, b.rolePassword ?? config.rolePassword)));
    await project.#openEntries();
    return project;
  }

  get defaultBranch(): BranchRecord {
    const main = this.#state.branches.find((b) => b.isDefault);
    if (main === undefined) throw new Error('neon emulator: the state has no default branch');
    return main;
  }

  health(): { defaultBranchId: string; defaultHost: string } {
    return { defaultBranchId: this.defaultBranch.id, defaultHost: hostOf(this.defaultBranch.endpoint!.hostNumber) };
  }

  checkProject(projectId: string): void {
    if (projectId !== this.#config.projectId) {
      throw new ApiError(404, 'NOT_FOUND', `project ${projectId} not found`);
    }
  }

  projectJson(): { project: NeonProject } {
    const created = this.#state.projectCreatedAt;
    return {
      project: {
        id: this.#config.projectId, name: 'supaneon-local', platform_id: 'aws', region_id: REGION,
        provisioner: 'k8s-neonvm', pg_version: 15, proxy_host: '127.0.0.1', store_passwords: true,
        branch_logical_size_limit: 512, branch_logical_size_limit_bytes: 512 * 1024 * 1024,
        creation_source: 'console', history_retention_seconds: 21600, created_at: created, updated_at: created,
        consumption_period_start: created, consumption_period_end: timestamp(Date.parse(created) + MAX_EXPIRY_MS),
        owner_id: 'org-local', data_storage_bytes_hour: 0, data_transfer_bytes: 0, written_data_bytes: 0,
        compute_time_seconds: 0, active_time_seconds: 0, cpu_used_sec: 0,
        default_endpoint_settings: { autoscaling_limit_min_cu: 0.25, autoscaling_limit_max_cu: 0.25, suspend_timeout_seconds: 0 },
        settings: { allowed_ips: { ips: [], protected_branches_only: false }, enable_logical_replication: false, block_public_connections: false, block_vpc_connections: false },
        synthetic_storage_size: 0,
        owner: { email: 'owner@localhost', name: 'local', branches_limit: this.#config.branchLimit, subscription_type: subscriptionTypeOf(this.plan) },
      } satisfies NeonProject,
    };
  }

  /** The project's plan: what it refuses (plan.ts). */
  get plan(): PlanName {
    return this.#state.plan ?? this.#config.plan;
  }

  setPlan(plan: PlanName): void {
    this.#state.plan = plan;
    this.#save();
  }

  /** Whether this id is of a branch deleted earlier (Neon answers a repeated DELETE 204). */
  wasDeleted(branchId: string): boolean {
    return this.#deleted.has(branchId);
  }

  /** The role's password on a branch (store_passwords is on: Neon can reveal it). */
  passwordOf(b: BranchRecord): string {
    return b.rolePassword ?? this.#config.rolePassword;
  }

  revealRolePassword(branchId: string, roleName: string): { password: string } {
    const b = this.branch(branchId);
    this.#checkRole(b, roleName);
    return { password: this.passwordOf(b) };
  }

  /**
   * Neon's reset_password: a new random password for the role on this branch only. Branches made
   * from it earlier keep the old one (their data was copied before); later children inherit it.
   */
  async resetRolePassword(branchId: string, roleName: string): Promise<{ role: Role & { password: string }; operations: ReturnType<Operations['toApi']>[] }> {
    const b = this.branch(branchId);
    this.#checkRole(b, roleName);
    this.#checkNotLocked();
    const ops = this.#ops.begin(b.endpoint ? [{ action: 'apply_config', branchId: b.id, endpointId: b.endpoint.id }] : [{ action: 'apply_config', branchId: b.id }]);
    b.rolePassword = freshPassword();
    b.updatedAt = timestamp();
    this.#save();
    const endpoint = b.endpoint;
    if (endpoint) await this.#serial(() => this.#clusters.setRolePassword(endpoint.hostNumber, this.passwordOf(b)));
    this.#ops.complete(ops);
    this.#save();
    this.#log(`reset the password of role ${roleName} on branch ${b.id}`);
    const [role] = this.rolesOf(b.id);
    return { role: { ...role, password: this.passwordOf(b) }, operations: ops.map((op) => this.#ops.toApi(op)) };
  }

  #checkRole(b: BranchRecord, roleName: string): void {
    if (roleName !== this.#config.role) throw new ApiError(404, 'NOT_FOUND', `role ${roleName} not found on branch ${b.id}`);
  }

  branch(branchId: string): BranchRecord {
    const found = this.#state.branches.find((b) => b.id === branchId);
    if (found === undefined) {
      throw new ApiError(404, 'NOT_FOUND', `branch ${branchId} not found in project ${this.#config.projectId}`);
    }
    return found;
  }

  listBranches(query: URLSearchParams): ListProjectBranchesResponse {
    const search = (query.get('search') ?? '').toLowerCase();
    const sortBy = query.get('sort_by') ?? 'updated_at';
    const order = query.get('sort_order') === 'asc' ? 1 : -1;
    if (!['name', 'created_at', 'updated_at'].includes(sortBy)) {
      throw new ApiError(400, 'BAD_REQUEST', `sort_by must be name, created_at or updated_at (got ${sortBy})`);
    }
    const key = (b: BranchRecord) => (sortBy === 'name' ? b.name : sortBy === 'created_at' ? b.createdAt : b.updatedAt);
    const matching = this.#state.branches
      .filter((b) => search === '' || b.name.toLowerCase().includes(search) || b.id.toLowerCase().includes(search))
      .sort((a, b) => order * (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : a.id < b.id ? -1 : 1));
    // The cursor is opaque (base64 JSON, like Neon's); it holds an offset into the sorted list.
    const offset = decodeCursor(query.get('cursor'));
    const limit = query.has('limit') ? Math.max(1, Number(query.get('limit')) || 1) : matching.length;
    const page = matching.slice(offset, offset + limit);
    const annotations: Record<string, AnnotationData> = {};
    for (const b of page) if (b.annotation !== undefined) annotations[b.id] = this.#annotationJson(b);
    // Neon hands out a next cursor even when everything fits on this page; it then leads to an empty page.
    const next = encodeCursor(offset + page.length);
    return {
      branches: page.map((b) => this.branchJson(b)),
      annotations,
      pagination: { next, sort_by: sortBy, sort_order: order === 1 ? 'asc' : 'desc' },
    } satisfies ListProjectBranchesResponse;
  }

  getBranch(branchId: string): GetProjectBranchResponse {
    const b = this.branch(branchId);
    return { branch: this.branchJson(b), annotation: this.#annotationJson(b) } satisfies GetProjectBranchResponse;
  }

  endpointsOf(branchId: string): Endpoint[] {
    const b = this.branch(branchId);
    return b.endpoint === undefined ? [] : [this.endpointJson(b)];
  }

  allEndpoints(): Endpoint[] {
    return this.#state.branches.filter((b) => b.endpoint !== undefined).map((b) => this.endpointJson(b));
  }

  connectionUri(query: URLSearchParams): GetConnectionUriResponse {
    const databaseName = query.get('database_name');
    const roleName = query.get('role_name');
    if (!databaseName || !roleName) {
      throw new ApiError(400, 'BAD_REQUEST', 'database_name and role_name are required query parameters');
    }
    const b = query.get('branch_id') ? this.branch(query.get('branch_id')!) : this.defaultBranch;
    const endpointId = query.get('endpoint_id');
    if (b.endpoint === undefined || (endpointId && endpointId !== b.endpoint.id)) {
      throw new ApiError(404, 'NOT_FOUND', `branch ${b.id} has no ${endpointId ? `endpoint ${endpointId}` : 'read_write endpoint'}; create the branch with endpoints: [{type: "read_write"}]`);
    }
    if (roleName !== this.#config.role) throw new ApiError(404, 'NOT_FOUND', `role ${roleName} not found on branch ${b.id}`);
    if (databaseName !== this.#config.database) throw new ApiError(404, 'NOT_FOUND', `database ${databaseName} not found on branch ${b.id}`);
    // There is no pooler here: `pooled=true` gets the same direct host.
    return { uri: this.#uri(b.endpoint.hostNumber, this.passwordOf(b)) } satisfies GetConnectionUriResponse;
  }

  operation(operationId: string): OperationRecord {
    const op = this.#ops.find(operationId);
    if (op === undefined) throw new ApiError(404, 'NOT_FOUND', `operation ${operationId} not found in project ${this.#config.projectId}`);
    return op;
  }

  get operations(): Operations {
    return this.#ops;
  }

  /** Roles and databases are copied into every child, so every branch has the project's own. */
  rolesOf(branchId: string): Role[] {
    const b = this.branch(branchId);
    return [{ branch_id: b.id, name: this.#config.role, protected: false, created_at: b.createdAt, updated_at: b.createdAt }];
  }

  databasesOf(branchId: string): Database[] {
    const b = this.branch(branchId);
    return [{ id: 1, branch_id: b.id, name: this.#config.database, owner_name: this.#config.role, created_at: b.createdAt, updated_at: b.createdAt }];
  }

  async createBranch(rawBody: unknown): Promise<CreateProjectBranchResponse> {
    const body = parseBody(createBodySchema, rawBody ?? {});
    const fields = body.branch ?? {};
    const now = Date.now();
    if (fields.parent_lsn !== undefined || fields.parent_timestamp !== undefined) {
      throw new ApiError(400, 'BAD_REQUEST', 'parent_lsn and parent_timestamp are not supported by the emulator: branches copy the parent as of now');
    }
    if (fields.init_source !== undefined && fields.init_source !== 'parent-data') {
      throw new ApiError(400, 'BAD_REQUEST', `init_source ${fields.init_source} is not supported by the emulator (only parent-data)`);
    }
    const endpoints = body.endpoints ?? [];
    for (const e of endpoints) checkEndpointSettings(this.plan, e);
    if (fields.protected === true) checkCanProtect(this.plan);
    if (endpoints.length > 1 || endpoints.some((e) => e.type !== 'read_write')) {
      throw new ApiError(400, 'BAD_REQUEST', 'the emulator supports at most one endpoint per branch, of type read_write');
    }
    const parent = fields.parent_id ? this.branch(fields.parent_id) : this.defaultBranch;
    if (parent.expiresAt !== undefined) {
      throw new ApiError(400, 'BAD_REQUEST', `cannot create a branch from branch ${parent.id}: it has an expiration time (expires_at ${parent.expiresAt}); branch from a branch without expires_at`);
    }
    const expiresAt = fields.expires_at === undefined ? undefined : parseExpiry(fields.expires_at, now);
    const id = neonId('br');
    const name = fields.name ?? id;
    this.#checkNameFree(name);
    if (this.#state.branches.length >= this.#config.branchLimit) {
      throw new ApiError(422, 'BRANCHES_LIMIT_EXCEEDED', `branches limit exceeded: project ${this.#config.projectId} already has ${this.#state.branches.length} of ${this.#config.branchLimit} branches; delete a branch first`);
    }
    this.#checkNotLocked();

    const created = timestamp(now);
    const ep = endpoints[0];
    const record: BranchRecord = {
      id, name, parentId: parent.id, createdAt: created, updatedAt: created, expiresAt,
      ttlIntervalSeconds: expiresAt === undefined ? undefined : Math.round((Date.parse(expiresAt) - now) / 1000),
      isDefault: false, protected: fields.protected ?? false, logicalSize: parent.logicalSize,
      // A branch made from a protected branch gets new role passwords, as on Neon; otherwise the
      // copied data carries the parent's.
      rolePassword: parent.protected ? freshPassword() : parent.rolePassword,
      annotation: body.annotation_value === undefined ? undefined : { value: body.annotation_value, createdAt: created, updatedAt: created },
      endpoint: ep === undefined ? undefined : {
        id: neonId('ep'), hostNumber: this.#freeHostNumber(), createdAt: created,
        minCu: ep.autoscaling_limit_min_cu ?? 0.25, maxCu: ep.autoscaling_limit_max_cu ?? 2,
        suspendTimeoutSeconds: ep.suspend_timeout_seconds ?? 0,
      },
      creationOperationIds: [],
    };
    const specs: Array<{ action: OperationAction; branchId?: string; endpointId?: string }> = [{ action: 'create_branch', branchId: id }];
    if (record.endpoint) specs.push({ action: 'start_compute', branchId: id, endpointId: record.endpoint.id });
    const ops = this.#ops.begin(specs);
    record.creationOperationIds = ops.map((op) => op.id);
    this.#state.branches.push(record);
    this.#save();

    try {
      await this.#serial(async () => {
        await this.#clusters.copy({ branchId: parent.id, hostNumber: parent.endpoint?.hostNumber }, id);
        if (record.endpoint) {
          await this.#clusters.start(id, record.endpoint.hostNumber, this.passwordOf(record));
          await this.#entries.open(record.endpoint.hostNumber);
        }
        record.logicalSize = await this.#clusters.logicalSize(id);
      });
    } catch (error) {
      const message = `creating branch ${name} (${id}) from ${parent.id} failed: ${(error as Error).message}`;
      this.#ops.fail(ops, message);
      this.#state.branches = this.#state.branches.filter((b) => b.id !== id);
      this.#save();
      if (record.endpoint) await this.#entries.close(record.endpoint.hostNumber).catch(() => undefined);
      await this.#serial(() => this.#clusters.remove(id)).catch(() => undefined);
      throw new ApiError(500, 'INTERNAL_ERROR', message);
    }
    this.#ops.complete(ops);
    this.#save();
    this.#log(`created branch ${name} (${id}) from ${parent.id}${record.endpoint ? ` at ${hostOf(record.endpoint.hostNumber)}` : ' (storage only)'}`);

    return {
      branch: this.branchJson(record),
      endpoints: record.endpoint ? [this.endpointJson(record)] : [],
      operations: ops.map((op) => this.#ops.toApi(op)),
      // Neon returns the role's password on creation.
      roles: this.rolesOf(id).map((role) => ({ ...role, password: this.passwordOf(record) })),
      databases: this.databasesOf(id),
      connection_uris: record.endpoint ? [{
        connection_uri: this.#uri(record.endpoint.hostNumber, this.passwordOf(record)),
        connection_parameters: {
          database: this.#config.database, password: this.passwordOf(record), role: this.#config.role,
          host: hostOf(record.endpoint.hostNumber), pooler_host: hostOf(record.endpoint.hostNumber),
        },
      }] : undefined,
    } satisfies CreateProjectBranchResponse;
  }

  updateBranch(branchId: string, rawBody: unknown): BranchOperations {
    const b = this.branch(branchId);
    const { branch: fields } = parseBody(updateBodySchema, rawBody);
    const now = Date.now();
    if (fields.name !== undefined && fields.name !== b.name) this.#checkNameFree(fields.name);
    if (fields.protected === true) checkCanProtect(this.plan);
    let expiresAt = b.expiresAt;
    if (fields.expires_at === null) {
      expiresAt = undefined;
    } else if (fields.expires_at !== undefined) {
      if (b.isDefault) throw new ApiError(400, 'BAD_REQUEST', `the default branch ${b.id} cannot have an expiration time`);
      const children = this.#childrenOf(b.id);
      if (children.length > 0) {
        throw new ApiError(400, 'BAD_REQUEST', `branch ${b.id} has child branches (${children.map((c) => c.id).join(', ')}) and cannot have an expiration time`);
      }
      expiresAt = parseExpiry(fields.expires_at, now);
    }
    this.#checkNotLocked();
    const ops = this.#ops.begin([{ action: 'apply_config', branchId: b.id }]);
    if (fields.name !== undefined) b.name = fields.name;
    if (fields.protected !== undefined) b.protected = fields.protected;
    if (expiresAt !== b.expiresAt) {
      b.expiresAt = expiresAt;
      b.ttlIntervalSeconds = expiresAt === undefined ? undefined : Math.round((Date.parse(expiresAt) - now) / 1000);
    }
    b.updatedAt = timestamp(now);
    this.#ops.complete(ops);
    this.#save();
    return { branch: this.branchJson(b), operations: ops.map((op) => this.#ops.toApi(op)) } satisfies BranchOperations;
  }

  async deleteBranch(branchId: string): Promise<BranchOperations> {
    const b = this.branch(branchId);
    if (b.isDefault) {
      throw new ApiError(422, 'BRANCH_IS_DEFAULT', `branch ${b.id} is the project's default branch and cannot be deleted`);
    }
    const children = this.#childrenOf(b.id);
    if (children.length > 0) {
      throw new ApiError(422, 'BRANCH_HAS_CHILDREN', `branch ${b.name} (${b.id}) has child branches (${children.map((c) => `${c.name} (${c.id})`).join(', ')}); delete them first`);
    }
    if (b.protected) throw new ApiError(422, 'BRANCH_PROTECTED', `branch ${b.id} is protected; unprotect it before deleting it`);
    this.#checkNotLocked();
    const ops = await this.#remove(b);
    this.#log(`deleted branch ${b.name} (${b.id})`);
    return { branch: this.branchJson(b), operations: ops.map((op) => this.#ops.toApi(op)) } satisfies BranchOperations;
  }

  /** Neon's background job: deletes branches whose expires_at has passed. */
  async sweepExpired(): Promise<string[]> {
    const now = Date.now();
    const expired = this.#state.branches.filter((b) =>
      b.expiresAt !== undefined && Date.parse(b.expiresAt) <= now && !b.isDefault
      && this.#childrenOf(b.id).length === 0 && this.#ops.allFinished(b.creationOperationIds, now));
    for (const b of expired) {
      await this.#remove(b);
      this.#log(`expired branch ${b.name} (${b.id}) deleted (expires_at ${b.expiresAt})`);
    }
    return expired.map((b) => b.id);
  }

  /** Test isolation: only the default branch remains, with an empty database; no operations. */
  async reset(): Promise<void> {
    await this.#serial(async () => {
      const others = this.#state.branches.filter((b) => !b.isDefault);
      for (const b of others) {
        if (b.endpoint) await this.#entries.close(b.endpoint.hostNumber);
        await this.#clusters.remove(b.id);
      }
      const main = this.defaultBranch;
      this.#state.branches = [main];
      this.#ops.clear();
      delete main.expiresAt;
      delete main.ttlIntervalSeconds;
      delete main.annotation;
      delete main.rolePassword;
      delete this.#state.plan;
      main.protected = false;
      await this.#clusters.setRolePassword(main.endpoint!.hostNumber, this.passwordOf(main));
      await this.#clusters.recreateDatabase(main.endpoint!.hostNumber);
      main.logicalSize = await this.#clusters.logicalSize(main.id);
      main.updatedAt = timestamp();
      this.#save();
    });
    this.#log('reset: only the default branch remains, its database is empty');
  }

  async stopAll(): Promise<void> {
    await this.#work.catch(() => undefined);
    await this.#entries.closeAll();
    await this.#clusters.stopEverything();
  }

  branchJson(b: BranchRecord): Branch {
    const now = Date.now();
    const ready = this.#ops.allFinished(b.creationOperationIds, now);
    const readyAt = this.#ops.finishedAt(b.creationOperationIds);
    return {
      id: b.id,
      project_id: this.#config.projectId,
      parent_id: b.parentId,
      parent_timestamp: b.parentId === undefined ? undefined : b.createdAt,
      name: b.name,
      current_state: ready ? 'ready' : 'init',
      pending_state: ready ? undefined : 'ready',
      state_changed_at: ready && readyAt !== undefined ? timestamp(readyAt) : b.createdAt,
      logical_size: b.logicalSize,
      creation_source: 'console',
      created_by: { name: 'local', image: '' },
      primary: b.isDefault,
      default: b.isDefault,
      protected: b.protected,
      cpu_used_sec: 0,
      compute_time_seconds: 0,
      active_time_seconds: 0,
      written_data_bytes: 0,
      data_transfer_bytes: 0,
      created_at: b.createdAt,
      updated_at: b.updatedAt,
      expires_at: b.expiresAt,
      ttl_interval_seconds: b.ttlIntervalSeconds,
      init_source: b.parentId === undefined ? undefined : 'parent-data',
    } satisfies Branch;
  }

  endpointJson(b: BranchRecord): Endpoint {
    const ep = b.endpoint!;
    const active = this.#ops.allFinished(b.creationOperationIds);
    const host = hostOf(ep.hostNumber);
    return {
      host, id: ep.id, project_id: this.#config.projectId, branch_id: b.id,
      autoscaling_limit_min_cu: ep.minCu, autoscaling_limit_max_cu: ep.maxCu, region_id: REGION,
      type: 'read_write', current_state: active ? 'active' : 'init', pending_state: active ? undefined : 'active',
      settings: {}, pooler_enabled: false, pooler_mode: 'transaction', disabled: false, passwordless_access: false,
      creation_source: 'console', created_at: ep.createdAt, updated_at: ep.createdAt,
      started_at: active ? ep.createdAt : undefined, last_active: ep.createdAt, proxy_host: host,
      suspend_timeout_seconds: ep.suspendTimeoutSeconds, provisioner: 'k8s-neonvm',
    } satisfies Endpoint;
  }

  #annotationJson(b: BranchRecord): AnnotationData {
    return {
      object: { type: 'console/branch', id: b.id },
      value: b.annotation?.value ?? {},
      created_at: b.annotation?.createdAt,
      updated_at: b.annotation?.updatedAt,
    } satisfies AnnotationData;
  }

  /** Unlists the branch at once, then stops its cluster and removes its data directory. */
  async #remove(b: BranchRecord): Promise<OperationRecord[]> {
    const specs: Array<{ action: OperationAction; branchId?: string; endpointId?: string }> = [];
    if (b.endpoint) specs.push({ action: 'suspend_compute', branchId: b.id, endpointId: b.endpoint.id });
    specs.push({ action: 'delete_timeline', branchId: b.id });
    const ops = this.#ops.begin(specs);
    this.#state.branches = this.#state.branches.filter((other) => other.id !== b.id);
    this.#deleted.add(b.id);
    this.#save();
    try {
      const endpoint = b.endpoint;
      if (endpoint) await this.#entries.close(endpoint.hostNumber);
      await this.#serial(() => this.#clusters.remove(b.id));
    } catch (error) {
      this.#ops.fail(ops, `deleting branch ${b.id} failed: ${(error as Error).message}`);
      this.#save();
      throw error;
    }
    this.#ops.complete(ops);
    this.#save();
    return ops;
  }

  /** Work that an earlier emulator process started but never finished leaves no half-made branch. */
  async #recoverInterruptedWork(): Promise<void> {
    const interrupted = this.#state.operations.filter((op) => op.doneMs === null);
    if (interrupted.length === 0) return;
    this.#ops.fail(interrupted, 'interrupted: the emulator stopped while this operation ran');
    const broken = this.#state.branches.filter((b) => !b.isDefault && b.creationOperationIds.some((id) => interrupted.some((op) => op.id === id)));
    for (const b of broken) await this.#clusters.remove(b.id);
    this.#state.branches = this.#state.branches.filter((b) => !broken.includes(b));
    this.#save();
  }

  #checkNotLocked(): void {
    if (this.#ops.anyInFlight()) {
      throw new ApiError(423, 'LOCKED', 'project already has running conflicting operations, scheduling of new ones is prohibited');
    }
  }

  #checkNameFree(name: string): void {
    const same = this.#state.branches.find((b) => b.name === name);
    if (same !== undefined) {
      throw new ApiError(409, 'BRANCH_ALREADY_EXISTS', `branch already exists: ${same.id} in project ${this.#config.projectId} is named ${JSON.stringify(name)}`);
    }
  }

  #childrenOf(branchId: string): BranchRecord[] {
    return this.#state.branches.filter((b) => b.parentId === branchId);
  }

  #freeHostNumber(): number {
    const used = new Set(this.#state.branches.map((b) => b.endpoint?.hostNumber));
    for (let n = DEFAULT_HOST_NUMBER + 1; n <= LAST_HOST_NUMBER; n++) if (!used.has(n)) return n;
    throw new ApiError(422, 'ENDPOINTS_LIMIT_EXCEEDED', `no free endpoint address left (127.0.0.${DEFAULT_HOST_NUMBER + 1}..127.0.0.${LAST_HOST_NUMBER} are in use); delete a branch with an endpoint first`);
  }

  #uri(hostNumber: number, rolePassword: string): string {
    const { role, database, pgPort } = this.#config;
    return `postgresql://${encodeURIComponent(role)}:${encodeURIComponent(rolePassword)}@${hostOf(hostNumber)}:${pgPort}/${encodeURIComponent(database)}?sslmode=require`;
  }

  #serial<T>(job: () => Promise<T>): Promise<T> {
    const result = this.#work.then(job);
    this.#work = result.catch(() => undefined);
    return result;
  }

  #save(): void {
    this.#store.save(this.#state);
  }
}

/** Neon's generated passwords: `npg_` and 12 random characters. */
function freshPassword(): string {
  return `npg_${crypto.randomBytes(9).toString('base64url')}`;
}

function encodeCursor(offset: number): string {
  return Buffer.from(JSON.stringify({ offset })).toString('base64');
}

function decodeCursor(cursor: string | null): number {
  if (!cursor) return 0;
  try {
    const { offset } = JSON.parse(Buffer.from(cursor, 'base64').toString('utf8')) as { offset?: unknown };
    if (typeof offset === 'number' && Number.isInteger(offset) && offset >= 0) return offset;
  } catch {
    // fall through
  }
  throw new ApiError(400, '', `invalid cursor ${JSON.stringify(cursor)}: pass pagination.next of the previous page as it is`);
}

function hostOf(hostNumber: number): string {
  return `127.0.0.${hostNumber}`;
}

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
    throw new ApiError(400, 'BAD_REQUEST', `invalid request body: ${problems}`);
  }
  return parsed.data;
}

/** Neon's rules: RFC 3339 with a zone, in the future, at most 30 days ahead. */
function parseExpiry(value: string, now: number): string {
  const ms = Date.parse(value);
  if (!RFC3339.test(value) || Number.isNaN(ms)) {
    throw new ApiError(400, 'BAD_REQUEST', `expires_at ${JSON.stringify(value)} is not an RFC 3339 timestamp with a time zone, such as 2025-06-09T18:02:16Z`);
  }
  if (ms <= now) throw new ApiError(400, 'BAD_REQUEST', `expires_at ${value} is not in the future`);
  if (ms > now + MAX_EXPIRY_MS) throw new ApiError(400, 'BAD_REQUEST', `expires_at ${value} is more than 30 days in the future`);
  return timestamp(ms);
}
