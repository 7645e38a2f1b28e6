/**
 * The failure policy of every Neon API call (neon.ts makes the calls):
 * - each request is bounded in time (a request that hangs is a timeout);
 * - 423 (another operation holds the project's lock), 429 and 503 are always safe to replay:
 *   nothing was done. Retried with jittered exponential backoff, honouring Retry-After, until an
 *   overall deadline.
 * - Other 5xx, network errors and timeouts are replayed only for GET, PATCH and DELETE. A POST
 *   whose outcome is unknown is handed back as `AmbiguousPostError`: the caller must look before
 *   trying again, so nothing is ever created twice.
 * - A call that fails for good becomes one `NeonCallError` naming the call, the project, Neon's
 *   answer and a fix.
 */
import type { RawResult } from '@neon/sdk';
import type { Logger } from './io.js';

/** An API call that failed for good: names the call, the branch, Neon's answer and a fix. */
export class NeonCallError extends Error {
  constructor(
    message: string,
    /** Neon's HTTP status, when it answered. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'NeonCallError';
  }
}

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

export interface CallContext {
  /** What the call does, for messages: `create branch "backup-…"`. */
  what: string;
  method: Method;
  /** Project-level calls: a 404 means the project id is wrong. */
  projectScoped?: boolean;
  /** Branch-level DELETE: a 404 means the branch is already gone (the call returns undefined). */
  notFoundIsDone?: boolean;
}

/** One failed attempt, as read from Neon's answer (or its absence). */
export interface Failure {
  status?: number;
  code?: string;
  summary: string;
  /** No answer, a timeout or a 5xx: the request may or may not have been carried out. */
  transient: boolean;
  retryAfterMs?: number;
}

/**
 * A POST that got no usable answer (timeout, network error, 5xx other than 503): it may or may
 * not have been carried out, so the caller must look before trying again.
 */
export class AmbiguousPostError extends Error {
  constructor(readonly failure: Failure) {
    super(failure.summary);
  }
}

export interface CallPolicyOptions {
  projectId: string;
  log: Logger;
  /** One HTTP request; a request that hangs longer is treated as a timeout. */
  requestTimeoutMs: number;
  /** How long one call keeps retrying before giving up. */
  retryDeadlineMs: number;
}

const ALWAYS_RETRYABLE = new Set([423, 429, 503]);

export class CallPolicy {
  readonly retryDeadlineMs: number;
  private readonly projectId: string;
  private readonly log: Logger;
  private readonly requestTimeoutMs: number;

  constructor(opts: CallPolicyOptions) {
    this.projectId = opts.projectId;
    this.log = opts.log;
    this.requestTimeoutMs = opts.requestTimeoutMs;
    this.retryDeadlineMs = opts.retryDeadlineMs;
  }

  /**
   * One API call under the policy described at the top of this file. Returns the response body
   * (undefined on 404 for `notFoundIsDone`); throws AmbiguousPostError for a POST whose outcome is
   * unknown, NeonCallError for a call that failed for good.
   */
  async call<T>(ctx: CallContext, attempt: (signal: AbortSignal) => Promise<RawResult<T>>): Promise<T> {
    const started = Date.now();
    for (let n = 1; ; n++) {
      const signal = AbortSignal.timeout(this.requestTimeoutMs);
      let outcome: { data?: T; error?: unknown; response?: Response };
      try {
        outcome = await attempt(signal);
      } catch (e) {
        outcome = { data: undefined, error: e };
      }
      if (outcome.error === undefined) return outcome.data as T;

      const failure = describeFailure(outcome.error, outcome.response, signal.aborted, this.requestTimeoutMs);
      if (failure.status === 404 && ctx.notFoundIsDone) {
        this.log.debug(`Neon API: ${ctx.what}: already gone (404).`);
        return undefined as T;
      }
      const safeToReplay =
        (failure.status !== undefined && ALWAYS_RETRYABLE.has(failure.status)) || (ctx.method !== 'POST' && failure.transient);
      if (!safeToReplay) {
        if (ctx.method === 'POST' && failure.transient) throw new AmbiguousPostError(failure);
        throw this.error(ctx, failure, n);
      }
      const waitMs = backoffMs(n, failure.retryAfterMs);
      await this.pause(ctx, failure, n, started, waitMs, `retrying in ${(waitMs / 1000).toFixed(1)} s (attempt ${n + 1})`);
    }
  }

