// Fault injection, per project: the next `count` API calls on that project whose method and path
// match answer an error (or never answer) instead of doing anything; with `after`, they do their
// work first and only their answer is replaced, as a dropped connection after a successful POST.
import { ApiError } from './errors.js';

export type FaultStatus = 423 | 429 | 500 | 503 | 'hang';

export interface Fault {
  status: FaultStatus;
  count: number;
  method?: string;
  path?: string;
  after?: boolean;
}

export const FAULT_BODIES: Record<Exclude<FaultStatus, 'hang'>, { code: string; message: string }> = {
  423: { code: 'LOCKED', message: 'project already has running conflicting operations, scheduling of new ones is prohibited' },
  429: { code: 'TOO_MANY_REQUESTS', message: 'rate limit exceeded, retry later' },
  500: { code: 'INTERNAL_ERROR', message: 'internal server error' },
  503: { code: 'SERVICE_UNAVAILABLE', message: 'service is temporarily unavailable, retry later' },
};

export class Faults {
  readonly #pending: Fault[] = [];

  list(): Fault[] {
    return this.#pending;
  }

  add(body: unknown): void {
    this.#pending.push(parseFault(body));
  }

  clear(): void {
    this.#pending.length = 0;
  }

  /** Consumes one use of the first fault matching this call. */
  take(method: string, pathAndQuery: string): Fault | undefined {
    const index = this.#pending.findIndex(
      (f) => (f.method === undefined || f.method === method) && (f.path === undefined || pathAndQuery.includes(f.path)),
    );
    if (index === -1) return undefined;
    const fault = this.#pending[index];
    fault.count -= 1;
    if (fault.count === 0) this.#pending.splice(index, 1);
    return fault;
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
