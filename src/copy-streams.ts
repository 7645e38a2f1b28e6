// Binary COPY in and out of Postgres, as streams with backpressure end to end: memory holds a few
// chunks, never a table. Every COPY the product runs goes through these two functions.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { copyBinaryHeader, copyBinaryRows, copyBinaryTrailer } from './codec.js';

/** Bytes of COPY tuples gathered per write: a few large writes instead of one per row. */
const CHUNK_BYTES = 256 * 1024;

/**
 * `COPY <target> FROM STDIN (FORMAT binary)` of one tuple per item (`toTuple` answers undefined
 * to leave an item out). Items are pulled only as fast as Postgres takes the data.
 * @param target a quoted relation with its column list, e.g. `"s"."t" ("_id", "doc")`
 */
export async function copyIn<T>(
  client: pg.ClientBase,
  target: string,
  items: AsyncIterable<T>,
  toTuple: (item: T) => Buffer | undefined,
): Promise<void> {
  await pipeline(
    Readable.from(binaryCopyChunks(items, toTuple), { highWaterMark: 8 }),
    client.query(copyStreams.from(`COPY ${target} FROM STDIN (FORMAT binary)`)),
  );
}

/**
 * `COPY <target> FROM STDIN (FORMAT binary)` of tuples already gathered into chunks (read-ahead.ts):
 * one statement for whatever a reader buffered, framed with the header and trailer.
 */
export async function copyChunks(client: pg.ClientBase, target: string, chunks: readonly Buffer[]): Promise<void> {
  await pipeline(
    Readable.from([copyBinaryHeader(), ...chunks, copyBinaryTrailer()]),
    client.query(copyStreams.from(`COPY ${target} FROM STDIN (FORMAT binary)`)),
  );
}

async function* binaryCopyChunks<T>(items: AsyncIterable<T>, toTuple: (item: T) => Buffer | undefined): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [copyBinaryHeader()];
  let pendingBytes = pending[0].length;
  for await (const item of items) {
    const tuple = toTuple(item);
    if (tuple === undefined) continue;
    pending.push(tuple);
    pendingBytes += tuple.length;
    if (pendingBytes >= CHUNK_BYTES) {
      yield Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
    }
  }
  pending.push(copyBinaryTrailer());
  yield Buffer.concat(pending);
}

/**
 * The rows of `COPY (<query>) TO STDOUT (FORMAT binary)`, each as its fields' raw bytes (null for
 * NULL), parsed as they arrive and pulled at the consumer's pace. The field buffers share memory
 * with the COPY chunks: copy what must outlive the next row.
 *
 * A consumer that stops early (or fails) must not destroy the COPY stream mid-way, which would
 * leave the connection unusable for its next statement: the rest is read and dropped instead.
 */
export async function* copyOut(client: pg.ClientBase, query: string): AsyncGenerator<(Buffer | null)[]> {
  const reading = client.query(copyStreams.to(`COPY (${query}) TO STDOUT (FORMAT binary)`));
  // Iterated by hand, not with for-await, which would destroy the stream when the consumer stops.
  const chunks = reading[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  try {
    yield* copyBinaryRows(chunks);
  } finally {
    if (!reading.readableEnded) {
      try {
        while (!(await chunks.next()).done);
      } catch {
        // the read itself failed: its error is the one being reported
      }
    }
  }
}
