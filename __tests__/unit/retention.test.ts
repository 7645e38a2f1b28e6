import { describe, expect, test } from '@jest/globals';
import { planRetention, planRoom, applyRetention, ensureRoomForBranches, type RetentionInput } from '../../src/retention.js';
import { TOOL_ANNOTATION, type BranchInfo } from '../../src/neon.js';
import type { Logger } from '../../src/io.js';

const NOW = new Date('2026-06-15T12:00:00Z');
const STANDBY = 'br-standby';

function at(hoursAgo: number): string {
  return new Date(NOW.getTime() - hoursAgo * 3_600_000).toISOString();
}

function standby(): BranchInfo {
  return { id: STANDBY, name: 'main', createdAt: at(24 * 100), isDefault: true, annotations: {} };
}

function backup(n: number, hoursAgo: number, extra: Partial<BranchInfo> = {}): BranchInfo {
  return {
    id: `br-backup-${n}`,
    name: `backup-${n}`,
    parentId: STANDBY,
    createdAt: at(hoursAgo),
    isDefault: false,
    annotations: { [TOOL_ANNOTATION]: 'backup', 'run-id': `run-${n}`, 'standby-branch-id': STANDBY },
    ...extra,
  };
}

function restoreTest(n: number, parentId: string, hoursAgo: number, expiresAt?: string): BranchInfo {
  return {
    id: `br-restore-${n}`,
    name: `restore-test-${n}`,
    parentId,
    createdAt: at(hoursAgo),
    ...(expiresAt ? { expiresAt } : {}),
    isDefault: false,
    annotations: { [TOOL_ANNOTATION]: 'restore-test', 'backup-branch-id': parentId },
  };
}

function plan(branches: BranchInfo[], over: Partial<RetentionInput> = {}) {
  return planRetention({ branches, standbyId: STANDBY, retain: 3, restoreTtlMinutes: 60, now: NOW, ...over });
}

const ids = (bs: BranchInfo[]) => bs.map((b) => b.id);