  /**
   * Waits `waitMs` before another attempt of a call begun at `started`, saying why and what comes
   * next; throws the call's final error instead when the wait would pass the retry deadline.
   */
  async pause(ctx: CallContext, failure: Failure, attempts: number, started: number, waitMs: number, next: string): Promise<void> {
    if (Date.now() + waitMs - started > this.retryDeadlineMs) throw this.error(ctx, failure, attempts, true);
    this.log.info(`Neon API: ${ctx.what}: ${failure.summary}; ${next}.`);
    await sleep(waitMs);
  }

  /** The error of a call that failed for good, with the fix for what Neon answered. */
  error(ctx: CallContext, f: Failure, attempts: number, gaveUp = false): NeonCallError {
    const tried = gaveUp ? ` (gave up after ${attempts} attempts in ${Math.round(this.retryDeadlineMs / 1000)} s)` : '';
    return new NeonCallError(
      `Neon API: ${ctx.what} in project "${this.projectId}" failed: ${f.summary}${tried}. Fix: ${fixHint(ctx, f, this.projectId)}`,
      f.status,
    );
  }
}

function describeFailure(error: unknown, response: Response | undefined, timedOut: boolean, timeoutMs: number): Failure {
  const e = (error ?? {}) as { kind?: string; status?: number; code?: string; message?: string; body?: unknown };
  const status = response?.status ?? (typeof e.status === 'number' ? e.status : undefined);
  const body = (e.body ?? error) as { code?: unknown; message?: unknown } | undefined;
  const code = typeof e.code === 'string' ? e.code : typeof body?.code === 'string' ? body.code : undefined;
  const message = typeof body?.message === 'string' ? body.message : typeof e.message === 'string' ? e.message : String(error);
  const retryAfterMs = retryAfterToMs(response?.headers.get('retry-after'));
  if (timedOut || e.kind === 'timeout') {
    return { summary: `no answer within ${Math.round(timeoutMs / 1000)} s`, transient: true };
  }
  if (status === undefined) {
    return { summary: `no response (${message})`, transient: true };
  }
  return {
    status,
    code,
    summary: `HTTP ${status}${code ? ` ${code}` : ''}: ${message}`,
    transient: status >= 500,
    retryAfterMs,
  };
}

function fixHint(ctx: CallContext, f: Failure, projectId: string): string {
  const text = `${f.code ?? ''} ${f.summary}`.toLowerCase();
  if (f.status === 401 || f.status === 403) return 'check the neon-api-key input: the key must be valid and have access to the project.';
  if (f.status === 404 && ctx.projectScoped)
    return `check the neon-project-id input: project "${projectId}" was not found for this API key.`;
  if (f.status === 404) return 'the branch or operation no longer exists; check the branch id or name given to the action.';
  if (text.includes('not allowed for your account')) {
    return "the project's Neon plan does not allow this; see the plan's limits in the Neon console, or upgrade the plan.";
  }
  if (text.includes('limit')) return "the project's plan limit was reached: delete unused branches in the Neon console or lower retain.";
  if (f.status === 423) return 'another operation kept the project locked; retry the run later.';
  if (f.status === 429) return 'the Neon API rate limit was hit; retry later or run less often.';
  if (f.status === undefined || f.status >= 500)
    return 'the Neon API is unavailable or slow; check neon-api-host and the Neon status page, then retry.';
  return 'check the inputs named above.';
}

/** Full-jitter exponential backoff (0.5 s doubling, capped at 10 s); honours Retry-After. */
export function backoffMs(attempt: number, retryAfterMs: number | undefined): number {
  const ceiling = Math.min(10_000, 500 * 2 ** (attempt - 1));
  const jittered = 100 + Math.random() * ceiling;
  return retryAfterMs !== undefined ? Math.max(retryAfterMs, jittered) : jittered;
}

/** The longest a Retry-After is obeyed: beyond it the call's own deadline decides. */
const MAX_RETRY_AFTER_MS = 60_000;

/**
 * `Retry-After` as milliseconds from now: delay-seconds or an HTTP date (RFC 9110 allows both);
 * undefined when absent or unreadable, 0 for a date already past.
 */
export function retryAfterToMs(value: string | null | undefined, now = Date.now()): number | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Math.min(MAX_RETRY_AFTER_MS, Number(text) * 1000);
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, at - now));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
