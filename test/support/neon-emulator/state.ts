// The emulator's persisted model, one JSON file per project (`projects/<id>.json` in the state
// directory): the project's settings, its branches with their endpoints and annotations, and its
// operations. Saved after every change, so a restarted emulator serves the same projects and
// branches over the same data directories. The files hold the projects' role passwords: the
// directory is private to the user that runs the emulator.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { OperationAction } from '@neon/sdk';
import type { PlanName } from './plan.js';

export interface EndpointRecord {
  id: string;
  /** The endpoint's address, see addresses.ts (2 is 127.0.0.2). */
  hostNumber: number;
  createdAt: string;
  minCu: number;
  maxCu: number;
  suspendTimeoutSeconds: number;
}

export interface AnnotationRecord {
  value: Record<string, string>;
  createdAt: string;
  updatedAt: string;
}

export interface BranchRecord {
  id: string;
  name: string;
  parentId?: string;
  createdAt: string;
  updatedAt: string;
  expiresAt?: string;
  ttlIntervalSeconds?: number;
  isDefault: boolean;
  protected: boolean;
  /** The owner role's password on this branch; absent = the project's (as before passwords were per branch). */
  rolePassword?: string;
  logicalSize: number;
  annotation?: AnnotationRecord;
  /** Absent for a storage-only branch (created without endpoints): its cluster never runs. */
  endpoint?: EndpointRecord;
  /** The operations that create the branch: it is 'init' until they finish. */
  creationOperationIds: string[];
}

export interface OperationRecord {
  id: string;
  action: OperationAction;
  branchId?: string;
  endpointId?: string;
  createdMs: number;
  /** When the operation reports 'finished'; null while its work is still being done. */
  doneMs: number | null;
  error?: string;
}

/** What a project is made with: its identity, its owner role and database, its limits. */
export interface ProjectSettings {
  id: string;
  name: string;
  createdAt: string;
  /** The owner role every branch has (Neon creates one with the project), and its password. */
  role: string;
  rolePassword: string;
  /** The database the owner role owns on every branch. */
  database: string;
  /** Branches allowed, the default branch included (Neon's plan limit). */
  branchLimit: number;
  /** The stack's own project (EMULATOR_PROJECT_ID): made at first start, never deleted. */
  stackDefault: boolean;
  /** The project's plan; absent = free, like a new user's project. */
  plan?: PlanName;
}

export interface ProjectState {
  version: 2;
  settings: ProjectSettings;
  branches: BranchRecord[];
  operations: OperationRecord[];
}

const PROJECTS_DIR = 'projects';

export class StateStore {
  readonly #dir: string;

  constructor(stateDir: string) {
    this.#dir = path.join(stateDir, PROJECTS_DIR);
  }

  prepare(): void {
    fs.mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(this.#dir, 0o700);
  }

  /** Every saved project; a file of another format version stops the start with the fix. */
  loadAll(): ProjectState[] {
    const names = fs
      .readdirSync(this.#dir)
      .filter((n) => n.endsWith('.json'))
      .sort();
    return names.map((name) => {
      const file = path.join(this.#dir, name);
      const state = JSON.parse(fs.readFileSync(file, 'utf8')) as ProjectState;
      if (state.version !== 2)
        throw new Error(`neon emulator: ${file} has unknown version ${String(state.version)}; delete the state directory to start over`);
      return state;
    });
  }

  /** Write-then-rename, so a crash never leaves a half-written state file. */
  save(state: ProjectState): void {
    const file = this.#file(state.settings.id);
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(state, null, 2), { mode: 0o600 });
    fs.renameSync(tmp, file);
  }

  remove(projectId: string): void {
    fs.rmSync(this.#file(projectId), { force: true });
  }

  #file(projectId: string): string {
    return path.join(this.#dir, `${projectId}.json`);
  }
}

/** Neon's timestamps: RFC 3339, UTC, whole seconds. */
export function timestamp(ms: number = Date.now()): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const ADJECTIVES = [
  'quiet',
  'bold',
  'small',
  'misty',
  'green',
  'lively',
  'still',
  'young',
  'wild',
  'calm',
  'dry',
  'late',
  'cold',
  'empty',
  'sweet',
  'red',
];
const NOUNS = [
  'term',
  'river',
  'smoke',
  'field',
  'moon',
  'bird',
  'leaf',
  'cloud',
  'wave',
  'hill',
  'rain',
  'frost',
  'star',
  'sea',
  'dust',
  'tree',
];

/**
 * Ids shaped like Neon's: `br-quiet-river-12345678`, `ep-bold-moon-87654321`, and for projects
 * `cold-bonus-61650555` (no prefix).
 */
export function neonId(prefix: 'br' | 'ep' | ''): string {
  const pick = (words: string[]) => words[crypto.randomInt(words.length)];
  const digits = String(crypto.randomInt(10_000_000, 100_000_000));
  return `${prefix === '' ? '' : `${prefix}-`}${pick(ADJECTIVES)}-${pick(NOUNS)}-${digits}`;
}
