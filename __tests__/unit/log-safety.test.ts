import { describe, expect, test } from '@jest/globals';
import { couldBeWorkflowCommand, inertLogText, markdownText, markdownTextToPlain, showControlCharacters } from '../../src/log-safety.js';
import { markdownTable } from '../../src/report.js';
import { markdownToText } from '../../src/command-line.js';
import { workflowCommands } from '../../devkit/workflow-commands.js';

// Names a MongoDB on Linux accepts for collections (and, but for '.', '$' and '/', for databases).
export const HOSTILE_NAMES = [
  'x\n::add-mask::br-\ny',
  '::add-mask::br-',
  '  ::error title=owned::pwned',
  'a ##[add-mask]br-',
  'x\r::set-output name=branch-id::br-fake',
  '::stop-commands::nothing-to-see',
  'q"\'`$(whoami)`',
  '<img src=x onerror=alert(1)>',
  '**bold** _em_ [link](https://evil.example) | pipe ~~strike~~ &lt;',
  '\u001b[31mred\u001b[0m\u0007',
  'ü'.repeat(120),
];

describe('inertLogText: what the runner would obey in a log line', () => {
  test.each(HOSTILE_NAMES.map((n) => [n]))('%j triggers no workflow command, and the parser sees the raw one', (name) => {
    const message = `shop.${name}: 10 documents, 0.0 MB`;
    expect(workflowCommands(inertLogText(message))).toEqual([]);
    if (couldBeWorkflowCommand(message)) expect(workflowCommands(message).length).toBeGreaterThan(0);
  });

  test('the text between stop-commands is the message itself; the token is fresh and not in the message', () => {
    const message = 'x\n::add-mask::br-';
    const out = inertLogText(message);
    const [first, ...rest] = out.split('\n');
    const token = first.slice('::stop-commands::'.length);
    expect(token).toMatch(/^supaneon-[0-9a-f]{32}$/);
    expect(rest).toEqual(['x', '::add-mask::br-', `::${token}::`]);
    expect(inertLogText(message)).not.toBe(out);
  });

  test('a token that happens to be in the message is never used', () => {
    const tokens = ['abc', 'abc', 'def'];
    expect(inertLogText('::warning::abc', () => tokens.shift() as string)).toBe('::stop-commands::def\n::warning::abc\n::def::');
  });

  test('ordinary lines are written as they are', () => {
    for (const line of ['shop.orders: 1,000 documents, 50% of ~2,000', 'Retention: deleted "backup-1" (br-a-1)', 'a: b :: c']) {
      expect(inertLogText(line)).toBe(line);
    }
  });

  test('control characters other than tab and line feed are shown, never sent', () => {
    expect(showControlCharacters('a\u001b[31mb\rc\td\ne\u0000\u2028')).toBe('a\\u001b[31mb\\u000dc\td\ne\\u0000\\u2028');
  });
});

describe('markdownText: data in the job summary', () => {
  test.each(HOSTILE_NAMES.map((n) => [n]))('%j renders as text and reads back exactly (control characters shown)', (name) => {
    const md = markdownText(name);
    expect(md).not.toMatch(/<[a-z]/i);
    expect(md).not.toMatch(/(^|[^\\])(\*\*|\[|\||`)/);
    expect(md).not.toContain('\n');
    expect(markdownTextToPlain(md)).toBe(showControlCharacters(name).replace(/\r\n|\r|\n/g, ' '));
  });

  test('snake_case names stay readable; emphasis underscores are escaped', () => {
    expect(markdownText('bk_shop_1.orders')).toBe('bk_shop_1.orders');
    expect(markdownText('_em_')).toBe('\\_em\\_');
  });

  test('a table cell with HTML or a pipe stays one cell, and the CLI shows the name as it is', () => {
    const table = markdownTable(['Collection', 'Documents'], [['db.<img src=x onerror=alert(1)>|x', 3]]);
    expect(table).toContain('| db.&lt;img src=x onerror=alert(1)&gt;\\|x | 3 |');
    expect(markdownToText(table)).toContain('db.<img src=x onerror=alert(1)>|x  3');
  });
});
