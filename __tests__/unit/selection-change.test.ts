import { droppedBySelection, guardSelectionChange, selectionChangeMessage, type PreviousTable } from '../../src/selection-change.js';
import { recordingIo } from '../../test/support/recording-io.js';

const t = (database: string, collection: string): PreviousTable => ({ database, collection, schemaName: database, tableName: collection });
const previous = [t('shop', 'orders'), t('shop', 'users'), t('logs', 'events')];

test('only tables whose collections still exist but are no longer selected count', () => {
  const exists = (n: { database: string; collection: string }) => n.collection !== 'users';
  expect(droppedBySelection(previous, [{ database: 'shop', collection: 'orders' }], exists)).toEqual([t('logs', 'events')]);
  expect(droppedBySelection(previous, previous, () => true)).toEqual([]);
});

test('the refusal names the collections, their tables, that nothing changed and the fix; long lists are cut', () => {
  expect(selectionChangeMessage([t('logs', 'events')])).toBe(
    'the selection (databases/include/exclude) no longer covers 1 collection(s) that the previous backup selected and that still exist in MongoDB, ' +
      'so this backup would drop their tables from the standby: logs.events (table "logs"."events"). Nothing was changed. ' +
      'Add them back to the selection, or set allow-selection-change: true to drop them (older backup branches keep them)',
  );
  const many = Array.from({ length: 25 }, (_, i) => t('db', `c${i}`));
  expect(selectionChangeMessage(many)).toMatch(/db\.c19 \(table "db"\."c19"\) and 5 more\. Nothing/);
});

test('allowed: a warning instead of a refusal; nothing dropped: silence', () => {
  const io = recordingIo();
  expect(() => guardSelectionChange([t('logs', 'events')], false, io.log)).toThrow(/allow-selection-change: true/);
  guardSelectionChange([], false, io.log);
  expect(io.lines).toEqual([]);
  guardSelectionChange([t('logs', 'events')], true, io.log);
  expect(io.lines).toEqual(['warning: allow-selection-change: true: dropping 1 table(s) no longer selected: logs.events']);
});
