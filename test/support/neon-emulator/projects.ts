// Every project the emulator serves, as one Neon account sees them: `POST /projects` makes one
// (its default branch a copy of a template cluster, so it takes a second, not an initdb),
// `DELETE /projects/{id}` stops and removes its clusters. The stack's own project (the one in
// .stack/env, EMULATOR_PROJECT_ID) is made at first start and never deleted. Projects share only
// the clusters' port and the pool of endpoint addresses, so one project's branches, operations,
// faults and limits never touch another's: tests each make their own.
import crypto from 'node:crypto';
import { z } from 'zod';
import type { CreateProjectResponse, DeleteProjectResponse, ListProjectsResponse, ProjectCreateRequest } from '@neon/sdk';
import { AddressPool } from './addresses.js';
import type { Clusters } from './clusters.js';
import type { EmulatorConfig } from './config.js';
import { ApiError, type Log } from './errors.js';
import { Project, type ProjectDeps } from './project.js';
import { neonId, StateStore, timestamp, type ProjectSettings } from './state.js';

// Only a name: every project gets the configured owner role and database and a default branch `main`.
const createBodySchema: z.ZodType<ProjectCreateRequest> = z.object({
  project: z.object({ name: z.string().min(1).max(256).optional() }).strict(),
});

export class Projects {
  readonly #config: EmulatorConfig;
  readonly #deps: ProjectDeps;
  readonly #projects = new Map<string, Project>();

  private constructor(config: EmulatorConfig, deps: ProjectDeps) {
    this.#config = config;
    this.#deps = deps;
  }

  /** First start: the stack's project is created. Warm start: every saved project, clusters started. */
  static async open(config: EmulatorConfig, clusters: Clusters, log: Log): Promise<Projects> {
    await clusters.prepareDirectories();
    const store = new StateStore(config.stateDir);
    store.prepare();
    const deps: ProjectDeps = {
      clusters,
      addresses: new AddressPool(),
      store,
      log,
      pgPort: config.pgPort,
      operationDelayMs: config.operationDelayMs,
    };
    const projects = new Projects(config, deps);
    // The endpoints' entries refuse an options=endpoint naming another endpoint: they ask here which one an address serves.
    clusters.entries.resolveEndpointsWith((hostNumber) => {
      for (const p of projects.#projects.values()) {
        const id = p.endpointIdAt(hostNumber);
        if (id !== undefined) return id;
      }
      return undefined;
    });
    clusters.entries.resolveRttWith((hostNumber) => {
      for (const p of projects.#projects.values()) {
        if (p.endpointIdAt(hostNumber) !== undefined) return { rttMs: p.networkRttMs, counts: p.networkCounts };
      }
      return { rttMs: 0, counts: { connections: 0, turns: 0 } };
    });
    const saved = store.loadAll();
    if (saved.length === 0) {
      // Leftovers of a first start that never completed: nothing refers to them.
      await clusters.stopEverything();
      await clusters.removeAllExcept([]);
    }
    for (const state of saved) {
      // The stack's project follows its configured password and limit, as the stack's env file does.
      if (state.settings.stackDefault) state.settings.rolePassword = config.rolePassword;
      projects.#projects.set(state.settings.id, await Project.restore(state, deps));
    }
    const orphans = await clusters.removeAllExcept(saved.flatMap((s) => s.branches.map((b) => b.id)));
    if (orphans.length > 0) log(`removed data directories no branch refers to: ${orphans.join(', ')}`);
    if (saved.length > 0) log(`warm start: ${saved.length} project(s), ${saved.reduce((n, s) => n + s.branches.length, 0)} branch(es)`);

    const stale = [...projects.#projects.values()].filter((p) => p.settings.stackDefault && p.id !== config.projectId);
    for (const p of stale) await projects.delete(p.id, { evenStackDefault: true });
    if (!projects.#projects.has(config.projectId)) {
      log(`first start: creating the stack's project ${config.projectId}`);
      const { project } = await Project.create(
        {
          id: config.projectId,
          name: 'supaneon-local',
          createdAt: timestamp(),
          role: config.role,
          rolePassword: config.rolePassword,
          database: config.database,
          branchLimit: config.branchLimit,
          stackDefault: true,
        },
        deps,
      );
      projects.#projects.set(project.id, project);
    }
    return projects;
  }

  get stackDefault(): Project {
    return this.get(this.#config.projectId);
  }

  /** The project, or Neon's 404 naming it. */
  get(projectId: string): Project {
    const project = this.#projects.get(projectId);
    if (project === undefined || project.deleted) throw new ApiError(404, 'NOT_FOUND', `project ${projectId} not found`);
    return project;
  }

  /** Every project on one page, with Neon's cursor (the last one's id), which nothing follows here. */
  list(): ListProjectsResponse {
    const live = [...this.#projects.values()].filter((p) => !p.deleted);
    const pagination = live.length > 0 ? { cursor: live[live.length - 1].id } : undefined;
    return { projects: live.map((p) => p.listItem()), pagination, applications: {}, integrations: {} } satisfies ListProjectsResponse;
  }

  async create(rawBody: unknown): Promise<CreateProjectResponse> {
    const parsed = createBodySchema.safeParse(rawBody ?? {});
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
      throw new ApiError(400, 'BAD_REQUEST', `invalid request body: ${problems}`);
    }
    const fields = parsed.data.project;
    let id = neonId('');
    while (this.#projects.has(id)) id = neonId('');
    const settings: ProjectSettings = {
      id,
      name: fields.name ?? id,
      createdAt: timestamp(),
      role: this.#config.role,
      // Neon generates the owner role's password and returns it once, in this answer.
      rolePassword: crypto.randomBytes(12).toString('hex'),
      database: this.#config.database,
      branchLimit: this.#config.branchLimit,
      stackDefault: false,
    };
    const { project, created } = await Project.create(settings, this.#deps);
    this.#projects.set(id, project);
    return created;
  }

  async delete(projectId: string, { evenStackDefault = false } = {}): Promise<DeleteProjectResponse> {
    const project = this.get(projectId);
    if (project.settings.stackDefault && !evenStackDefault) {
      throw new ApiError(
        422,
        'PROJECT_IS_STACK_DEFAULT',
        `project ${projectId} is the local stack's own project (NEON_PROJECT_ID in .stack/env) and is not deleted; create a project of your own to delete`,
      );
    }
    const answer = project.projectJson() satisfies DeleteProjectResponse;
    await project.delete();
    this.#projects.delete(projectId);
    return answer;
  }

  /**
   * Neon's background job, for every project at once (one project's busy work queue must not hold
   * up another's expiry): deletes branches whose expires_at has passed.
   */
  async sweepExpired(log: Log): Promise<void> {
    const live = [...this.#projects.values()].filter((p) => !p.deleted);
    await Promise.all(
      live.map((p) =>
        p.sweepExpired().catch((error: unknown) => {
          if (!p.deleted) log(`expiry sweep of project ${p.id} failed: ${(error as Error).message}`);
        }),
      ),
    );
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.#projects.values()].map((p) => p.settle()));
    await this.#deps.clusters.stopEverything();
  }
}
