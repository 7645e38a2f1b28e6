/**
 * Retention: which of this product's branches to delete, and deleting them.
 *
 * `planRetention` is pure (branches in, decisions out) so every rule is unit-tested without a
 * server; `applyRetention` carries a plan out, one log line per branch; `planRoom` is the check a
 * mode runs before any work (does the project have room, or can retention make it safely?), and
 * `ensureRoomForBranches` makes that room right before a branch is created.
 *
 * Rules (each decision carries its reason):
 * - Only branches annotated by this product are ever considered; backups only when they were taken
 *   from this standby (`standby-branch-id`), so two configurations sharing a project keep apart.
 * - Backups: keep the newest `retain`; delete the rest, and also any older than `retainDays` when
 *   set. The newest backup is never deleted, whatever the settings.
 * - Temporary branches (restore's and recover's): delete once past their `expires_at`, or, without
 *   one, once older than the restore TTL.
 * - Never the project's default branch, never the standby, never a branch protected in Neon (it
 *   still counts toward the limit), never a protected id (the branch a run is using), never a
 *   branch with children (Neon refuses; the child would lose its parent):
 *   these are skipped and reported. A child that is itself deleted in the same plan does not block
 *   its parent; deletions are ordered children first.
 */
import type { Logger } from './io.js';
import { BACKUP_KIND, TEMPORARY_KIND, TOOL_ANNOTATION, newestFirst, type BranchInfo, type NeonApi, type ToolBranchKind } from './neon.js';

/** Neon's free plan (and Launch) branch limit; shown as an estimate only, never used to delete. */
export const FREE_PLAN_BRANCH_LIMIT = 10;

export interface RetentionInput {
  /** Every branch of the project, as `NeonApi.listBranches` returns them. */
  branches: readonly BranchInfo[];
  /** The standby branch (the one `neon-database-url` points at). */
  standbyId: string;
  /** Backups to keep, newest first (at least 1 is always kept). */
  retain: number;
  /** Delete backups older than this many days; undefined = no age limit. */
  retainDays?: number;
  /** Temporary branches without an expiry are deleted once older than this. */
  restoreTtlMinutes: number;
  now: Date;
  /** Which kinds to plan for (default both): restore and recover sweep only temporary branches. */
  kinds?: readonly ToolBranchKind[];
  /** Ids never to delete here, e.g. the branch the current run just made or is using. */
  protect?: readonly string[];
}

export interface SkippedBranch {
  branch: BranchInfo;
  reason: string;
}

export interface RetentionPlan {
  /** Branches to delete, in order (children before parents). */
  delete: BranchInfo[];
  /** Why each branch in `delete` goes, keyed by branch id. */
  reasons: Record<string, string>;
  /** This standby's backup branches that stay, newest first. */
  keep: BranchInfo[];
  /** Branches retention would delete but must not, with why. */
  skipped: SkippedBranch[];
}

const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;

