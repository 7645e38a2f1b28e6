/**
 * Backup freshness: how old the newest backup may be (input max-backup-age). A scheduled backup
 * that silently stopped (a disabled schedule, a broken secret) still leaves older backups that
 * restore fine; only their age shows that nothing new arrives, so restore and validate check it.
 */
import { BACKUP_KIND, TOOL_ANNOTATION, findStandby, type BranchInfo, type NeonApi } from './neon.js';

const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
/** Ten years: longer is surely a typo, and keeps the milliseconds far inside a safe integer. */
const MAX_MS = 3650 * UNIT_MS.d;

/** `90m`, `26h`, `7d` -> milliseconds; a string saying what is wrong otherwise (the input is not secret). */
export function parseMaxAge(text: string): number | string {
  const m = /^(\d{1,7})\s*([mhd])$/.exec(text.trim());
  if (!m) return `must be a whole number followed by m (minutes), h (hours) or d (days), e.g. 26h for a daily schedule; got '${text}'`;
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  if (ms < UNIT_MS.m || ms > MAX_MS) return `must be from 1m to 3650d; got '${text}'`;
  return ms;
}

/** 93784000 -> '1d 2h 3m': the age in the units people read a schedule in. */
export function formatAge(ms: number): string {
  const minutes = Math.floor(ms / UNIT_MS.m);
  const d = Math.floor(minutes / 1440);
  const h = Math.floor((minutes % 1440) / 60);
  const min = minutes % 60;
  const parts = [d ? `${d}d` : '', h ? `${h}h` : '', min || (!d && !h) ? `${min}m` : ''].filter(Boolean);
  return parts.join(' ');
}

export interface Freshness {
  ok: boolean;
  /** One line naming the newest backup and its age, and what to do when it is too old. */
  detail: string;
}

/**
 * Judges the newest of `branches` that this tool made as a backup (of `standbyId` when given).
 * A backup branch is created only after its backup committed, so its creation time is when the
 * newest completed backup became available.
 */
export function judgeFreshness(
  branches: readonly BranchInfo[],
  opts: { maxAgeMs: number; maxAgeText: string; now: Date; standbyId?: string },
): Freshness {
  const backups = branches
    .filter((b) => b.annotations[TOOL_ANNOTATION] === BACKUP_KIND)
    .filter((b) => opts.standbyId === undefined || b.annotations['standby-branch-id'] === opts.standbyId)
    .sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
  const newest = backups[0];
  const fix =
    'check that the backup workflow still runs (schedules stop after 60 days without repository activity) and that its last run succeeded';
  if (!newest) {
    return {
      ok: false,
      detail: `no completed backup exists, so none is younger than max-backup-age ${opts.maxAgeText}: run mode backup, then ${fix}`,
    };
  }
  const age = Math.max(0, opts.now.getTime() - Date.parse(newest.createdAt));
  const what = `the newest completed backup "${newest.name}" (${newest.id}) is ${formatAge(age)} old (made ${newest.createdAt})`;
  if (age > opts.maxAgeMs) return { ok: false, detail: `${what}, older than max-backup-age ${opts.maxAgeText}: ${fix}` };
  return { ok: true, detail: `${what}, within max-backup-age ${opts.maxAgeText}` };
}

/**
 * The freshness of this standby's newest backup, read from the Neon API (the standby is the branch
 * behind neon-database-url; when it cannot be identified, every backup of the project counts).
 */
export async function backupFreshness(
  neon: Pick<NeonApi, 'listBranches' | 'findBranchByEndpoint'>,
  opts: { neonDatabaseUrl: string; maxAgeMs: number; maxAgeText: string; now?: Date },
): Promise<Freshness> {
  const standby = await findStandby(neon, opts).catch(() => undefined);
  return judgeFreshness(await neon.listBranches(), { ...opts, now: opts.now ?? new Date(), standbyId: standby?.id });
}
