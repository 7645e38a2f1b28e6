// The row stored for each document in a standby table, and how a raw BSON document becomes one.

import { createHash } from 'node:crypto';
import { wholeDocument } from './bson-elements.js';
import { idKey, queryJson } from './json-forms.js';

export interface StoredRow {
  id: string;
  doc: string;
  bson: Buffer;
  hash: Buffer;
}

/** The stored row's columns, in table order, with their Postgres types: the one definition of a row table. */
export const ROW_COLUMNS = [
  { name: '_id', type: 'text' },
  { name: 'doc', type: 'jsonb' },
  { name: 'bson', type: 'bytea' },
  { name: 'hash', type: 'bytea' },
] as const;

/** The column names, in table order (the order of every COPY of stored rows). */
export const COPY_COLUMNS: readonly string[] = ROW_COLUMNS.map((c) => c.name);

/**
 * The column definitions of a table of stored rows. A `standby` table keys rows by `_id` and
 * allows no NULL; the backup's `staging` table takes rows as they come (it gets a unique index of
 * its own). TOAST compression stays the default pglz: on customers with embedded order histories
 * (2,000 documents, 8 MB of BSON) pglz stored 8.5 MB against lz4's 9.6 MB; lz4 only saves CPU,
 * and storage is what a Neon plan limits.
 */
export function rowTableColumns(kind: 'standby' | 'staging'): string {
  return ROW_COLUMNS.map((c) => {
    if (kind === 'staging') return `${c.name} ${c.type}`;
    return `${c.name} ${c.type} ${c.name === '_id' ? 'PRIMARY KEY' : 'NOT NULL'}`;
  }).join(', ');
}

/**
 * Everything stored for one document. The bytes are copied so a row does not keep alive the much
 * larger reply buffer the driver sliced the document from.
 */
export function encodeDocument(raw: Buffer): StoredRow {
  const input = wholeDocument(raw);
  return rowOf(input.byteOffset === 0 && input.byteLength === input.buffer.byteLength ? input : Buffer.from(input));
}

/**
 * encodeDocument without the copy: the row's `bson` is a view into `raw`. For a row used at once
 * (written into a COPY chunk, say) and dropped before `raw`'s buffer may be reused; it saves a
 * copy of every document, which is garbage the moment the row was written.
 */
export function encodeDocumentView(raw: Buffer): StoredRow {
  return rowOf(wholeDocument(raw));
}

function rowOf(bson: Buffer): StoredRow {
  return {
    id: idKey(bson),
    doc: queryJson(bson),
    bson,
    hash: createHash('sha256').update(bson).digest(),
  };
}