export function planRetention(input: RetentionInput): RetentionPlan {
  const kinds = new Set<ToolBranchKind>(input.kinds ?? [BACKUP_KIND, TEMPORARY_KIND]);
  const protectedIds = new Set(input.protect ?? []);
  const now = input.now.getTime();

  // Candidates with their reason; whether each may really go is decided below.
  const wanted: { branch: BranchInfo; reason: string }[] = [];
  const keep: BranchInfo[] = [];

  if (kinds.has(TEMPORARY_KIND)) {
    for (const b of input.branches.filter((x) => x.annotations[TOOL_ANNOTATION] === TEMPORARY_KIND).sort(newestFirst)) {
      const reason = temporaryBranchExpiry(b, now, input.restoreTtlMinutes);
      if (reason) wanted.push({ branch: b, reason });
    }
  }

  if (kinds.has(BACKUP_KIND)) {
    const backups = input.branches
      .filter((b) => b.annotations[TOOL_ANNOTATION] === BACKUP_KIND && b.annotations['standby-branch-id'] === input.standbyId)
      .sort(newestFirst);
    const retain = Math.max(1, Math.floor(input.retain));
    backups.forEach((b, index) => {
      const ageDays = (now - Date.parse(b.createdAt)) / DAY_MS;
      let reason: string | undefined;
      if (index === 0)
        reason = undefined; // the newest backup is never deleted
      else if (index >= retain) reason = `beyond retain=${input.retain} (backup #${index + 1}, newest first)`;
      else if (input.retainDays !== undefined && ageDays > input.retainDays) {
        reason = `older than retain-days=${input.retainDays} (${ageDays.toFixed(1)} days)`;
      }
      if (reason) wanted.push({ branch: b, reason });
      else keep.push(b);
    });
  }

  // Walk the candidates children-first so a parent whose only children go in this same plan may go
  // too; a child that must stay keeps its parent.
  const wantedIds = new Set(wanted.map((w) => w.branch.id));
  const deleting = new Set<string>();
  const skipped: SkippedBranch[] = [];
  const childrenOf = (id: string) => input.branches.filter((b) => b.parentId === id);
  const decided = new Map<string, boolean>();

  const decide = (w: { branch: BranchInfo; reason: string }): boolean => {
    const b = w.branch;
    const known = decided.get(b.id);
    if (known !== undefined) return known;
    decided.set(b.id, false); // cycle guard; a branch tree has none, but never loop on bad data
    let blocker: string | undefined;
    if (b.isDefault) blocker = 'it is the project default branch';
    else if (b.id === input.standbyId) blocker = 'it is the standby';
    else if (b.protected)
      blocker =
        'it is protected in Neon (it cannot be deleted and still counts toward the branch limit; unprotect it in the Neon console to let retention remove it)';
    else if (protectedIds.has(b.id)) blocker = 'it is in use by this run';
    else {
      const children = childrenOf(b.id);
      const staying = children.filter((c) => {
        const cw = wanted.find((x) => x.branch.id === c.id);
        return !(cw && wantedIds.has(c.id) && decide(cw));
      });
      if (staying.length > 0) {
        blocker = `it has child branch${staying.length > 1 ? 'es' : ''} ${staying.map((c) => `"${c.name}" (${c.id})`).join(', ')}`;
      }
    }
    if (blocker) {
      skipped.push({ branch: b, reason: `would be deleted (${w.reason}) but ${blocker}` });
      decided.set(b.id, false);
      return false;
    }
    decided.set(b.id, true);
    deleting.add(b.id);
    return true;
  };
  wanted.forEach(decide);

  // Children before parents, so Neon never sees a parent deleted while its child still exists.
  const order: BranchInfo[] = [];
  const placed = new Set<string>();
  const place = (b: BranchInfo) => {
    if (placed.has(b.id)) return;
    placed.add(b.id);
    for (const c of childrenOf(b.id)) if (deleting.has(c.id)) place(c);
    order.push(b);
  };
  for (const w of wanted) if (deleting.has(w.branch.id)) place(w.branch);

  const reasons: Record<string, string> = {};
  for (const w of wanted) if (deleting.has(w.branch.id)) reasons[w.branch.id] = w.reason;
  // A backup that had to stay is still kept: list it with the others.
  for (const s of skipped) if (s.branch.annotations[TOOL_ANNOTATION] === BACKUP_KIND) keep.push(s.branch);
  keep.sort(newestFirst);
  return { delete: order, reasons, keep, skipped };
}

function temporaryBranchExpiry(b: BranchInfo, now: number, ttlMinutes: number): string | undefined {
  if (b.expiresAt !== undefined) {
    const expires = Date.parse(b.expiresAt);
    return Number.isFinite(expires) && expires <= now ? `restore-test branch expired at ${b.expiresAt}` : undefined;
  }
  const ageMinutes = (now - Date.parse(b.createdAt)) / MINUTE_MS;
  return ageMinutes > ttlMinutes ? `restore-test branch older than ${ttlMinutes} minutes (${Math.floor(ageMinutes)} minutes)` : undefined;
}

/**
 * Deletes what the plan says, logging each action and each skip on its own line. A branch that
 * fails to delete is reported as a warning and the rest continue: retention never fails the run
 * that already did its work. Returns the branches actually deleted.
 */
