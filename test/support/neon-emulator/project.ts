// One emulated Neon project: its branches and the rules Neon enforces on them (isolation by copy,
// the branch limit, no deleting a parent or the default branch, expires_at, 423 while an operation
// runs), its operations and its injected faults. Projects share nothing but the clusters' port and
// the pool of endpoint addresses (projects.ts holds them all). HTTP lives in server.ts; this module
// speaks in Neon's JSON shapes, typed by the official client's types so the emulator cannot drift
// from Neon's spec.
import crypto from 'node:crypto';
import { z } from 'zod';
import type {
  AnnotationData,
  Branch,
  BranchOperations,
  CreateProjectBranchData,
  CreateProjectBranchResponse,
  CreateProjectResponse,
  Endpoint,
  GetConnectionUriResponse,
  GetProjectBranchResponse,
  ListProjectBranchesResponse,
  OperationAction,
  Project as NeonProject,
  ProjectListItem,
  Role,
  UpdateProjectBranchData,
} from '@neon/sdk';
import { DEFAULT_HOST_NUMBER, hostOf, type AddressPool } from './addresses.js';
import type { Clusters } from './clusters.js';
import { ApiError, type Log } from './errors.js';
import { Faults } from './faults.js';
import { Operations } from './operations.js';
import { checkCanProtect, checkEndpointSettings, PLANS, subscriptionTypeOf, type PlanName } from './plan.js';
import {
  neonId,
  timestamp,
  type BranchRecord,
  type OperationRecord,
  type ProjectSettings,
  type ProjectState,
  type StateStore,
} from './state.js';

const MAX_EXPIRY_MS = 30 * 24 * 3600 * 1000;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;
const REGION = 'aws-local-1';
// Neon still sends primary_branch_only, which the client's types no longer list.
const ALLOWED_IPS = { ips: [], protected_branches_only: false, primary_branch_only: false };

/** What every project shares: the clusters, the address pool, the state files, the clock's pace. */
export interface ProjectDeps {
  clusters: Clusters;
  addresses: AddressPool;
  store: StateStore;
  log: Log;
  pgPort: number;
  operationDelayMs: number;
}

type OperationSpec = { action: OperationAction; branchId?: string; endpointId?: string };

type CreateBody = NonNullable<CreateProjectBranchData['body']>;
type UpdateBody = UpdateProjectBranchData['body'];

// A branch is a copy of its parent as of now: parent_lsn, parent_timestamp, init_source and the
// other fields nothing here sends are refused (400), not ignored.
const createBodySchema: z.ZodType<CreateBody> = z.object({
  branch: z
    .object({
      parent_id: z.string().optional(),
      name: z.string().min(1).max(256).optional(),
      protected: z.boolean().optional(),
      expires_at: z.string().optional(),
    })
    .strict()
    .optional(),
  endpoints: z
    .array(
      z.object({
        type: z.enum(['read_write', 'read_only']),
        autoscaling_limit_min_cu: z.number().optional(),
        autoscaling_limit_max_cu: z.number().optional(),
        suspend_timeout_seconds: z.number().optional(),
      }),
    )
    .optional(),
  annotation_value: z.record(z.string(), z.string()).optional(),
});

const networkBodySchema = z.object({ rtt_ms: z.number().int().min(0).max(10_000) });

const settingsBodySchema = z.object({ branch_limit: z.number().int().min(1).optional(), plan: z.enum(PLANS).optional() });

const updateBodySchema: z.ZodType<UpdateBody> = z.object({
  branch: z
    .object({
      protected: z.boolean().optional(),
      expires_at: z.string().nullable().optional(),
    })
    .strict(),
});

export class Project {
  readonly #deps: ProjectDeps;
  readonly #state: ProjectState;
  readonly #ops: Operations;
  readonly faults = new Faults();
  /** Cluster work (copy, start, stop, remove) runs one job at a time, in arrival order. */
  #work: Promise<unknown> = Promise.resolve();
  /** Set when the project's deletion starts: from then on it answers 404 and takes no work. */
  #deleted = false;
  /** Ids of branches deleted since start: a repeated DELETE of one answers 204, as Neon does. */
  readonly #deletedBranches = new Set<string>();

  private constructor(state: ProjectState, deps: ProjectDeps) {
    this.#deps = deps;
    this.#state = state;
    this.#ops = new Operations(state, state.settings.id, deps.operationDelayMs);
  }