describe('planRetention: backups', () => {
  test('keeps the newest `retain` backups and deletes the rest, oldest included', () => {
    // Shuffled input order: the plan must sort by creation time, not trust the list order.
    const branches = [standby(), backup(2, 48), backup(5, 1), backup(1, 72), backup(4, 10), backup(3, 30)];
    const p = plan(branches);
    expect(ids(p.keep)).toEqual(['br-backup-5', 'br-backup-4', 'br-backup-3']);
    expect(ids(p.delete).sort()).toEqual(['br-backup-1', 'br-backup-2']);
    expect(p.reasons['br-backup-1']).toMatch(/beyond retain=3/);
    expect(p.skipped).toEqual([]);
  });

  test('nothing to delete when there are no more than `retain` backups', () => {
    const p = plan([standby(), backup(1, 5), backup(2, 4)]);
    expect(p.delete).toEqual([]);
    expect(ids(p.keep)).toEqual(['br-backup-2', 'br-backup-1']);
  });

  test('retain-days deletes older backups within the count, but never the newest', () => {
    const branches = [standby(), backup(1, 24 * 20), backup(2, 24 * 10), backup(3, 24 * 2)];
    const p = plan(branches, { retain: 10, retainDays: 7 });
    expect(ids(p.delete).sort()).toEqual(['br-backup-1', 'br-backup-2']);
    expect(p.reasons['br-backup-2']).toMatch(/older than retain-days=7/);
    expect(ids(p.keep)).toEqual(['br-backup-3']);

    // Every backup older than the limit: the newest stays anyway.
    const old = plan([standby(), backup(1, 24 * 20), backup(2, 24 * 10)], { retain: 10, retainDays: 1 });
    expect(ids(old.delete)).toEqual(['br-backup-1']);
    expect(ids(old.keep)).toEqual(['br-backup-2']);
  });

  test('retain below 1 still keeps the newest backup', () => {
    const p = plan([standby(), backup(1, 3), backup(2, 2)], { retain: 0 });
    expect(ids(p.keep)).toEqual(['br-backup-2']);
    expect(ids(p.delete)).toEqual(['br-backup-1']);
  });

  test('never touches branches this product did not make, even with a backup-like name', () => {
    const foreign: BranchInfo = {
      id: 'br-user',
      name: 'backup-20200101T000000Z',
      parentId: STANDBY,
      createdAt: at(24 * 300),
      isDefault: false,
      annotations: {},
    };
    const otherTool: BranchInfo = { ...foreign, id: 'br-other', annotations: { owner: 'someone' } };
    const p = plan([standby(), foreign, otherTool, backup(1, 2), backup(2, 1)], { retain: 1, retainDays: 1 });
    expect(ids(p.delete)).toEqual(['br-backup-1']);
    expect(ids(p.delete)).not.toContain('br-user');
    expect(ids(p.delete)).not.toContain('br-other');
  });

  test("leaves another standby's backups alone", () => {
    const elsewhere = backup(9, 24 * 50, {
      annotations: { [TOOL_ANNOTATION]: 'backup', 'run-id': 'r9', 'standby-branch-id': 'br-other-standby' },
    });
    const p = plan([standby(), elsewhere, backup(1, 2), backup(2, 1)], { retain: 1 });
    expect(ids(p.delete)).toEqual(['br-backup-1']);
    expect(ids(p.keep)).toEqual(['br-backup-2']);
  });

  test('never the default branch or the standby, even if annotated as a backup', () => {
    const weirdDefault = backup(1, 100, { isDefault: true });
    const weirdStandby = { ...backup(2, 90), id: STANDBY };
    const p = plan([weirdStandby, weirdDefault, backup(3, 2), backup(4, 1)], { retain: 1 });
    expect(ids(p.delete)).toEqual(['br-backup-3']);
    const reasons = p.skipped.map((s) => `${s.branch.id}: ${s.reason}`);
    expect(reasons).toEqual(
      expect.arrayContaining([expect.stringMatching(/br-backup-1: .*default branch/), expect.stringMatching(/br-standby: .*standby/)]),
    );
  });

  test('a backup with a child that stays is skipped, and the reason names the child', () => {
    const userChild: BranchInfo = {
      id: 'br-dev',
      name: 'dev-from-backup',
      parentId: 'br-backup-1',
      createdAt: at(5),
      isDefault: false,
      annotations: {},
    };
    const p = plan([standby(), backup(1, 50), backup(2, 2), backup(3, 1), userChild], { retain: 1 });
    expect(ids(p.delete)).toEqual(['br-backup-2']);
    expect(p.skipped).toHaveLength(1);
    expect(p.skipped[0].branch.id).toBe('br-backup-1');
    expect(p.skipped[0].reason).toMatch(/child branch "dev-from-backup" \(br-dev\)/);
    // A backup that must stay is reported among the kept ones.
    expect(ids(p.keep)).toEqual(['br-backup-3', 'br-backup-1']);
  });

  test('a backup whose only child is an expired restore test goes, the child first', () => {
    const expiredChild = restoreTest(1, 'br-backup-1', 3, at(1));
    const p = plan([standby(), backup(1, 50), backup(2, 1), expiredChild], { retain: 1 });
    expect(ids(p.delete)).toEqual(['br-restore-1', 'br-backup-1']);
    expect(p.skipped).toEqual([]);
  });

  test('a backup with a live restore test keeps; a protected id is never deleted', () => {
    const live = restoreTest(1, 'br-backup-1', 0.2, new Date(NOW.getTime() + 3_000_000).toISOString());
    const p = plan([standby(), backup(1, 50), backup(2, 40), backup(3, 1), live], { retain: 1, protect: ['br-backup-2'] });
    expect(ids(p.delete)).toEqual([]);
    expect(p.skipped.map((s) => s.branch.id).sort()).toEqual(['br-backup-1', 'br-backup-2']);
    expect(p.skipped.find((s) => s.branch.id === 'br-backup-2')!.reason).toMatch(/in use by this run/);
  });
});

