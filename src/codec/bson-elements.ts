// Reading raw BSON: the bounds of each element of a document (type, key, value), checked as they
// are read, and the text checks the driver's deserializer makes. Every other part of the codec
// walks documents through `Elements`, so the framing rules live here once.
//
// Why the codec walks BSON elements itself instead of calling BSON.deserialize: js-bson's
// deserializer builds plain JS objects, and those cannot hold what a backup must keep exactly —
// duplicate keys collapse, integer-like keys ("2", "10") jump ahead of the others, datetimes outside
// JavaScript's Date range become Invalid Date (and serialize back as 0), documents shaped like
// DBRefs are reordered. js-bson's own element framing (`onDemand.parseToElements`) is marked
// experimental and "not intended for production use". So this reader only frames elements; values
// are built with js-bson's own classes (exact-decode.ts) and written back with js-bson's own
// serializer, which is also what the MongoDB driver uses to insert.

import { isUtf8 } from 'node:buffer';

/** A document the codec cannot read or cannot rebuild exactly; the message says which and why. */
export class CodecError extends Error {
  override name = 'CodecError';
}

export const T_DOUBLE = 0x01;
export const T_STRING = 0x02;
export const T_DOCUMENT = 0x03;
export const T_ARRAY = 0x04;
export const T_BINARY = 0x05;
export const T_UNDEFINED = 0x06;
export const T_OBJECTID = 0x07;
export const T_BOOLEAN = 0x08;
export const T_DATE = 0x09;
export const T_NULL = 0x0a;
export const T_REGEX = 0x0b;
export const T_DBPOINTER = 0x0c;
export const T_CODE = 0x0d;
export const T_SYMBOL = 0x0e;
export const T_CODE_W_SCOPE = 0x0f;
export const T_INT32 = 0x10;
export const T_TIMESTAMP = 0x11;
export const T_INT64 = 0x12;
export const T_DECIMAL128 = 0x13;
export const T_MINKEY = 0xff;
export const T_MAXKEY = 0x7f;

/** JavaScript Date covers ±8.64e15 ms around the epoch; BSON datetimes cover all of int64. */
export const JS_DATE_LIMIT_MS = 8.64e15;

export function fail(what: string, offset: number): never {
  throw new CodecError(`invalid BSON: ${what} at byte ${offset}`);
}

/** Checks the document header at `start` and returns the offset of its terminating 0x00. */
function documentEnd(buf: Buffer, start: number, limit: number): number {
  if (start + 5 > limit) fail('document shorter than 5 bytes', start);
  const size = buf.readInt32LE(start);
  if (size < 5 || start + size > limit) fail(`document length ${size} out of bounds`, start);
  const end = start + size - 1;
  if (buf[end] !== 0) fail('document does not end with 0x00', end);
  return end;
}

/** Offset just past a cstring starting at `start` (its NUL must come before `limit`). */
function cstringEnd(buf: Buffer, start: number, limit: number): number {
  const nul = buf.indexOf(0, start);
  if (nul < 0 || nul >= limit) fail('unterminated name or cstring', start);
  return nul + 1;
}

/** Checks a BSON string (int32 length incl. NUL, bytes, NUL) at `start`; returns its end. */
export function stringEnd(buf: Buffer, start: number, limit: number): number {
  if (start + 4 > limit) fail('truncated string', start);
  const len = buf.readInt32LE(start);
  if (len < 1 || start + 4 + len > limit) fail(`string length ${len} out of bounds`, start);
  if (buf[start + 4 + len - 1] !== 0) fail('string not terminated by 0x00', start);
  return start + 4 + len;
}

/** Offset just past the value of an element of `type` starting at `start`. */
function valueEnd(buf: Buffer, type: number, start: number, limit: number): number {
  let end: number;
  switch (type) {
    case T_DOUBLE:
    case T_DATE:
    case T_TIMESTAMP:
    case T_INT64:
      end = start + 8;
      break;
    case T_INT32:
      end = start + 4;
      break;
    case T_OBJECTID:
      end = start + 12;
      break;
    case T_DECIMAL128:
      end = start + 16;
      break;
    case T_BOOLEAN:
      end = start + 1;
      if (end <= limit && buf[start] > 1) fail(`boolean byte ${buf[start]}`, start);
      break;
    case T_UNDEFINED:
    case T_NULL:
    case T_MINKEY:
    case T_MAXKEY:
      end = start;
      break;
    case T_STRING:
    case T_CODE:
    case T_SYMBOL:
      end = stringEnd(buf, start, limit);
      break;
    case T_DOCUMENT:
    case T_ARRAY:
      end = documentEnd(buf, start, limit) + 1;
      break;
    case T_BINARY: {
      if (start + 5 > limit) fail('truncated binary', start);
      const len = buf.readInt32LE(start);
      if (len < 0 || start + 5 + len > limit) fail(`binary length ${len} out of bounds`, start);
      if (buf[start + 4] === 2 && (len < 4 || buf.readInt32LE(start + 5) !== len - 4)) {
        fail('binary subtype 2 with inconsistent inner length', start);
      }
      end = start + 5 + len;
      break;
    }
    case T_REGEX:
      end = cstringEnd(buf, cstringEnd(buf, start, limit), limit);
      break;
    case T_DBPOINTER:
      end = stringEnd(buf, start, limit) + 12;
      break;
    case T_CODE_W_SCOPE: {
      if (start + 4 > limit) fail('truncated code with scope', start);
      const total = buf.readInt32LE(start);
      if (total < 14 || start + total > limit) fail(`code with scope length ${total} out of bounds`, start);
      end = start + total;
      const scopeStart = stringEnd(buf, start + 4, end);
      if (documentEnd(buf, scopeStart, end) + 1 !== end) fail('code with scope length mismatch', start);
      break;
    }
    default:
      fail(`unknown element type 0x${type.toString(16).padStart(2, '0')}`, start - 1);
  }
  if (end > limit) fail('element runs past the end of its document', start);
  return end;
}

