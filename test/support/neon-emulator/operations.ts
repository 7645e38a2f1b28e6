// Asynchronous operations as Neon reports them. A mutation does its work (copying data, starting
// or stopping a cluster) while its operations are 'running'; after the work, they take another
// operation delay to pass 'scheduling' -> 'running' -> 'finished', as a real compute start would.
// Status is derived from timestamps, so it survives a restart and needs no timers.
import crypto from 'node:crypto';
import type { Operation, OperationAction, OperationStatus } from '@neon/sdk';
import { timestamp, type OperationRecord, type ProjectState } from './state.js';

const KEPT_OPERATIONS = 500;

export class Operations {
  readonly #state: ProjectState;
  readonly #projectId: string;
  readonly #delayMs: number;

  constructor(state: ProjectState, projectId: string, delayMs: number) {
    this.#state = state;
    this.#projectId = projectId;
    this.#delayMs = delayMs;
  }

  /** Neon answers 423 to a mutation while any operation on the project is still in flight. */
  anyInFlight(now = Date.now()): boolean {
    return this.#state.operations.some((op) => !isTerminal(this.status(op, now)));
  }

  /** Records operations whose work is starting now. */
  begin(specs: Array<{ action: OperationAction; branchId?: string; endpointId?: string }>): OperationRecord[] {
    const createdMs = Date.now();
    const ops = specs.map((spec) => ({ id: crypto.randomUUID(), ...spec, createdMs, doneMs: null }));
    this.#state.operations.push(...ops);
    if (this.#state.operations.length > KEPT_OPERATIONS) this.#state.operations.splice(0, this.#state.operations.length - KEPT_OPERATIONS);
    return ops;
  }

  /** The work is done: the operations finish one operation delay from now. */
  complete(ops: OperationRecord[]): void {
    const doneMs = Date.now() + this.#delayMs;
    for (const op of ops) op.doneMs = doneMs;
  }

  fail(ops: OperationRecord[], message: string): void {
    const now = Date.now();
    for (const op of ops) {
      op.doneMs = now;
      op.error = message;
    }
  }

  find(id: string): OperationRecord | undefined {
    return this.#state.operations.find((op) => op.id === id);
  }

  /** True once every given operation finished (a branch or endpoint is usable only then). */
  allFinished(ids: readonly string[], now = Date.now()): boolean {
    return ids.every((id) => {
      const op = this.find(id);
      return op === undefined || this.status(op, now) === 'finished';
    });
  }

  /** When the last of the given operations finished, if all have. */
  finishedAt(ids: readonly string[]): number | undefined {
    let last = 0;
    for (const id of ids) {
      const op = this.find(id);
      if (op === undefined) continue;
      if (op.doneMs === null) return undefined;
      last = Math.max(last, op.doneMs);
    }
    return last === 0 ? undefined : last;
  }

  status(op: OperationRecord, now = Date.now()): OperationStatus {
    if (op.error !== undefined) return 'failed';
    if (op.doneMs === null) return 'running';
    if (now >= op.doneMs) return 'finished';
    return now < op.doneMs - this.#delayMs / 2 ? 'scheduling' : 'running';
  }

  toApi(op: OperationRecord, now = Date.now()): Operation {
    const status = this.status(op, now);
    const updatedMs = isTerminal(status) && op.doneMs !== null ? op.doneMs : now;
    return {
      id: op.id,
      project_id: this.#projectId,
      branch_id: op.branchId,
      endpoint_id: op.endpointId,
      action: op.action,
      status,
      error: op.error,
      failures_count: op.error === undefined ? 0 : 1,
      created_at: timestamp(op.createdMs),
      updated_at: timestamp(updatedMs),
      total_duration_ms: isTerminal(status) && op.doneMs !== null ? op.doneMs - op.createdMs : 0,
    } satisfies Operation;
  }

  /** Newest first, as Neon lists them. */
  list(now = Date.now()): Operation[] {
    return [...this.#state.operations].reverse().map((op) => this.toApi(op, now));
  }

  clear(): void {
    this.#state.operations.length = 0;
  }
}

function isTerminal(status: OperationStatus): boolean {
  return status === 'finished' || status === 'failed' || status === 'error' || status === 'cancelled' || status === 'skipped';
}