describe('planRetention: restore-test branches', () => {
  test('deletes those past their expiry and keeps those before it', () => {
    const expired = restoreTest(1, 'br-backup-1', 2, at(0.5));
    const live = restoreTest(2, 'br-backup-1', 2, new Date(NOW.getTime() + 60_000).toISOString());
    const p = plan([standby(), backup(1, 3), expired, live]);
    expect(ids(p.delete)).toEqual(['br-restore-1']);
    expect(p.reasons['br-restore-1']).toMatch(/expired at/);
  });

  test('without an expiry, deletes those older than the restore TTL', () => {
    const old = restoreTest(1, 'br-backup-1', 2);
    const young = restoreTest(2, 'br-backup-1', 0.5);
    const p = plan([standby(), backup(1, 3), old, young], { restoreTtlMinutes: 60 });
    expect(ids(p.delete)).toEqual(['br-restore-1']);
    expect(p.reasons['br-restore-1']).toMatch(/older than 60 minutes/);
  });

  test('kinds limits the plan: a restore sweep never deletes backups', () => {
    const p = plan([standby(), backup(1, 50), backup(2, 40), backup(3, 1), restoreTest(1, 'br-backup-3', 5, at(1))], {
      retain: 1,
      kinds: ['restore-test'],
    });
    expect(ids(p.delete)).toEqual(['br-restore-1']);
    expect(p.keep).toEqual([]);
  });

  test('the restore branch in use is protected even when expired', () => {
    const p = plan([standby(), backup(1, 3), restoreTest(1, 'br-backup-1', 5, at(1))], { protect: ['br-restore-1'] });
    expect(p.delete).toEqual([]);
    expect(p.skipped[0].reason).toMatch(/in use/);
  });
});

function recordingLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(`info ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
    error: (m) => lines.push(`error ${m}`),
    debug: () => undefined,
    group: (_n, fn) => fn(),
  };
}

/** An in-memory branch list with Neon's rules for deleting (no children, no default). */
function fakeProject(branches: BranchInfo[], failOn: string[] = []) {
  const live = new Map(branches.map((b) => [b.id, b]));
  return {
    live,
    async listBranches() {
      return [...live.values()];
    },
    async deleteBranch(id: string) {
      if (failOn.includes(id)) throw new Error(`HTTP 500 deleting ${id}`);
      if ([...live.values()].some((b) => b.parentId === id)) throw new Error(`branch ${id} has children`);
      live.delete(id);
    },
  };
}

describe('applyRetention', () => {
  test('deletes in plan order, logs one line per branch, and carries on past a failure', async () => {
    const branches = [standby(), backup(1, 50), backup(2, 40), backup(3, 1), restoreTest(1, 'br-backup-1', 5, at(1))];
    const p = plan(branches, { retain: 1 });
    const project = fakeProject(branches, ['br-backup-2']);
    const log = recordingLog();
    const deleted = await applyRetention(project, p, { log });
    expect(ids(deleted)).toEqual(['br-restore-1', 'br-backup-1']);
    expect([...project.live.keys()].sort()).toEqual(['br-backup-2', 'br-backup-3', STANDBY]);
    expect(log.lines.filter((l) => l.startsWith('info Retention: deleted'))).toHaveLength(2);
    expect(log.lines).toContainEqual(expect.stringMatching(/^warn Retention: could not delete "backup-2" \(br-backup-2\): HTTP 500/));
  });
});

describe('ensureRoomForBranches', () => {
  test('does nothing when the new branches fit', async () => {
    const project = fakeProject([standby(), backup(1, 3)]);
    const deleted = await ensureRoomForBranches(
      project,
      { needed: 1, limit: 3, standbyId: STANDBY, retain: 1, restoreTtlMinutes: 60, now: NOW },
      { log: recordingLog() },
    );
    expect(deleted).toEqual([]);
    expect(project.live.size).toBe(2);
  });

  test('makes room only with what retention deletes anyway: a backup beyond retain', async () => {
    // limit 5: standby + 4 backups; retain 3 -> the oldest is beyond retain and goes now.
    const project = fakeProject([standby(), backup(1, 40), backup(2, 30), backup(3, 20), backup(4, 10)]);
    const deleted = await ensureRoomForBranches(
      project,
      { needed: 1, limit: 5, standbyId: STANDBY, retain: 3, restoreTtlMinutes: 60, now: NOW },
      { log: recordingLog() },
    );
    expect(ids(deleted)).toEqual(['br-backup-1']);
    expect(project.live.size).toBe(4);
  });

  test('never deletes one of the retain newest backups before the new one exists: refuses, says why and how to fix it', async () => {
    // limit 5: standby + 4 backups, retain 4. Deleting backup-1 first would leave 3 completed
    // backups if the run stopped before its own backup exists.
    const project = fakeProject([standby(), backup(1, 40), backup(2, 30), backup(3, 20), backup(4, 10)]);
    const error = await ensureRoomForBranches(
      project,
      { needed: 1, limit: 5, standbyId: STANDBY, retain: 4, restoreTtlMinutes: 60, now: NOW },
      { log: recordingLog() },
    ).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toMatch(/branch limit \(5\) leaves no room/);
    expect(error?.message).toMatch(/fewer than 4 completed backups/);
    expect(error?.message).toMatch(/Fix: lower retain to 3/);
    expect(project.live.size).toBe(5);
  });

  test('planRoom deletes nothing and plans nothing when Neon does not report the limit (no guessed free-plan 10)', async () => {
    const branches = [standby(), ...Array.from({ length: 14 }, (_, i) => backup(i + 1, 100 - i))];
    const room = planRoom(branches, { needed: 1, limit: undefined, standbyId: STANDBY, retain: 14, restoreTtlMinutes: 60, now: NOW });
    expect(room).toEqual({ plan: { delete: [], reasons: {}, keep: [], skipped: [] }, enough: true });
    const project = fakeProject(branches);
    const log = recordingLog();
    expect(
      await ensureRoomForBranches(
        project,
        { needed: 1, limit: undefined, standbyId: STANDBY, retain: 14, restoreTtlMinutes: 60, now: NOW },
        { log },
      ),
    ).toEqual([]);
    expect(project.live.size).toBe(15);
    expect(log.lines).toContainEqual(expect.stringMatching(/does not report this project's branch limit/));
  });

  test('a protected branch is never planned for deletion, counts toward the limit, and the refusal says so', () => {
    const old = backup(1, 40, { protected: true });
    const branches = [standby(), old, backup(2, 30), backup(3, 20)];
    const p = plan(branches, { retain: 1 });
    expect(ids(p.delete)).toEqual(['br-backup-2']);
    expect(p.skipped).toEqual([{ branch: old, reason: expect.stringMatching(/protected in Neon/) }]);
    const room = planRoom(branches, { needed: 2, limit: 4, standbyId: STANDBY, retain: 1, restoreTtlMinutes: 60, now: NOW });
    expect(room.enough).toBe(false);
    expect(room.problem).toMatch(/1 protected branch\(es\) count toward the limit and are never deleted/);
    expect(room.problem).toContain('"backup-1" (br-backup-1, protected, backup)');
  });

  test('fails before any work when retention cannot free enough, naming the limit and the branches', async () => {
    const user: BranchInfo = { id: 'br-user', name: 'feature-x', parentId: STANDBY, createdAt: at(1), isDefault: false, annotations: {} };
    const project = fakeProject([standby(), backup(1, 10), user]);
    const attempt = ensureRoomForBranches(
      project,
      { needed: 1, limit: 3, standbyId: STANDBY, retain: 5, restoreTtlMinutes: 60, now: NOW },
      { log: recordingLog() },
    );
    const error = await attempt.then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toMatch(/branch limit \(3\)/);
    expect(error?.message).toContain('"feature-x" (br-user)');
    expect(error?.message).toContain('"backup-1" (br-backup-1, backup)');
    expect(error?.message).toMatch(/Fix: /);
    expect(error?.message).toMatch(/The only backup of this standby is the newest, which retention never deletes/);
    expect(error?.message).not.toMatch(/lower retain/);
    expect(project.live.size).toBe(3); // the only backup is the newest: never deleted
  });

  test('a restore sweep makes room from expired restore tests only', async () => {
    const project = fakeProject([standby(), backup(1, 10), backup(2, 5), restoreTest(1, 'br-backup-2', 3, at(2))]);
    const deleted = await ensureRoomForBranches(
      project,
      { needed: 1, limit: 4, standbyId: STANDBY, retain: 1, restoreTtlMinutes: 60, now: NOW, kinds: ['restore-test'] },
      { log: recordingLog() },
    );
    expect(ids(deleted)).toEqual(['br-restore-1']);
    expect(project.live.has('br-backup-1')).toBe(true);
  });
});
