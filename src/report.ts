/**
 * Reporting helpers shared by every mode: the check every mode reports in and its table, Markdown
 * tables for the job summary, human units, and per-collection progress lines for long copies.
 */
import type { Logger } from './io.js';
import { markdownText } from './log-safety.js';

export { markdownText } from './log-safety.js';

/** A table cell that is Markdown this product wrote (e.g. `**FAIL**`), placed as it is. */
export interface MarkdownCell {
  readonly markdown: string;
}

export function asMarkdown(markdown: string): MarkdownCell {
  return { markdown };
}

export type Cell = string | number | MarkdownCell;

function cell(value: Cell): string {
  // Everything else is text, often from user data (collection names, server messages): escaped so
  // that '|' cannot end the cell, a line break cannot end the row, and HTML or emphasis renders as text.
  return typeof value === 'object' ? value.markdown.replace(/\r?\n/g, ' ') : markdownText(value);
}

export function markdownTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const line = (cells: readonly Cell[]) => `| ${cells.map(cell).join(' | ')} |`;
  return [line(headers), `|${headers.map(() => ' --- ').join('|')}|`, ...rows.map(line)].join('\n') + '\n';
}

/** `skipped`: not attempted because a check it depends on failed (nothing was proven). */
export type CheckStatus = 'pass' | 'fail' | 'notice' | 'skipped';

/**
 * One check, the form every mode reports in: restore's checks of a backup, validate's checks of
 * the services, recover's read-back of each collection.
 */
export interface Check {
  /** What was checked: `db.collection`, a label such as `(manifest)` / `(user check 2)`, or an area. */
  subject: string;
  /** The check's name. */
  check: string;
  status: CheckStatus;
  /** The numbers behind the verdict, or what went wrong. */
  detail: string;
}

const RESULT_CELLS: Record<CheckStatus, Cell> = { pass: 'pass', fail: asMarkdown('**FAIL**'), notice: 'notice', skipped: 'not checked' };

/** A column of a checks table: its header and each check's cell. */
export type CheckColumn<C extends Check> = readonly [header: string, cell: (check: C) => Cell];

/**
 * The job-summary table of checks, one row per check: the columns that say what was checked (each
 * mode's own), then Result and Details. Details is left out when no check has any (every
 * collection of a recover verified), so a passing row ends in its result.
 */
export function checkTable<C extends Check>(columns: readonly CheckColumn<C>[], checks: readonly C[]): string {
  const details = checks.some((c) => c.detail !== '');
  return markdownTable(
    [...columns.map(([header]) => header), 'Result', ...(details ? ['Details'] : [])],
    checks.map((c) => [...columns.map(([, cellOf]) => cellOf(c)), RESULT_CELLS[c.status], ...(details ? [c.detail] : [])]),
  );
}

const LOG_PREFIXES: Record<CheckStatus, string> = { pass: 'PASS', fail: 'FAIL', notice: 'NOTE', skipped: 'SKIP' };

/** One log line per check: failures as errors, notices as warnings. */
export function logCheck(log: Logger, r: Check): void {
  const line = `${LOG_PREFIXES[r.status]} ${r.subject}: ${r.check}: ${r.detail}`;
  if (r.status === 'fail') log.error(line);
  else if (r.status === 'notice') log.warn(line);
  else log.info(line);
}

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];

/** 1536 -> "1.5 KB" (powers of 1024, as MongoDB and Neon report sizes). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return 'unknown';
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value < 10 ? value.toFixed(1) : Math.round(value)} ${UNITS[unit]}`;
}

/** Seconds -> "850 ms", "12.3 s", "4 min 05 s", "2 h 03 min". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return 'unknown';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const total = Math.round(seconds);
  if (total < 3600) return `${Math.floor(total / 60)} min ${String(total % 60).padStart(2, '0')} s`;
  return `${Math.floor(total / 3600)} h ${String(Math.floor((total % 3600) / 60)).padStart(2, '0')} min`;
}

export interface ProgressOptions {
  /** Estimated number of documents (e.g. estimatedDocumentCount); enables the ETA. */
  total?: number;
  /** Minimum time between two lines, ms (10 s: frequent enough to show life, rare enough to read). */
  intervalMs?: number;
  /** Clock in ms; injectable so tests need not wait. */
  now?: () => number;
}

/** Progress of one collection's copy: call add() per document or batch; lines at most every interval. */
export class Progress {
  private documents = 0;
  private bytes = 0;
  private readonly started: number;
  private lastLine: number;
  private readonly intervalMs: number;
  private readonly now: () => number;

  constructor(
    private readonly label: string,
    private readonly log: Logger,
    private readonly opts: ProgressOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.intervalMs = opts.intervalMs ?? 10_000;
    this.started = this.now();
    this.lastLine = this.started;
  }

  add(documents: number, bytes: number): void {
    this.documents += documents;
    this.bytes += bytes;
    const t = this.now();
    if (t - this.lastLine >= this.intervalMs) {
      this.lastLine = t;
      this.log.info(this.line(t));
    }
  }

  /** The final line for this collection, whatever the interval. */
  done(): void {
    this.log.info(`${this.line(this.now())} (done)`);
  }

  private line(t: number): string {
    const seconds = Math.max((t - this.started) / 1000, 0.001);
    const rate = this.documents / seconds;
    let text =
      `${this.label}: ${this.documents.toLocaleString('en-US')} documents, ${(this.bytes / 1048576).toFixed(1)} MB, ` +
      `${Math.round(rate).toLocaleString('en-US')} docs/s`;
    const total = this.opts.total;
    if (total !== undefined && total > 0) {
      const pct = Math.min(100, (this.documents / total) * 100);
      text += `, ${pct.toFixed(0)}% of ~${total.toLocaleString('en-US')}`;
      const remaining = total - this.documents;
      if (remaining > 0 && rate > 0) text += `, ETA ${formatDuration(remaining / rate)}`;
    }
    return text;
  }
}
