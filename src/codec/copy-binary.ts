// COPY ... (FORMAT binary): the stored rows written into Postgres, and rows read back out, in
// PostgreSQL's binary COPY framing (signature, header, per-row field count and length-prefixed
// fields, trailer).

import { CodecError } from './bson-elements.js';
import { COPY_COLUMNS, type StoredRow } from './stored-row.js';

const COPY_SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
/** jsonb's binary wire format is a version byte followed by the JSON text. */
const JSONB_VERSION = 1;

/** Signature, flags (no OIDs), header extension length 0. */
export function copyBinaryHeader(): Buffer {
  const header = Buffer.alloc(COPY_SIGNATURE.length + 8);
  COPY_SIGNATURE.copy(header, 0);
  return header;
}

/** One row: field count, then each field as int32 length + bytes. One allocation, one copy per field. */
export function copyBinaryTuple(r: StoredRow): Buffer {
  const out = Buffer.allocUnsafe(copyBinaryTupleLength(r));
  writeCopyBinaryTuple(r, out, 0);
  return out;
}

/** The bytes copyBinaryTuple takes for `r`. */
export function copyBinaryTupleLength(r: StoredRow): number {
  return 2 + 4 + Buffer.byteLength(r.id, 'utf8') + 4 + 1 + Buffer.byteLength(r.doc, 'utf8') + 4 + r.bson.length + 4 + r.hash.length;
}

/**
 * Writes the tuple of `r` into `out` from `at` (copyBinaryTupleLength(r) bytes must fit): for
 * callers that gather tuples into buffers of their own instead of allocating one per row.
 */
export function writeCopyBinaryTuple(r: StoredRow, out: Buffer, at: number): void {
  let p = out.writeInt16BE(COPY_COLUMNS.length, at);
  const idAt = p + 4;
  const idBytes = out.write(r.id, idAt, 'utf8');
  out.writeInt32BE(idBytes, p);
  p = idAt + idBytes;
  const docAt = p + 4 + 1;
  const docBytes = out.write(r.doc, docAt, 'utf8');
  out.writeInt32BE(docBytes + 1, p);
  out[p + 4] = JSONB_VERSION;
  p = docAt + docBytes;
  p = out.writeInt32BE(r.bson.length, p);
  p += r.bson.copy(out, p);
  p = out.writeInt32BE(r.hash.length, p);
  r.hash.copy(out, p);
}

/** The field count -1 that ends the data. */
export function copyBinaryTrailer(): Buffer {
  const trailer = Buffer.alloc(2);
  trailer.writeInt16BE(-1, 0);
  return trailer;
}

/**
 * The rows of a `COPY … TO STDOUT (FORMAT binary)` stream, each as its fields' raw bytes (null for
 * NULL), parsed as the chunks arrive: only the current row and the chunk it sits in are held, so
 * memory does not grow with the table. The field buffers may share memory with the chunks; use
 * them before asking for the next row.
 */
export async function* copyBinaryRows(chunks: AsyncIterator<Buffer>): AsyncGenerator<(Buffer | null)[]> {
  let buf: Buffer = Buffer.alloc(0);
  let pos = 0;
  /** Makes `n` bytes from `pos` available, joining chunks only when a value spans them. */
  const fill = async (n: number): Promise<void> => {
    const parts = [buf.subarray(pos)];
    let have = parts[0].length;
    while (have < n) {
      const next = await chunks.next();
      if (next.done) throw new CodecError(`COPY binary data ended inside a row (${have} of ${n} bytes)`);
      parts.push(next.value);
      have += next.value.length;
    }
    buf = parts.length === 1 ? parts[0] : Buffer.concat(parts, have);
    pos = 0;
  };
  const headerFixed = COPY_SIGNATURE.length + 8;
  if (buf.length - pos < headerFixed) await fill(headerFixed);
  if (!buf.subarray(pos, pos + COPY_SIGNATURE.length).equals(COPY_SIGNATURE))
    throw new CodecError('COPY data is not in binary format (no PGCOPY signature)');
  const extension = buf.readInt32BE(pos + COPY_SIGNATURE.length + 4);
  pos += headerFixed;
  if (buf.length - pos < extension) await fill(extension);
  pos += extension;
  for (;;) {
    if (buf.length - pos < 2) await fill(2);
    const count = buf.readInt16BE(pos);
    pos += 2;
    if (count === -1) return;
    const fields: (Buffer | null)[] = new Array<Buffer | null>(count);
    for (let i = 0; i < count; i++) {
      if (buf.length - pos < 4) await fill(4);
      const length = buf.readInt32BE(pos);
      pos += 4;
      if (length === -1) {
        fields[i] = null;
        continue;
      }
      if (buf.length - pos < length) await fill(length);
      fields[i] = buf.subarray(pos, pos + length);
      pos += length;
    }
    yield fields;
  }
}
