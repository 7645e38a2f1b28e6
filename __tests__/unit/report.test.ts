import type { Logger } from '../../src/io.js';
import { checkTable, formatBytes, formatDuration, markdownTable, Progress, type Check } from '../../src/report.js';

function recordingLogger(lines: string[]): Logger {
  return {
    info: (m) => lines.push(m),
    warn: (m) => lines.push(`warn: ${m}`),
    error: (m) => lines.push(`error: ${m}`),
    debug: () => undefined,
    group: (_name, fn) => fn(),
  };
}

test('markdownTable escapes cell separators and line breaks from user data', () => {
  expect(
    markdownTable(
      ['Collection', 'Documents'],
      [
        ['shop.a|b', 3],
        ['x\ny', 0],
      ],
    ),
  ).toBe('| Collection | Documents |\n| --- | --- |\n| shop.a\\|b | 3 |\n| x y | 0 |\n');
});

test("checkTable: the mode's columns, then Result and Details; Details only when a check has any", () => {
  const checks: Check[] = [
    { subject: 'shop.a', check: 'row count', status: 'pass', detail: '3 rows' },
    { subject: 'shop.b', check: 'row count', status: 'fail', detail: '2 rows, manifest says 3' },
    { subject: '(source)', check: 'source count', status: 'notice', detail: 'drift' },
    { subject: 'MongoDB', check: 'list databases', status: 'skipped', detail: 'not checked: unreachable' },
  ];
  expect(
    checkTable(
      [
        ['Collection', (c) => c.subject],
        ['Check', (c) => c.check],
      ],
      checks,
    ),
  ).toBe(
    '| Collection | Check | Result | Details |\n| --- | --- | --- | --- |\n' +
      '| shop.a | row count | pass | 3 rows |\n| shop.b | row count | **FAIL** | 2 rows, manifest says 3 |\n' +
      '| (source) | source count | notice | drift |\n| MongoDB | list databases | not checked | not checked: unreachable |\n',
  );
  const passed: Check[] = [{ subject: 'shop.a', check: 'read back', status: 'pass', detail: '' }];
  expect(checkTable([['source', (c) => c.subject]], passed)).toBe('| source | Result |\n| --- | --- |\n| shop.a | pass |\n');
});

test('formatBytes and formatDuration', () => {
  expect([0, 1023, 1536, 10 * 1048576, 5.5 * 1073741824].map(formatBytes)).toEqual(['0 B', '1023 B', '1.5 KB', '10 MB', '5.5 GB']);
  expect(formatBytes(-1)).toBe('unknown');
  expect([0.25, 12.34, 245, 7380].map(formatDuration)).toEqual(['250 ms', '12.3 s', '4 min 05 s', '2 h 03 min']);
});

test('Progress logs at most once per interval, with rate and ETA from the estimate', () => {
  let now = 0;
  const lines: string[] = [];
  const progress = new Progress('shop.orders', recordingLogger(lines), { total: 4000, now: () => now });
  for (let i = 0; i < 100; i++) {
    now += 100; // 10 s in total, one batch every 100 ms
    progress.add(10, 10 * 1024);
  }
  expect(lines).toEqual(['shop.orders: 1,000 documents, 1.0 MB, 100 docs/s, 25% of ~4,000, ETA 30.0 s']);
  now += 5000;
  progress.add(1000, 0);
  expect(lines).toHaveLength(1);
  progress.done();
  expect(lines[1]).toBe('shop.orders: 2,000 documents, 1.0 MB, 133 docs/s, 50% of ~4,000, ETA 15.0 s (done)');
});

test('Progress without an estimate has no ETA', () => {
  let now = 0;
  const lines: string[] = [];
  const progress = new Progress('db.c', recordingLogger(lines), { now: () => now });
  now = 2000;
  progress.add(5, 5);
  progress.done();
  expect(lines).toEqual(['db.c: 5 documents, 0.0 MB, 3 docs/s (done)']);
});
