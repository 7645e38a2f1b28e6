/**
 * Streams the stored BSON of one backed-up collection out of Postgres, for recover: one
 * `COPY … TO STDOUT (FORMAT binary)` (a single statement: one consistent view of the table), parsed
 * row by row as it arrives and pulled only as fast as the consumer writes, so memory stays flat
 * whatever the collection's size. Binary COPY hands over the bytes as they are stored; bytea in
 * ordinary query results would arrive as hex text twice their size, then be decoded.
 *
 * Every row's bytes are checked against its stored `hash` before they are handed on: a recovery
 * must never write a document whose bytes differ from what the backup recorded.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { copyOut } from './copy-streams.js';
import { quoteIdent } from './naming.js';

export interface StoredTable {
  schemaName: string;
  tableName: string;
  /** `db.collection`, for messages. */
  label: string;
}

export async function* storedDocuments(client: pg.Client, table: StoredTable): AsyncIterable<Buffer> {
  const relation = `${quoteIdent(table.schemaName)}.${quoteIdent(table.tableName)}`;
  for await (const [id, bson, hash] of copyOut(client, `SELECT _id, bson, hash FROM ${relation}`)) {
    if (bson === null || hash === null || !createHash('sha256').update(bson).digest().equals(hash)) {
      throw new Error(
        `${table.label}: the stored document _id ${id?.toString('utf8') ?? '(NULL)'} does not match its recorded hash (table ${relation}); the backup is damaged, recover from another backup-branch`,
      );
    }
    // A copy: the row's bytes are a view into a COPY chunk that would otherwise stay alive with it.
    yield Buffer.from(bson);
  }
}