  get id(): string {
    return this.#state.settings.id;
  }

  get settings(): Readonly<ProjectSettings> {
    return this.#state.settings;
  }

  get deleted(): boolean {
    return this.#deleted;
  }

  /**
   * The round trip (ms) the entries of this project's endpoints add to every connection (bench
   * only: a network between the client and Neon). Not saved: a restart is back to 0.
   */
  networkRttMs = 0;
  /** Connections through that network, and turns (devkit/latency-proxy.ts RelayCounts), since it was last set. */
  readonly networkCounts = { connections: 0, turns: 0 };

  network(): { rtt_ms: number; connections: number; turns: number } {
    return { rtt_ms: this.networkRttMs, ...this.networkCounts };
  }

  setNetwork(rawBody: unknown): { rtt_ms: number; connections: number; turns: number } {
    const body = parseBody(networkBodySchema, rawBody ?? {});
    this.networkRttMs = body.rtt_ms;
    this.networkCounts.connections = 0;
    this.networkCounts.turns = 0;
    return this.network();
  }

  /**
   * A new project, as Neon makes one: a default branch `main` with a read_write endpoint, the
   * owner role and its database. Answers once the cluster runs; its operations then finish one
   * operation delay later, as Neon's do.
   */
  static async create(settings: ProjectSettings, deps: ProjectDeps): Promise<{ project: Project; created: CreateProjectResponse }> {
    const now = timestamp();
    const hostNumber = settings.stackDefault ? DEFAULT_HOST_NUMBER : deps.addresses.take();
    if (settings.stackDefault) deps.addresses.claim(hostNumber);
    const main: BranchRecord = {
      id: neonId('br'),
      name: 'main',
      createdAt: now,
      updatedAt: now,
      isDefault: true,
      protected: false,
      logicalSize: 0,
      creationOperationIds: [],
      endpoint: { id: neonId('ep'), hostNumber, createdAt: now, minCu: 0.25, maxCu: 2, suspendTimeoutSeconds: 0 },
    };
    const state: ProjectState = { version: 2, settings, branches: [main], operations: [] };
    const project = new Project(state, deps);
    const ops = project.#ops.begin([
      { action: 'create_timeline', branchId: main.id },
      { action: 'start_compute', branchId: main.id, endpointId: main.endpoint!.id },
    ]);
    main.creationOperationIds = ops.map((op) => op.id);
    project.#save();
    try {
      await project.#serial(async () => {
        await deps.clusters.createDefault(main.id, hostNumber, settings);
        main.logicalSize = await deps.clusters.logicalSize(main.id);
      });
    } catch (error) {
      const message = `creating project ${settings.name} (${settings.id}) failed: ${(error as Error).message}`;
      deps.log(message);
      await deps.clusters.remove(main.id).catch(() => undefined);
      deps.addresses.release(hostNumber);
      deps.store.remove(settings.id);
      throw new ApiError(500, 'INTERNAL_ERROR', message);
    }
    project.#ops.complete(ops);
    project.#save();
    deps.log(`created project ${settings.name} (${settings.id}), default branch ${main.id} at ${hostOf(hostNumber)}`);
    const created = {
      project: project.projectJson().project,
      ...project.#creationAnswer(main),
      operations: ops.map((op) => project.#ops.toApi(op)),
      branch: project.branchJson(main),
    } satisfies CreateProjectResponse;
    return { project, created };
  }

  /** Warm start: a saved project is served again, its clusters started; nothing is re-created. */
  static async restore(state: ProjectState, deps: ProjectDeps): Promise<Project> {
    const project = new Project(state, deps);
    await project.#recoverInterruptedWork();
    for (const b of state.branches) if (b.endpoint) deps.addresses.claim(b.endpoint.hostNumber);
    const running = state.branches.filter((b) => b.endpoint !== undefined);
    await Promise.all(
      running.map((b) =>
        deps.clusters.start(b.id, b.endpoint!.hostNumber, {
          role: state.settings.role,
          rolePassword: b.rolePassword ?? state.settings.rolePassword,
        }),
      ),
    );
    return project;
  }

  /** Deletes the project: it answers 404 at once; its clusters are stopped and removed. */
  async delete(): Promise<void> {
    if (this.#deleted) return;
    const work = this.#serial(
      async () => {
        for (const b of [...this.#state.branches].reverse()) await this.#deps.clusters.remove(b.id);
      },
      { evenIfDeleted: true },
    );
    this.#deleted = true;
    this.faults.clear();
    try {
      await work;
    } finally {
      for (const b of this.#state.branches) if (b.endpoint) this.#deps.addresses.release(b.endpoint.hostNumber);
      this.#deps.store.remove(this.id);
    }
    this.#deps.log(`deleted project ${this.settings.name} (${this.id}) and its ${this.#state.branches.length} branch(es)`);
  }

  /** Emulator-only settings a test may change (Neon sets them by plan). */
  updateSettings(rawBody: unknown): ProjectSettings {
    const body = parseBody(settingsBodySchema, rawBody ?? {});
    if (body.branch_limit !== undefined) {
      if (body.branch_limit < this.#state.branches.length) {
        throw new ApiError(
          400,
          'BAD_REQUEST',
          `branch_limit ${body.branch_limit} is below the ${this.#state.branches.length} branches project ${this.id} already has`,
        );
      }
      this.#state.settings.branchLimit = body.branch_limit;
    }
    if (body.plan !== undefined) this.#state.settings.plan = body.plan;
    this.#save();
    return this.#state.settings;
  }

  get defaultBranch(): BranchRecord {
    const main = this.#state.branches.find((b) => b.isDefault);
    if (main === undefined) throw new Error('neon emulator: the state has no default branch');
    return main;
  }

  /** Where the project's default branch answers. */
  defaultEndpoint(): { defaultBranchId: string; defaultHost: string } {
    const main = this.defaultBranch;
    return { defaultBranchId: main.id, defaultHost: hostOf(main.endpoint!.hostNumber) };
  }

  projectJson(): { project: NeonProject } {
    const created = this.settings.createdAt;
    return {
      project: {
        ...this.listItem(),
        history_retention_seconds: 21600,
        consumption_period_start: created,
        consumption_period_end: timestamp(Date.parse(created) + MAX_EXPIRY_MS),
        data_storage_bytes_hour: 0,
        data_transfer_bytes: 0,
        written_data_bytes: 0,
        compute_time_seconds: 0,
        active_time_seconds: 0,
        owner: {
          email: 'owner@localhost',
          name: 'local',
          branches_limit: this.settings.branchLimit,
          subscription_type: subscriptionTypeOf(this.plan),
        },
      } satisfies NeonProject,
    };
  }

  /** The project as `GET /projects` lists it. */
  listItem(): ProjectListItem {
    const created = this.settings.createdAt;
    return {
      id: this.id,
      name: this.settings.name,
      platform_id: 'aws',
      region_id: REGION,
      provisioner: 'k8s-neonvm',
      pg_version: 15,
      proxy_host: '127.0.0.1',
      store_passwords: true,
      branch_logical_size_limit: 512,
      branch_logical_size_limit_bytes: 512 * 1024 * 1024,
      active_time: 0,
      cpu_used_sec: 0,
      creation_source: 'console',
      created_at: created,
      updated_at: created,
      owner_id: 'org-local',
      synthetic_storage_size: 0,
      compute_last_active_at: created,
      quota_reset_at: timestamp(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() + 1, 1)),
      default_endpoint_settings: { autoscaling_limit_min_cu: 0.25, autoscaling_limit_max_cu: 0.25, suspend_timeout_seconds: 0 },
      settings: {
        allowed_ips: ALLOWED_IPS,
        enable_logical_replication: false,
        block_public_connections: false,
        block_vpc_connections: false,
      },
    } satisfies ProjectListItem;
  }

  /** The id of this project's endpoint at an address, if it has one there. */
  endpointIdAt(hostNumber: number): string | undefined {
    return this.#state.branches.find((b) => b.endpoint?.hostNumber === hostNumber)?.endpoint?.id;
  }

  /** The project's plan: what it refuses (plan.ts). */
  get plan(): PlanName {
    return this.settings.plan ?? 'free';
  }

  /** Whether this id is of a branch deleted earlier (Neon answers a repeated DELETE 204). */
  wasDeleted(branchId: string): boolean {
    return this.#deletedBranches.has(branchId);
  }

  /** The owner role's password on a branch (store_passwords is on: Neon can reveal it). */
  passwordOf(b: BranchRecord): string {
    return b.rolePassword ?? this.settings.rolePassword;
  }

  #ownerOn(b: BranchRecord): { role: string; rolePassword: string } {
    return { role: this.settings.role, rolePassword: this.passwordOf(b) };
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
  async resetRolePassword(
    branchId: string,
    roleName: string,
  ): Promise<{ role: Role & { password: string }; operations: ReturnType<Operations['toApi']>[] }> {
    const b = this.branch(branchId);
    this.#checkRole(b, roleName);
    this.#checkNotLocked();
    const ops = this.#ops.begin([{ action: 'apply_config', branchId: b.id, ...(b.endpoint ? { endpointId: b.endpoint.id } : {}) }]);
    b.rolePassword = freshPassword();
    b.updatedAt = timestamp();
    this.#save();
    const endpoint = b.endpoint;
    if (endpoint) await this.#serial(() => this.#deps.clusters.setRolePassword(endpoint.hostNumber, this.#ownerOn(b)));
    this.#ops.complete(ops);
    this.#save();
    this.#deps.log(`reset the password of role ${roleName} on branch ${b.id} of project ${this.id}`);
    return { role: { ...this.#ownerRoleJson(b), password: this.passwordOf(b) }, operations: ops.map((op) => this.#ops.toApi(op)) };
  }

  #checkRole(b: BranchRecord, roleName: string): void {
    if (roleName !== this.settings.role) throw new ApiError(404, 'NOT_FOUND', `role ${roleName} not found on branch ${b.id}`);
  }

  branch(branchId: string): BranchRecord {
    const found = this.#state.branches.find((b) => b.id === branchId);
    if (found === undefined) {
      throw new ApiError(404, 'NOT_FOUND', `branch ${branchId} not found in project ${this.id}`);
    }
    return found;
  }

  /** Neon's default order (most recently updated first), everything on one page. */
  listBranches(query: URLSearchParams): ListProjectBranchesResponse {
    for (const unsupported of ['sort_by', 'sort_order', 'limit']) {
      if (query.has(unsupported)) throw new ApiError(400, 'BAD_REQUEST', `${unsupported} is not emulated (nothing here calls it)`);
    }
    const search = (query.get('search') ?? '').toLowerCase();
    const matching = this.#state.branches
      .filter((b) => search === '' || b.name.toLowerCase().includes(search) || b.id.toLowerCase().includes(search))
      .sort((a, b) => (a.updatedAt > b.updatedAt ? -1 : a.updatedAt < b.updatedAt ? 1 : a.id < b.id ? 1 : -1));
    // The cursor is an opaque offset into the sorted list.
    const offset = decodeCursor(query.get('cursor'));
    const page = matching.slice(offset);
    const annotations: Record<string, AnnotationData> = {};
    for (const b of page) if (b.annotation !== undefined) annotations[b.id] = this.#annotationJson(b);
    // Neon hands out a next cursor even when everything fits on this page; it then leads to an empty page.
    const next = encodeCursor(offset + page.length);
    return {
      branches: page.map((b) => this.branchJson(b)),
      annotations,
      pagination: { next, sort_by: 'updated_at', sort_order: 'desc' },
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
      throw new ApiError(
        404,
        'NOT_FOUND',
        `branch ${b.id} has no ${endpointId ? `endpoint ${endpointId}` : 'read_write endpoint'}; create the branch with endpoints: [{type: "read_write"}]`,
      );
    }
    if (roleName !== this.settings.role) throw new ApiError(404, 'NOT_FOUND', `role ${roleName} not found on branch ${b.id}`);
    if (databaseName !== this.settings.database)
      throw new ApiError(404, 'NOT_FOUND', `database ${databaseName} not found on branch ${b.id}`);
    // There is no pooler here: `pooled=true` gets the same direct host.
    return { uri: this.#uri(b.endpoint.hostNumber, this.passwordOf(b)) } satisfies GetConnectionUriResponse;
  }

  operation(operationId: string): OperationRecord {
    const op = this.#ops.find(operationId);
    if (op === undefined) throw new ApiError(404, 'NOT_FOUND', `operation ${operationId} not found in project ${this.id}`);
    return op;
  }

  get operations(): Operations {
    return this.#ops;
  }

  async createBranch(rawBody: unknown): Promise<CreateProjectBranchResponse> {
    const body = parseBody(createBodySchema, rawBody ?? {});
    const fields = body.branch ?? {};
    const now = Date.now();
    const endpoints = body.endpoints ?? [];
    for (const e of endpoints) checkEndpointSettings(this.plan, e);
    if (fields.protected === true) checkCanProtect(this.plan);
    if (endpoints.length > 1 || endpoints.some((e) => e.type !== 'read_write')) {
      throw new ApiError(400, 'BAD_REQUEST', 'the emulator supports at most one endpoint per branch, of type read_write');
    }
    const parent = fields.parent_id ? this.branch(fields.parent_id) : this.defaultBranch;
    if (parent.expiresAt !== undefined) {
      throw new ApiError(
        400,
        'BAD_REQUEST',
        `cannot create a branch from branch ${parent.id}: it has an expiration time (expires_at ${parent.expiresAt}); branch from a branch without expires_at`,
      );
    }
    const expiresAt = fields.expires_at === undefined ? undefined : parseExpiry(fields.expires_at, now);
    const id = neonId('br');
    const name = fields.name ?? id;
    this.#checkNameFree(name);
    if (this.#state.branches.length >= this.settings.branchLimit) {
      throw new ApiError(
        422,
        'BRANCHES_LIMIT_EXCEEDED',
        `branches limit exceeded: project ${this.id} already has ${this.#state.branches.length} of ${this.settings.branchLimit} branches; delete a branch first`,
      );
    }
    this.#checkNotLocked();

    const created = timestamp(now);
    const ep = endpoints[0];
    const record: BranchRecord = {
      id,
      name,
      parentId: parent.id,
      createdAt: created,
      updatedAt: created,
      expiresAt,
      ttlIntervalSeconds: expiresAt === undefined ? undefined : Math.round((Date.parse(expiresAt) - now) / 1000),
      isDefault: false,
      protected: fields.protected ?? false,
      logicalSize: parent.logicalSize,
      // A branch made from a protected branch gets new role passwords, as on Neon; otherwise the
      // copied data carries the parent's.
      rolePassword: parent.protected ? freshPassword() : parent.rolePassword,
      annotation:
        body.annotation_value === undefined ? undefined : { value: body.annotation_value, createdAt: created, updatedAt: created },
      endpoint:
        ep === undefined
          ? undefined
          : {
              id: neonId('ep'),
              hostNumber: this.#deps.addresses.take(),
              createdAt: created,
              minCu: ep.autoscaling_limit_min_cu ?? 0.25,
              maxCu: ep.autoscaling_limit_max_cu ?? 2,
              suspendTimeoutSeconds: ep.suspend_timeout_seconds ?? 0,
            },
      creationOperationIds: [],
    };
    const specs: OperationSpec[] = [{ action: 'create_branch', branchId: id }];
    if (record.endpoint) specs.push({ action: 'start_compute', branchId: id, endpointId: record.endpoint.id });
    const ops = this.#ops.begin(specs);
    record.creationOperationIds = ops.map((op) => op.id);
    this.#state.branches.push(record);
    this.#save();

    try {
      await this.#serial(async () => {
        await this.#deps.clusters.copy({ branchId: parent.id, hostNumber: parent.endpoint?.hostNumber }, id);
        if (record.endpoint) await this.#deps.clusters.start(id, record.endpoint.hostNumber, this.#ownerOn(record));
        record.logicalSize = await this.#deps.clusters.logicalSize(id);
      });
    } catch (error) {
      const message = `creating branch ${name} (${id}) from ${parent.id} failed: ${(error as Error).message}`;
      this.#deps.log(message);
      this.#ops.fail(ops, message);
      this.#state.branches = this.#state.branches.filter((b) => b.id !== id);
      this.#save();
      await this.#serial(() => this.#deps.clusters.remove(id)).catch(() => undefined);
      if (record.endpoint) this.#deps.addresses.release(record.endpoint.hostNumber);
      throw new ApiError(500, 'INTERNAL_ERROR', message);
    }
    this.#ops.complete(ops);
    this.#save();
    this.#deps.log(
      `created branch ${name} (${id}) from ${parent.id}${record.endpoint ? ` at ${hostOf(record.endpoint.hostNumber)}` : ' (storage only)'}`,
    );

    const answer = this.#creationAnswer(record);
    return {
      branch: this.branchJson(record),
      operations: ops.map((op) => this.#ops.toApi(op)),
      ...answer,
      connection_uris: answer.connection_uris.length > 0 ? answer.connection_uris : undefined,
    } satisfies CreateProjectBranchResponse;
  }

  /** What Neon returns with a new branch or project: its endpoints, and the role's password. */
  #creationAnswer(b: BranchRecord) {
    const { role, database } = this.settings;
    const rolePassword = this.passwordOf(b);
    return {
      endpoints: b.endpoint ? [this.endpointJson(b)] : [],
      roles: [{ ...this.#ownerRoleJson(b), password: rolePassword }],
      databases: [{ id: 1, branch_id: b.id, name: database, owner_name: role, created_at: b.createdAt, updated_at: b.createdAt }],
      connection_uris: b.endpoint
        ? [
            {
              connection_uri: this.#uri(b.endpoint.hostNumber, rolePassword),
              connection_parameters: {
                database,
                password: rolePassword,
                role,
                host: hostOf(b.endpoint.hostNumber),
                pooler_host: hostOf(b.endpoint.hostNumber),
              },
            },
          ]
        : [],
    };
  }

  updateBranch(branchId: string, rawBody: unknown): BranchOperations {
    const b = this.branch(branchId);
    const { branch: fields } = parseBody(updateBodySchema, rawBody);
    const now = Date.now();
    if (fields.protected === true) checkCanProtect(this.plan);
    let expiresAt = b.expiresAt;
    if (fields.expires_at === null) {
      expiresAt = undefined;
    } else if (fields.expires_at !== undefined) {
      if (b.isDefault) throw new ApiError(400, 'BAD_REQUEST', `the default branch ${b.id} cannot have an expiration time`);
      const children = this.#childrenOf(b.id);
      if (children.length > 0) {
        throw new ApiError(
          400,
          'BAD_REQUEST',
          `branch ${b.id} has child branches (${children.map((c) => c.id).join(', ')}) and cannot have an expiration time`,
        );
      }
      expiresAt = parseExpiry(fields.expires_at, now);
    }
    this.#checkNotLocked();
    const ops = this.#ops.begin([{ action: 'apply_config', branchId: b.id }]);
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
      throw new ApiError(
        422,
        'BRANCH_HAS_CHILDREN',
        `branch ${b.name} (${b.id}) has child branches (${children.map((c) => `${c.name} (${c.id})`).join(', ')}); delete them first`,
      );
    }
    if (b.protected) throw new ApiError(422, 'BRANCH_PROTECTED', `branch ${b.id} is protected; unprotect it before deleting it`);
    this.#checkNotLocked();
    const ops = await this.#remove(b);
    this.#deps.log(`deleted branch ${b.name} (${b.id})`);
    return { branch: this.branchJson(b), operations: ops.map((op) => this.#ops.toApi(op)) } satisfies BranchOperations;
  }

  /** Neon's background job: deletes branches whose expires_at has passed. */
  async sweepExpired(): Promise<string[]> {
    const now = Date.now();
    const expired = this.#state.branches.filter(
      (b) =>
        b.expiresAt !== undefined &&
        Date.parse(b.expiresAt) <= now &&
        !b.isDefault &&
        this.#childrenOf(b.id).length === 0 &&
        this.#ops.allFinished(b.creationOperationIds, now),
    );
    for (const b of expired) {
      await this.#remove(b);
      this.#deps.log(`expired branch ${b.name} (${b.id}) deleted (expires_at ${b.expiresAt})`);
    }
    return expired.map((b) => b.id);
  }

  /**
   * A clean start for the demo on the stack's own project: only the default branch remains, with
   * an empty database; no operations, no faults.
   */
  async reset(): Promise<void> {
    this.faults.clear();
    await this.#serial(async () => {
      const others = this.#state.branches.filter((b) => !b.isDefault);
      for (const b of [...others].reverse()) {
        await this.#deps.clusters.remove(b.id);
        if (b.endpoint) this.#deps.addresses.release(b.endpoint.hostNumber);
      }
      const main = this.defaultBranch;
      this.#state.branches = [main];
      this.#ops.clear();
      delete main.expiresAt;
      delete main.ttlIntervalSeconds;
      delete main.annotation;
      delete main.rolePassword;
      main.protected = false;
      await this.#deps.clusters.setRolePassword(main.endpoint!.hostNumber, this.#ownerOn(main));
      await this.#deps.clusters.recreateDatabase(main.endpoint!.hostNumber, this.settings);
      main.logicalSize = await this.#deps.clusters.logicalSize(main.id);
      main.updatedAt = timestamp();
      this.#save();
    });
    this.#deps.log(`reset project ${this.id}: only the default branch remains, its database is empty`);
  }

  /** Waits for the project's cluster work in flight (at shutdown, before the clusters stop). */
  async settle(): Promise<void> {
    await this.#work.catch(() => undefined);
  }

  branchJson(b: BranchRecord): Branch {
    const now = Date.now();
    const ready = this.#ops.allFinished(b.creationOperationIds, now);
    const readyAt = this.#ops.finishedAt(b.creationOperationIds);
    return {
      id: b.id,
      project_id: this.id,
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
      host,
      id: ep.id,
      project_id: this.id,
      branch_id: b.id,
      autoscaling_limit_min_cu: ep.minCu,
      autoscaling_limit_max_cu: ep.maxCu,
      region_id: REGION,
      type: 'read_write',
      current_state: active ? 'active' : 'init',
      pending_state: active ? undefined : 'active',
      settings: {},
      pooler_enabled: false,
      pooler_mode: 'transaction',
      disabled: false,
      passwordless_access: false,
      creation_source: 'console',
      created_at: ep.createdAt,
      updated_at: ep.createdAt,
      started_at: active ? ep.createdAt : undefined,
      last_active: ep.createdAt,
      proxy_host: host,
      suspend_timeout_seconds: ep.suspendTimeoutSeconds,
      provisioner: 'k8s-neonvm',
    } satisfies Endpoint;
  }

  /** The owner role: Neon creates it with the project, and every branch has it (copied with the data). */
  #ownerRoleJson(b: BranchRecord): Role {
    return { branch_id: b.id, name: this.settings.role, protected: false, created_at: b.createdAt, updated_at: b.createdAt };
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
    const specs: OperationSpec[] = [];
    if (b.endpoint) specs.push({ action: 'suspend_compute', branchId: b.id, endpointId: b.endpoint.id });
    specs.push({ action: 'delete_timeline', branchId: b.id });
    const ops = this.#ops.begin(specs);
    this.#state.branches = this.#state.branches.filter((other) => other.id !== b.id);
    this.#deletedBranches.add(b.id);
    this.#save();
    try {
      await this.#serial(() => this.#deps.clusters.remove(b.id));
      if (b.endpoint) this.#deps.addresses.release(b.endpoint.hostNumber);
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
    const broken = this.#state.branches.filter(
      (b) => !b.isDefault && b.creationOperationIds.some((id) => interrupted.some((op) => op.id === id)),
    );
    for (const b of broken) await this.#deps.clusters.remove(b.id);
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
      throw new ApiError(
        409,
        'BRANCH_ALREADY_EXISTS',
        `branch already exists: ${same.id} in project ${this.id} is named ${JSON.stringify(name)}`,
      );
    }
  }

  #childrenOf(branchId: string): BranchRecord[] {
    return this.#state.branches.filter((b) => b.parentId === branchId);
  }

  #uri(hostNumber: number, rolePassword: string): string {
    const { role, database } = this.settings;
    const { pgPort } = this.#deps;
    return `postgresql://${encodeURIComponent(role)}:${encodeURIComponent(rolePassword)}@${hostOf(hostNumber)}:${pgPort}/${encodeURIComponent(database)}?sslmode=require`;
  }

  #serial<T>(job: () => Promise<T>, { evenIfDeleted = false } = {}): Promise<T> {
    // Work queued behind the project's deletion must not recreate what the deletion removes.
    const result = this.#work.then(() => {
      if (this.#deleted && !evenIfDeleted) throw new ApiError(404, 'NOT_FOUND', `project ${this.id} not found (it was deleted)`);
      return job();
    });
    this.#work = result.catch(() => undefined);
    return result;
  }

  #save(): void {
    if (!this.#deleted) this.#deps.store.save(this.#state);
  }
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
    throw new ApiError(
      400,
      'BAD_REQUEST',
      `expires_at ${JSON.stringify(value)} is not an RFC 3339 timestamp with a time zone, such as 2025-06-09T18:02:16Z`,
    );
  }
  if (ms <= now) throw new ApiError(400, 'BAD_REQUEST', `expires_at ${value} is not in the future`);
  if (ms > now + MAX_EXPIRY_MS) throw new ApiError(400, 'BAD_REQUEST', `expires_at ${value} is more than 30 days in the future`);
  return timestamp(ms);
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
