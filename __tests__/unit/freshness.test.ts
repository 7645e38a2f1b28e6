import { parseConfig } from '../../src/config.js';
import { formatAge, judgeFreshness, parseMaxAge } from '../../src/freshness.js';
import { TOOL_ANNOTATION, type BranchInfo } from '../../src/neon.js';

const H = 3_600_000;

describe('parseMaxAge', () => {
  test.each([
    ['90m', 90 * 60_000],
    ['26h', 26 * H],
    ['7d', 7 * 24 * H],
    [' 1m ', 60_000],
  ])('%j', (text, ms) => expect(parseMaxAge(text)).toBe(ms));

  test.each(['26', '1.5h', '-1h', '2w', 'h', '26 hours', '0m', '3651d'])('%j is refused with the fix', (text) => {
    expect(parseMaxAge(text)).toEqual(expect.stringMatching(/e\.g\. 26h|from 1m to 3650d/));
  });

  test('the configuration names the input and what was given', () => {
    expect(() =>
      parseConfig(
        {
          mode: 'restore',
          'max-backup-age': '26 hrs',
          'neon-api-key': 'k',
          'neon-project-id': 'late-frost-1',
          'neon-database-url': 'postgresql://u:p@h/db?sslmode=require',
        },
        {},
      ),
    ).toThrow(
      /input 'max-backup-age' must be a whole number followed by m \(minutes\), h \(hours\) or d \(days\), e\.g\. 26h for a daily schedule; got '26 hrs'/,
    );
    const c = parseConfig(
      {
        mode: 'validate',
        'max-backup-age': '26h',
        'mongodb-uri': 'mongodb://h/',
        'neon-api-key': 'k',
        'neon-project-id': 'late-frost-1',
        'neon-database-url': 'postgresql://u:p@h/db?sslmode=require',
      },
      {},
    );
    expect([c.maxBackupAgeMs, c.maxBackupAge]).toEqual([26 * H, '26h']);
  });
});

test('formatAge', () => {
  expect(formatAge(0)).toBe('0m');
  expect(formatAge(59_999)).toBe('0m');
  expect(formatAge(90 * 60_000)).toBe('1h 30m');
  expect(formatAge(26 * H)).toBe('1d 2h');
  expect(formatAge(3 * 24 * H + 5 * 60_000)).toBe('3d 5m');
});

describe('judgeFreshness', () => {
  const now = new Date('2026-12-01T12:00:00Z');
  const branch = (id: string, hoursAgo: number, extra: Partial<BranchInfo> = {}): BranchInfo => ({
    id,
    name: `backup-${id}`,
    createdAt: new Date(now.getTime() - hoursAgo * H).toISOString(),
    isDefault: false,
    annotations: { [TOOL_ANNOTATION]: 'backup', 'standby-branch-id': 'br-standby' },
    ...extra,
  });
  const opts = { maxAgeMs: 26 * H, maxAgeText: '26h', now, standbyId: 'br-standby' };

  test('the newest backup decides, and its age is named', () => {
    const r = judgeFreshness([branch('old', 50), branch('new', 25)], opts);
    expect(r).toEqual({ ok: true, detail: expect.stringContaining('"backup-new" (new) is 1d 1h old') });
  });

  test('too old: fails naming the age, the limit and the fix', () => {
    const r = judgeFreshness([branch('a', 30), branch('b', 27)], opts);
    expect(r.ok).toBe(false);
    expect(r.detail).toMatch(/"backup-b" \(b\) is 1d 3h old .*older than max-backup-age 26h: check that the backup workflow still runs/);
  });

  test("other standbys' backups and branches this tool did not make do not count", () => {
    const foreign = branch('foreign', 1, { annotations: { [TOOL_ANNOTATION]: 'backup', 'standby-branch-id': 'br-other' } });
    const plain = branch('plain', 1, { annotations: {} });
    const restore = branch('restore', 1, { annotations: { [TOOL_ANNOTATION]: 'restore-test', 'standby-branch-id': 'br-standby' } });
    expect(judgeFreshness([foreign, plain, restore, branch('mine', 40)], opts)).toMatchObject({
      ok: false,
      detail: expect.stringContaining('"backup-mine"'),
    });
  });

  test('no backup at all fails', () => {
    expect(judgeFreshness([], opts)).toEqual({ ok: false, detail: expect.stringMatching(/^no completed backup exists.*run mode backup/) });
  });
});
