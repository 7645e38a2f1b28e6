// The emulator's persisted model: the project's branches, their endpoints and annotations, and the
// operations. Saved as one JSON file in the state directory after every change, so a restarted
// emulator serves the same branches over the same data directories.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { OperationAction } from '@neon/sdk';

import type { PlanName } from './plan.js';

export interface EndpointRecord {
  id: string;
  /** The endpoint's host is 127.0.0.<hostNumber>. */
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
  /** The role's password on this branch; absent = EMULATOR_ROLE_PASSWORD (as before passwords were per branch). */
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

export interface EmulatorState {
  version: 1;
  projectCreatedAt: string;
  /** The project's plan; absent = EMULATOR_PLAN. */
  plan?: PlanName;
  branches: BranchRecord[];
  operations: OperationRecord[];
}

export class StateStore {
  readonly #file: string;

  constructor(stateDir: string) {
    this.#file = path.join(stateDir, 'state.json');
  }

  load(): EmulatorState | undefined {
    if (!fs.existsSync(this.#file)) return undefined;
    const state = JSON.parse(fs.readFileSync(this.#file, 'utf8')) as EmulatorState;
    if (state.version !== 1) throw new Error(`neon emulator: ${this.#file} has unknown version ${String(state.version)}; delete the state directory to start over`);
    return state;
  }

  /** Write-then-rename, so a crash never leaves a half-written state file. */
  save(state: EmulatorState): void {
    const tmp = `${this.#file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(state, null, 2));
    fs.renameSync(tmp, this.#file);
  }
}

/** Neon's timestamps: RFC 3339, UTC, whole seconds. */
export function timestamp(ms: number = Date.now()): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const ADJECTIVES = ['quiet', 'bold', 'small', 'misty', 'green', 'lively', 'still', 'young', 'wild', 'calm', 'dry', 'late', 'cold', 'empty', 'sweet', 'red'];
const NOUNS = ['term', 'river', 'smoke', 'field', 'moon', 'bird', 'leaf', 'cloud', 'wave', 'hill', 'rain', 'frost', 'star', 'sea', 'dust', 'tree'];

/** Ids shaped like Neon's: `br-quiet-river-12345678`, `ep-bold-moon-87654321`. */
export function neonId(prefix: 'br' | 'ep'): string {
  const pick = (words: string[]) => words[crypto.randomInt(words.length)];
  const digits = String(crypto.randomInt(10_000_000, 100_000_000));
  return `${prefix}-${pick(ADJECTIVES)}-${pick(NOUNS)}-${digits}`;
}
