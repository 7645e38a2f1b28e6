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

/** The stored row's columns, in table order: _id text, doc jsonb, bson bytea, hash bytea. */
export const COPY_COLUMNS = ['_id', 'doc', 'bson', 'hash'];

/**
 * Everything stored for one document. The bytes are copied so a row does not keep alive the much
 * larger reply buffer the driver sliced the document from.
 */
export function encodeDocument(raw: Buffer): StoredRow {
  const input = wholeDocument(raw);
  const bson = input.byteOffset === 0 && input.byteLength === input.buffer.byteLength ? input : Buffer.from(input);
  return {
    id: idKey(bson),
    doc: queryJson(bson),
    bson,
    hash: createHash('sha256').update(bson).digest(),
  };
}
