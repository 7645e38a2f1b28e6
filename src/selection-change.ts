/**
 * A selection change is never silent. The standby mirrors the selection, so a backup whose
 * databases/include/exclude no longer cover a collection drops its table; done by accident (a typo
 * in `databases`, a pattern that matches less than meant) that silently ends the backup of data
 * that still exists. Such a backup stops before changing anything unless allow-selection-change is
 * set. A collection deleted in MongoDB is a change of the data, not of the selection: its table is
 * still dropped, as the standby mirrors the source.
 */
import type { Logger } from './io.js';

export interface PreviousTable {
  database: string;
  collection: string;
  schemaName: string;
  tableName: string;
}

type Namespace = { database: string; collection: string };

const key = (n: Namespace) => `${n.database}\0${n.collection}`;
const SHOWN = 20;

/**
 * The tables of the previous backup that this backup would drop although their collections still
 * exist in MongoDB: dropped by the selection, not by a deletion.
 */
export function droppedBySelection(
  previous: readonly PreviousTable[],
  selected: readonly Namespace[],
  existsInSource: (n: Namespace) => boolean,
): PreviousTable[] {
  const kept = new Set(selected.map(key));
  return previous.filter((t) => !kept.has(key(t)) && existsInSource(t));
}

/** The refusal: what would be dropped and the two ways forward. */
export function selectionChangeMessage(dropped: readonly PreviousTable[]): string {
  const names = dropped.slice(0, SHOWN).map((t) => `${t.database}.${t.collection} (table "${t.schemaName}"."${t.tableName}")`);
  const more = dropped.length > SHOWN ? ` and ${dropped.length - SHOWN} more` : '';
  return (
    `the selection (databases/include/exclude) no longer covers ${dropped.length} collection(s) that the previous backup selected ` +
    `and that still exist in MongoDB, so this backup would drop their tables from the standby: ${names.join(', ')}${more}. ` +
    'Nothing was changed. Add them back to the selection, or set allow-selection-change: true to drop them ' +
    '(older backup branches keep them)'
  );
}

/**
 * Throws the refusal when the selection drops tables, unless `allow` is set, in which case the
 * drop is announced in the log.
 */
export function guardSelectionChange(dropped: readonly PreviousTable[], allow: boolean, log: Logger): void {
  if (dropped.length === 0) return;
  if (!allow) throw new Error(selectionChangeMessage(dropped));
  log.warn(
    `allow-selection-change: true: dropping ${dropped.length} table(s) no longer selected: ` +
      dropped.map((t) => `${t.database}.${t.collection}`).join(', '),
  );
}