/**
 * The elements of the (embedded) document that starts at `start`, one at a time: after each
 * `next()` that answers true, `type`, `keyStart`/`keyEnd` (the key's bytes, without its NUL) and
 * `valueStart`/`valueEnd` describe the current element. Every bound is checked against the
 * enclosing document before it is exposed, so callers read values without checking again. One
 * small object per document and no allocation per element: this is the codec's hot loop.
 */
export class Elements {
  type = 0;
  keyStart = 0;
  keyEnd = 0;
  valueStart = 0;
  valueEnd = 0;
  /** Offset of the document's terminating 0x00. */
  readonly end: number;
  private position: number;

  constructor(
    readonly buf: Buffer,
    start: number,
  ) {
    this.end = documentEnd(buf, start, buf.length);
    this.position = start + 4;
  }

  next(): boolean {
    const p = this.position;
    if (p >= this.end) return false;
    const buf = this.buf;
    this.type = buf[p];
    this.keyStart = p + 1;
    this.valueStart = cstringEnd(buf, p + 1, this.end);
    this.keyEnd = this.valueStart - 1;
    this.valueEnd = valueEnd(buf, this.type, this.valueStart, this.end);
    this.position = this.valueEnd;
    return true;
  }
}

export function asBuffer(raw: Uint8Array): Buffer {
  return Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
}

/** Checks that `raw` holds exactly one BSON document (no trailing bytes) and returns it as a Buffer. */
export function wholeDocument(raw: Uint8Array): Buffer {
  const buf = asBuffer(raw);
  if (buf.length < 5 || buf.readInt32LE(0) !== buf.length) {
    throw new CodecError(
      `invalid BSON: expected one whole document of ${buf.length} bytes, ` +
        `its header says ${buf.length >= 4 ? buf.readInt32LE(0) : 'nothing'}`,
    );
  }
  return buf;
}

/**
 * Throws a CodecError unless every text value the driver's deserializer checks (string, code,
 * symbol, the code of code-with-scope and its scope's strings, the DBPointer namespace) is valid
 * UTF-8; keys and regular expressions are not checked, as the deserializer does not check them.
 * Together with a full walk of the elements (queryJson does one), this proves the bytes parse as
 * BSON without building the JS objects the deserializer would (which verification would only
 * throw away).
 */
export function assertUtf8Text(raw: Buffer): void {
  utf8TextOf(wholeDocument(raw), 0);
}

function utf8TextOf(buf: Buffer, start: number): void {
  const e = new Elements(buf, start);
  while (e.next()) {
    switch (e.type) {
      case T_STRING:
      case T_CODE:
      case T_SYMBOL:
        checkUtf8(buf, e.valueStart + 4, e.valueEnd - 1);
        break;
      case T_DBPOINTER:
        checkUtf8(buf, e.valueStart + 4, e.valueEnd - 13);
        break;
      case T_DOCUMENT:
      case T_ARRAY:
        utf8TextOf(buf, e.valueStart);
        break;
      case T_CODE_W_SCOPE: {
        const codeEnd = stringEnd(buf, e.valueStart + 4, e.valueEnd);
        checkUtf8(buf, e.valueStart + 8, codeEnd - 1);
        utf8TextOf(buf, codeEnd);
        break;
      }
    }
  }
}

function checkUtf8(buf: Buffer, start: number, end: number): void {
  // ASCII (nearly all text) is valid UTF-8; only text with a high byte needs the full check.
  for (let i = start; i < end; i++) {
    if (buf[i] > 0x7f) {
      if (!isUtf8(buf.subarray(start, end))) fail('text is not valid UTF-8', start);
      return;
    }
  }
}
