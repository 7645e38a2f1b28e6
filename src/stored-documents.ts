/**
 * Streams the stored BSON of one backed-up collection out of Postgres, for recover: a server-side
 * cursor inside one read-only transaction (one consistent view of the table), fetched in slices sized
 * by bytes, so memory stays flat whatever the collection's size.
 *
 * Every row's bytes are checked against its stored `hash` before they are handed on: a recovery
 * must never write a document whose bytes differ from what the backup recorded.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { quoteIdent } from './naming.js';

/** Bytes aimed for per FETCH: the row count adapts to the collection's document sizes. */
const FETCH_TARGET_BYTES = 8 * 1024 * 1024;
const CURSOR = 'supaneon_stored_documents';

export interface StoredTable {
  schemaName: string;
  tableName: string;
  /** `db.collection`, for messages. */
  label: string;
}

export async function* storedDocuments(client: pg.Client, table: StoredTable, opts: { batchSize: number }): AsyncIterable<Buffer> {
  const relation = `${quoteIdent(table.schemaName)}.${quoteIdent(table.tableName)}`;
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  let open = true;
  try {
    await client.query(`DECLARE ${CURSOR} NO SCROLL CURSOR FOR SELECT _id, bson, hash FROM ${relation}`);
    let fetchRows = Math.min(opts.batchSize, 100);
    for (;;) {
      const result = await client.query<{ _id: string; bson: Buffer; hash: Buffer }>(`FETCH FORWARD ${fetchRows} FROM ${CURSOR}`);
      if (result.rows.length === 0) break;
      let bytes = 0;
      for (const row of result.rows) {
        if (!createHash('sha256').update(row.bson).digest().equals(row.hash)) {
          throw new Error(
            `${table.label}: the stored document _id ${row._id} does not match its recorded hash (table ${relation}); the backup is damaged, recover from another backup-branch`,
          );
        }
        bytes += row.bson.length;
        yield row.bson;
      }
      const average = Math.max(1, bytes / result.rows.length);
      fetchRows = Math.max(1, Math.min(opts.batchSize, Math.floor(FETCH_TARGET_BYTES / average)));
    }
    await client.query('COMMIT');
    open = false;
  } finally {
    // A consumer that stops early (or a failure) leaves the transaction open; end it so the connection can be reused.
    if (open) await client.query('ROLLBACK').catch(() => undefined);
  }
}