export async function applyRetention(neon: Pick<NeonApi, 'deleteBranch'>, plan: RetentionPlan, io: { log: Logger }): Promise<BranchInfo[]> {
  for (const s of plan.skipped) io.log.info(`Retention: keeping "${s.branch.name}" (${s.branch.id}): ${s.reason}.`);
  const deleted: BranchInfo[] = [];
  for (const b of plan.delete) {
    const reason = plan.reasons[b.id] ?? 'retention';
    try {
      await neon.deleteBranch(b.id);
      io.log.info(`Retention: deleted "${b.name}" (${b.id}, created ${b.createdAt}): ${reason}.`);
      deleted.push(b);
    } catch (e) {
      io.log.warn(`Retention: could not delete "${b.name}" (${b.id}): ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (plan.delete.length === 0) io.log.info(`Retention: nothing to delete (${plan.keep.length} backup branch(es) kept).`);
  return deleted;
}

/** Existing branches and new ones against a project's branch limit. */
export interface BranchBudget {
  /** Whether the new branches fit beside the existing ones. */
  fits: boolean;
  /** Existing and new branches together. */
  total: number;
  /** How many branches too many (0 when they fit). */
  short: number;
  /** The retain under which they would fit, each kept backup being one branch; below 1 when none does. */
  retainThatFits: number;
}

/**
 * The branch-limit arithmetic, shared by the room check before a branch is made (planRoom) and
 * validate's estimate of a project at rest: `existing` branches plus `needed` new ones against
 * `limit`, and the retain (now `retain`) that would make room.
 */
export function branchBudget(a: { existing: number; needed: number; limit: number; retain: number }): BranchBudget {
  const total = a.existing + a.needed;
  const short = Math.max(0, total - a.limit);
  return { fits: short === 0, total, short, retainThatFits: a.retain - short };
}

export interface RoomRequest {
  /** Branches the caller is about to create. */
  needed: number;
  /**
   * The project's branch limit as Neon reports it (`getProject().branchLimit`). Undefined when
   * Neon does not say: then nothing is deleted to make room (guessing the free plan's 10 would
   * prune a paid project's backups down to a limit it does not have); Neon refuses the create if
   * the project is really full, and the run says so.
   */
  limit: number | undefined;
  standbyId: string;
  retain: number;
  retainDays?: number;
  restoreTtlMinutes: number;
  /**
   * Kinds retention may delete to make room: backup mode passes both, restore and recover only
   * temporary branches. Only what retention would delete anyway goes (expired restore tests, backups
   * beyond `retain` or past `retainDays`); never one of the `retain` newest backups (see planRoom).
   */
  kinds?: readonly ToolBranchKind[];
  protect?: readonly string[];
  now?: Date;
}

export interface RoomPlan {
  /** Deletions that make room (possibly none). */
  plan: RetentionPlan;
  /** Whether `needed` more branches fit once `plan` is carried out (always true when the limit is unknown). */
  enough: boolean;
  /** When not enough: why, what exists and how to fix it. */
  problem?: string;
}

/**
 * What making room for `needed` branches would delete, without deleting anything.
 *
 * Why a backup within `retain` is never deleted to make room: Neon has no "replace", and a project
 * at its limit cannot hold the new backup and all `retain` old ones at once. The only order that
 * would fit (delete an old backup, then create the new one) leaves `retain - 1` completed backups
 * whenever the run stops between the two steps (killed, cancelled, Neon down), and nothing this
 * tool does afterwards brings the deleted backup back. There is no safe order, so the run refuses
 * before it changes anything and says how to make room (lower `retain`, delete or unprotect other
 * branches, raise the plan's limit).
 */
export function planRoom(branches: readonly BranchInfo[], req: RoomRequest): RoomPlan {
  const none: RetentionPlan = { delete: [], reasons: {}, keep: [], skipped: [] };
  if (
    req.limit === undefined ||
    branchBudget({ existing: branches.length, needed: req.needed, limit: req.limit, retain: req.retain }).fits
  ) {
    return { plan: none, enough: true };
  }

  const kinds = req.kinds ?? [BACKUP_KIND, TEMPORARY_KIND];
  const plan = planRetention({
    branches,
    standbyId: req.standbyId,
    retain: req.retain,
    retainDays: req.retainDays,
    restoreTtlMinutes: req.restoreTtlMinutes,
    now: req.now ?? new Date(),
    kinds,
    protect: req.protect,
  });
  const remaining = branches.length - plan.delete.length;
  const kept = plan.keep.length;
  // Retention with a lower retain deletes the oldest kept backups before the snapshot: enough of them.
  const budget = branchBudget({ existing: remaining, needed: req.needed, limit: req.limit, retain: Math.min(req.retain, kept) });
  if (budget.fits) return { plan, enough: true };

  const going = new Set(plan.delete.map((b) => b.id));
  const left = branches.filter((b) => !going.has(b.id));
  const protectedOnes = left.filter((b) => b.protected);
  const listing = left
    .map((b) => {
      const tags = [b.isDefault ? 'default' : undefined, b.protected ? 'protected' : undefined, b.annotations[TOOL_ANNOTATION]].filter(
        Boolean,
      );
      return `"${b.name}" (${b.id}${tags.length > 0 ? `, ${tags.join(', ')}` : ''})`;
    })
    .join(', ');
  const why = !kinds.includes(BACKUP_KIND)
    ? 'Only expired restore-test branches are deleted to make room here, and none is left. '
    : kept === 0
      ? 'No branch that supaneon-sync made for this standby can go. '
      : kept === 1
        ? 'The only backup of this standby is the newest, which retention never deletes. '
        : `Making room would mean deleting one of the ${kept} backup(s) that retain=${req.retain} keeps before the new backup exists, ` +
          `and a run stopped in between would leave fewer than ${Math.min(req.retain, kept)} completed backups: supaneon-sync never deletes a kept backup before its replacement exists. `;
  const fewer = budget.retainThatFits;
  const lowerRetain = kinds.includes(BACKUP_KIND) && fewer >= 1 ? `lower retain to ${fewer}, ` : '';
  return {
    plan,
    enough: false,
    problem:
      `The Neon project's branch limit (${req.limit}) leaves no room: ${remaining} branches exist` +
      `${plan.delete.length > 0 ? ` once retention has deleted ${plan.delete.length}` : ''} and this run needs ${req.needed} more. ${why}` +
      (protectedOnes.length > 0 ? `${protectedOnes.length} protected branch(es) count toward the limit and are never deleted. ` : '') +
      `Branches: ${listing}. ` +
      `Fix: ${lowerRetain}delete or unprotect branches you no longer need in the Neon console, or raise the plan's branch limit.`,
  };
}

/**
 * Makes sure `needed` more branches fit under the project's branch limit, deleting only what
 * retention would delete anyway (see planRoom). Throws, naming the limit and every branch, when
 * that is not enough. Returns the branches deleted (empty when there was room or the limit is unknown).
 * Call it as late as possible, right before the branch is created.
 */
export async function ensureRoomForBranches(
  neon: Pick<NeonApi, 'listBranches' | 'deleteBranch'>,
  req: RoomRequest,
  io: { log: Logger },
): Promise<BranchInfo[]> {
  if (req.limit === undefined) {
    io.log.info(
      "Retention: Neon does not report this project's branch limit, so no branch is deleted to make room; retention runs after the new branch exists.",
    );
    return [];
  }
  const branches = await neon.listBranches();
  const room = planRoom(branches, req);
  if (room.plan.delete.length === 0 && room.plan.skipped.length === 0 && room.enough) return [];
  if (!room.enough) throw new Error(room.problem);
  io.log.info(
    `Retention: the project has ${branches.length} of its ${req.limit} branches and this run needs ${req.needed} more; applying retention first.`,
  );
  const deleted = await applyRetention(neon, room.plan, io);
  if (branchBudget({ existing: branches.length - deleted.length, needed: req.needed, limit: req.limit, retain: req.retain }).fits)
    return deleted;
  throw new Error(
    `The Neon project's branch limit (${req.limit}) leaves no room: retention could delete only ${deleted.length} of ${room.plan.delete.length} branch(es) ` +
      '(see the warnings above) and this run needs ' +
      `${req.needed} more. Fix: delete branches you no longer need in the Neon console, or retry the run.`,
  );
}
