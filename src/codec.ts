// The document codec: one raw BSON document as MongoDB sent it <-> the row stored in Postgres.
//
// Why this module walks BSON elements itself instead of calling BSON.deserialize: js-bson's
// deserializer builds plain JS objects, and those cannot hold what a backup must keep exactly —
// duplicate keys collapse, integer-like keys ("2", "10") jump ahead of the others, datetimes outside
// JavaScript's Date range become Invalid Date (and serialize back as 0), documents shaped like
// DBRefs are reordered. js-bson's own element framing (`onDemand.parseToElements`) is marked
// experimental and "not intended for production use". So the walker below only frames elements
// (type, key, value bounds); every value is built with js-bson's own classes and written back with
// js-bson's own serializer, which is also what the MongoDB driver uses to insert.

import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import {
  Binary,
  BSONRegExp,
  BSONSymbol,
  Code,
  Decimal128,
  Double,
  Int32,
  Long,
  MaxKey,
  MinKey,
  ObjectId,
  Timestamp,
  BSON,
  type Document,
} from 'mongodb';

export interface StoredRow {
  id: string;
  doc: string;
  bson: Buffer;
  hash: Buffer;
}

/** A document the codec cannot read or cannot rebuild exactly; the message says which and why. */
export class CodecError extends Error {
  override name = 'CodecError';
}

// ---------------------------------------------------------------------------------------------
// Element framing

const T_DOUBLE = 0x01;
const T_STRING = 0x02;
const T_DOCUMENT = 0x03;
const T_ARRAY = 0x04;
const T_BINARY = 0x05;
const T_UNDEFINED = 0x06;
const T_OBJECTID = 0x07;
const T_BOOLEAN = 0x08;
const T_DATE = 0x09;
const T_NULL = 0x0a;
const T_REGEX = 0x0b;
const T_DBPOINTER = 0x0c;
const T_CODE = 0x0d;
const T_SYMBOL = 0x0e;
const T_CODE_W_SCOPE = 0x0f;
const T_INT32 = 0x10;
const T_TIMESTAMP = 0x11;
const T_INT64 = 0x12;
const T_DECIMAL128 = 0x13;
const T_MINKEY = 0xff;
const T_MAXKEY = 0x7f;

/** JavaScript Date covers ±8.64e15 ms around the epoch; BSON datetimes cover all of int64. */
const JS_DATE_LIMIT_MS = 8.64e15;

function fail(what: string, offset: number): never {
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
function stringEnd(buf: Buffer, start: number, limit: number): number {
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

// ---------------------------------------------------------------------------------------------
// Query form (the `doc` column) and canonical Extended JSON (the `_id` column)

/** How the JSON writer renders values: the query form for SQL, or canonical EJSON v2 for keys. */
type Form = 'query' | 'canonical';

/** JSONB rejects NUL anywhere in text, so the query form shows it as U+FFFD. */
function jsonString(s: string, form: Form): string {
  if (form === 'query' && s.includes('\0')) s = s.replaceAll('\0', '\uFFFD');
  return JSON.stringify(s);
}

function utf8(buf: Buffer, start: number, end: number): string {
  return buf.toString('utf8', start, end);
}

function hex2(n: number): string {
  return n < 16 ? '0' + n.toString(16) : n.toString(16);
}

function uuidString(buf: Buffer, start: number): string {
  const h = buf.toString('hex', start, start + 16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The `$numberDouble` text of js-bson's canonical EJSON: whole numbers with `.0`, -0 as `-0.0`, others shortest round-trip. */
function canonicalDouble(v: number): string {
  if (Object.is(v, -0)) return '-0.0';
  return Number.isInteger(v) ? v.toFixed(1) : String(v);
}

const MAX_DECIMAL_COEFFICIENT = 10n ** 34n - 1n;

/**
 * The text Decimal128.toString() gives, computed directly for canonical finite values (the common
 * case, several times faster: js-bson divides the 113-bit coefficient in 32-bit steps); special and
 * non-canonical encodings go to js-bson itself. Equality with js-bson is a property test.
 */
function decimal128Text(buf: Buffer, start: number): string {
  const high = buf.readBigUInt64LE(start + 8);
  if (((high >> 61n) & 3n) === 3n) return new Decimal128(buf.subarray(start, start + 16)).toString(); // Infinity, NaN, or non-canonical
  const coefficientHigh = high & 0x1ffffffffffffn;
  let digits: string;
  const lowHigh = buf.readUInt32LE(start + 4);
  if (coefficientHigh === 0n && lowHigh < 0x200000) {
    digits = String(lowHigh * 0x100000000 + buf.readUInt32LE(start)); // below 2^53: exact as a JS number
  } else {
    const coefficient = (coefficientHigh << 64n) | buf.readBigUInt64LE(start);
    if (coefficient > MAX_DECIMAL_COEFFICIENT) return new Decimal128(buf.subarray(start, start + 16)).toString();
    digits = coefficient.toString();
  }
  const sign = high >> 63n === 1n ? '-' : '';
  const exponent = Number((high >> 49n) & 0x3fffn) - 6176;
  const scientificExponent = digits.length - 1 + exponent;
  if (scientificExponent >= 34 || scientificExponent <= -7 || exponent > 0) {
    const mantissa = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${mantissa}E${scientificExponent > 0 ? '+' : ''}${scientificExponent}`;
  }
  if (exponent === 0) return sign + digits;
  const point = digits.length + exponent;
  return point > 0
    ? `${sign}${digits.slice(0, point)}.${digits.slice(point)}`
    : `${sign}0.${'0'.repeat(-point)}${digits}`;
}

function dateJson(ms: bigint, form: Form): string {
  if (form === 'query') {
    const n = Number(ms);
    if (n >= -JS_DATE_LIMIT_MS && n <= JS_DATE_LIMIT_MS) return JSON.stringify(new Date(n).toISOString());
  }
  return `{"$date":{"$numberLong":"${ms}"}}`;
}

/** `"key":` for a document field; plain ASCII keys (nearly all) skip UTF-8 decoding and escaping. */
function jsonKey(buf: Buffer, start: number, end: number, form: Form): string {
  for (let i = start; i < end; i++) {
    const b = buf[i];
    if (b < 0x20 || b > 0x7e || b === 0x22 || b === 0x5c) return jsonString(utf8(buf, start, end), form) + ':';
  }
  return `"${buf.toString('latin1', start, end)}":`;
}

function documentJson(buf: Buffer, start: number, isArray: boolean, form: Form): string {
  const end = documentEnd(buf, start, buf.length);
  let out = isArray ? '[' : '{';
  let first = true;
  let p = start + 4;
  while (p < end) {
    const type = buf[p];
    const keyStart = p + 1;
    const valueStart = cstringEnd(buf, keyStart, end);
    const next = valueEnd(buf, type, valueStart, end);
    if (!first) out += ',';
    first = false;
    if (!isArray) out += jsonKey(buf, keyStart, valueStart - 1, form);
    out += valueJson(buf, type, valueStart, next, form);
    p = next;
  }
  return out + (isArray ? ']' : '}');
}

function valueJson(buf: Buffer, type: number, start: number, end: number, form: Form): string {
  const query = form === 'query';
  switch (type) {
    case T_DOUBLE: {
      const v = buf.readDoubleLE(start);
      if (query) {
        if (Number.isFinite(v)) return String(v); // -0 prints as 0; exponents (1e+21) are valid JSON and numeric
        return Number.isNaN(v) ? '"NaN"' : v > 0 ? '"Infinity"' : '"-Infinity"';
      }
      return `{"$numberDouble":"${canonicalDouble(v)}"}`;
    }
    case T_STRING:
      return jsonString(utf8(buf, start + 4, end - 1), form);
    case T_DOCUMENT:
      return documentJson(buf, start, false, form);
    case T_ARRAY:
      return documentJson(buf, start, true, form);
    case T_BINARY: {
      const subtype = buf[start + 4];
      const dataStart = subtype === 2 ? start + 9 : start + 5;
      if (query && subtype === 4 && end - dataStart === 16) return `"${uuidString(buf, dataStart)}"`;
      return `{"$binary":{"base64":"${buf.toString('base64', dataStart, end)}","subType":"${hex2(subtype)}"}}`;
    }
    case T_UNDEFINED:
      return query ? 'null' : '{"$undefined":true}';
    case T_OBJECTID:
      return query ? `"${buf.toString('hex', start, end)}"` : `{"$oid":"${buf.toString('hex', start, end)}"}`;
    case T_BOOLEAN:
      return buf[start] === 1 ? 'true' : 'false';
    case T_DATE:
      return dateJson(buf.readBigInt64LE(start), form);
    case T_NULL:
      return 'null';
    case T_REGEX: {
      const patternEnd = buf.indexOf(0, start);
      const pattern = jsonString(utf8(buf, start, patternEnd), form);
      const options = jsonString(utf8(buf, patternEnd + 1, end - 1), form);
      return `{"$regularExpression":{"pattern":${pattern},"options":${options}}}`;
    }
    case T_DBPOINTER: {
      const ns = jsonString(utf8(buf, start + 4, end - 13), form);
      return `{"$dbPointer":{"$ref":${ns},"$id":{"$oid":"${buf.toString('hex', end - 12, end)}"}}}`;
    }
    case T_CODE:
      return `{"$code":${jsonString(utf8(buf, start + 4, end - 1), form)}}`;
    case T_SYMBOL: {
      const s = jsonString(utf8(buf, start + 4, end - 1), form);
      return query ? s : `{"$symbol":${s}}`;
    }
    case T_CODE_W_SCOPE: {
      const codeEnd = stringEnd(buf, start + 4, end);
      const code = jsonString(utf8(buf, start + 8, codeEnd - 1), form);
      return `{"$code":${code},"$scope":${documentJson(buf, codeEnd, false, form)}}`;
    }
    case T_INT32:
      return query ? String(buf.readInt32LE(start)) : `{"$numberInt":"${buf.readInt32LE(start)}"}`;
    case T_TIMESTAMP:
      return `{"$timestamp":{"t":${buf.readUInt32LE(start + 4)},"i":${buf.readUInt32LE(start)}}}`;
    case T_INT64:
      return query ? buf.readBigInt64LE(start).toString() : `{"$numberLong":"${buf.readBigInt64LE(start)}"}`;
    case T_DECIMAL128: {
      const text = decimal128Text(buf, start);
      if (!query) return `{"$numberDecimal":"${text}"}`;
      // Finite Decimal128 text ("1.23E+3", "-0", "0E-6176") is already a valid JSON number, and every
      // finite Decimal128 fits PostgreSQL numeric (at most 6145 digits before and 6176 after the point).
      return text === 'NaN' || text === 'Infinity' || text === '-Infinity' ? `"${text}"` : text;
    }
    case T_MINKEY:
      return '{"$minKey":1}';
    case T_MAXKEY:
      return '{"$maxKey":1}';
    default:
      return fail(`unknown element type 0x${type.toString(16)}`, start - 1);
  }
}

function asBuffer(raw: Uint8Array): Buffer {
  return Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
}

/** Checks that `raw` holds exactly one BSON document (no trailing bytes). */
function wholeDocument(raw: Uint8Array): Buffer {
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
 * The `doc` column's JSON text: the query form described in ARCHITECTURE.md. Lossy by design
 * (it is for SQL); the `bson` column is the exact copy.
 */
export function queryJson(raw: Buffer): string {
  return documentJson(wholeDocument(raw), 0, false, 'query');
}

/**
 * Throws a CodecError unless every text value the driver's deserializer checks (string, code,
 * symbol, the code of code-with-scope and its scope's strings, the DBPointer namespace) is valid
 * UTF-8; keys and regular expressions are not checked, as the deserializer does not check them.
 * Together with queryJson, which frames every element as BSON.deserialize does, this proves the
 * bytes parse as BSON without building the JS objects the deserializer would (which verification
 * would only throw away).
 */
export function assertUtf8Text(raw: Buffer): void {
  const buf = wholeDocument(raw);
  utf8TextOf(buf, 0);
}

function utf8TextOf(buf: Buffer, start: number): void {
  const end = documentEnd(buf, start, buf.length);
  let p = start + 4;
  while (p < end) {
    const type = buf[p];
    const valueStart = cstringEnd(buf, p + 1, end);
    const next = valueEnd(buf, type, valueStart, end);
    switch (type) {
      case T_STRING:
      case T_CODE:
      case T_SYMBOL:
        checkUtf8(buf, valueStart + 4, next - 1);
        break;
      case T_DBPOINTER:
        checkUtf8(buf, valueStart + 4, next - 13);
        break;
      case T_DOCUMENT:
      case T_ARRAY:
        utf8TextOf(buf, valueStart);
        break;
      case T_CODE_W_SCOPE: {
        const codeEnd = stringEnd(buf, valueStart + 4, next);
        checkUtf8(buf, valueStart + 8, codeEnd - 1);
        utf8TextOf(buf, codeEnd);
        break;
      }
    }
    p = next;
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

/**
 * The whole document as canonical Extended JSON v2, keeping key order and duplicate keys (unlike
 * EJSON.stringify over a deserialized object, which reorders integer-like keys).
 */
export function canonicalJson(raw: Buffer): string {
  return documentJson(wholeDocument(raw), 0, false, 'canonical');
}

const ID_KEY = Buffer.from('_id\0', 'latin1');

/**
 * The `_id` column: canonical Extended JSON of the document's `_id` value (the first `_id` when a
 * raw document repeats it, as MongoDB itself does). Equal to EJSON.stringify(_id, {relaxed:false})
 * for every value EJSON renders faithfully; where EJSON would not be injective (embedded documents
 * with integer-like keys, duplicate keys) the key order and every key are kept, so distinct `_id`s
 * always get distinct keys. (Text that is not valid UTF-8, which MongoDB does not produce for
 * `_id`s written by drivers, is read with U+FFFD replacements and is the one exception.)
 */
export function idKey(raw: Buffer): string {
  const buf = wholeDocument(raw);
  const end = buf.length - 1;
  let p = 4;
  while (p < end) {
    const type = buf[p];
    const valueStart = cstringEnd(buf, p + 1, end);
    const next = valueEnd(buf, type, valueStart, end);
    if (valueStart - p - 1 === ID_KEY.length && buf.compare(ID_KEY, 0, 4, p + 1, valueStart) === 0) {
      return valueJson(buf, type, valueStart, next, 'canonical');
    }
    p = next;
  }
  throw new CodecError(
    'document has no _id field; MongoDB collections always store one, so this document cannot be keyed ' +
      '(check that the source is a collection, not a view or aggregation output)',
  );
}

/**
 * Everything stored for one document. The bytes are copied so a row does not keep alive the much
 * larger reply buffer the driver sliced the document from.
 */
export function encodeDocument(raw: Buffer): StoredRow {
  const input = wholeDocument(raw);
  const bson = input.byteOffset === 0 && input.byteLength === input.buffer.byteLength ? input : Buffer.from(input);
  return {
    id: idKey(bson),
    doc: documentJson(bson, 0, false, 'query'),
    bson,
    hash: createHash('sha256').update(bson).digest(),
  };
}

// ---------------------------------------------------------------------------------------------
// Exact decoding for re-insertion through the driver

/**
 * A document whose key order or repeated keys a plain JS object cannot hold (integer-like keys
 * such as "2" after "b", or the same key twice). js-bson serializes a Map by iterating its
 * entries, so iteration here yields the original fields in their original order, repeats
 * included. `get(key)` answers with the last occurrence (as JSONB keeps the last).
 */
export class OrderedDocument extends Map<string, unknown> {
  readonly fields: ReadonlyArray<readonly [string, unknown]>;

  constructor(fields: Array<readonly [string, unknown]>) {
    super();
    this.fields = fields;
    for (const [key, value] of fields) super.set(key, value);
  }

  override entries(): MapIterator<[string, unknown]> {
    return this.fields[Symbol.iterator]() as unknown as MapIterator<[string, unknown]>;
  }

  override [Symbol.iterator](): MapIterator<[string, unknown]> {
    return this.entries();
  }
}

/**
 * A BSON datetime outside JavaScript's Date range. js-bson writes any Date as
 * Long.fromNumber(value.getTime()), so answering getTime() with the stored milliseconds makes the
 * driver write the original int64 back.
 */
export class OutOfRangeDate extends Date {
  readonly milliseconds: number;

  constructor(milliseconds: number) {
    super(NaN);
    this.milliseconds = milliseconds;
  }

  override getTime(): number {
    return this.milliseconds;
  }

  override valueOf(): number {
    return this.milliseconds;
  }
}

/** The field path used in error messages, e.g. `items.3.price`. */
function pathOf(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`;
}

function notReinsertable(path: string, why: string): never {
  throw new CodecError(`field "${path}" cannot be re-inserted exactly through the MongoDB Node.js driver: ${why}`);
}

function strictUtf8(buf: Buffer, start: number, end: number, path: string): string {
  const text = buf.toString('utf8', start, end);
  if (text.includes('\uFFFD') && !Buffer.from(text, 'utf8').equals(buf.subarray(start, end))) {
    notReinsertable(path, 'it holds bytes that are not valid UTF-8, which the driver cannot write back');
  }
  return text;
}

function decodeDocument(buf: Buffer, start: number, isArray: boolean, path: string): unknown {
  const end = documentEnd(buf, start, buf.length);
  const fields: Array<readonly [string, unknown]> = [];
  let p = start + 4;
  while (p < end) {
    const type = buf[p];
    const valueStart = cstringEnd(buf, p + 1, end);
    const next = valueEnd(buf, type, valueStart, end);
    const key = strictUtf8(buf, p + 1, valueStart - 1, pathOf(path, '(key)'));
    const fieldPath = pathOf(path, key);
    if (isArray && key !== String(fields.length)) {
      notReinsertable(fieldPath, `array element key "${key}" is not its index ${fields.length}`);
    }
    fields.push([key, decodeValue(buf, type, valueStart, next, fieldPath)]);
    p = next;
  }
  if (isArray) return fields.map(([, value]) => value);

  const obj: Record<string, unknown> = {};
  for (const [key, value] of fields) {
    // A plain `obj.__proto__ = v` would set the prototype instead of storing a field.
    if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
    else obj[key] = value;
  }
  const keys = Object.keys(obj);
  const orderKept = keys.length === fields.length && keys.every((key, i) => key === fields[i][0]);
  return orderKept ? obj : new OrderedDocument(fields);
}

function decodeValue(buf: Buffer, type: number, start: number, end: number, path: string): unknown {
  switch (type) {
    case T_DOUBLE:
      return new Double(buf.readDoubleLE(start));
    case T_STRING:
      return strictUtf8(buf, start + 4, end - 1, path);
    case T_DOCUMENT:
      return decodeDocument(buf, start, false, path);
    case T_ARRAY:
      return decodeDocument(buf, start, true, path);
    case T_BINARY: {
      const subtype = buf[start + 4];
      return new Binary(Uint8Array.prototype.slice.call(buf, subtype === 2 ? start + 9 : start + 5, end), subtype);
    }
    case T_UNDEFINED:
      return notReinsertable(path, 'it has the deprecated BSON type Undefined (0x06), which the driver writes as null');
    case T_OBJECTID:
      return new ObjectId(Uint8Array.prototype.slice.call(buf, start, end));
    case T_BOOLEAN:
      return buf[start] === 1;
    case T_DATE: {
      const ms = buf.readBigInt64LE(start);
      const n = Number(ms);
      if (n >= -JS_DATE_LIMIT_MS && n <= JS_DATE_LIMIT_MS) return new Date(n);
      if (BigInt(n) !== ms) {
        notReinsertable(path, `datetime ${ms} ms is not a whole number the driver can write (it passes dates as JS numbers)`);
      }
      return new OutOfRangeDate(n);
    }
    case T_NULL:
      return null;
    case T_REGEX: {
      const patternEnd = buf.indexOf(0, start);
      const pattern = strictUtf8(buf, start, patternEnd, path);
      const options = strictUtf8(buf, patternEnd + 1, end - 1, path);
      const sorted = [...options].sort().join('');
      if (sorted !== options) {
        notReinsertable(path, `regular expression flags "${options}" are not in the sorted order the driver writes`);
      }
      // The constructor rejects flags outside "imxlsu" that MongoDB stores as given; set them afterwards.
      const regex = new BSONRegExp(pattern);
      regex.options = options;
      return regex;
    }
    case T_DBPOINTER:
      return notReinsertable(path, 'it has the deprecated BSON type DBPointer (0x0C), which the driver writes as a DBRef document');
    case T_CODE:
      return new Code(strictUtf8(buf, start + 4, end - 1, path));
    case T_SYMBOL:
      return new BSONSymbol(strictUtf8(buf, start + 4, end - 1, path));
    case T_CODE_W_SCOPE: {
      const codeEnd = stringEnd(buf, start + 4, end);
      const scope = decodeDocument(buf, codeEnd, false, pathOf(path, '$scope'));
      return new Code(strictUtf8(buf, start + 8, codeEnd - 1, path), scope as Document);
    }
    case T_INT32:
      return new Int32(buf.readInt32LE(start));
    case T_TIMESTAMP:
      return new Timestamp({ t: buf.readUInt32LE(start + 4), i: buf.readUInt32LE(start) });
    case T_INT64:
      return Long.fromBits(buf.readInt32LE(start), buf.readInt32LE(start + 4));
    case T_DECIMAL128:
      return new Decimal128(Uint8Array.prototype.slice.call(buf, start, end));
    case T_MINKEY:
      return new MinKey();
    case T_MAXKEY:
      return new MaxKey();
    default:
      return fail(`unknown element type 0x${type.toString(16)}`, start - 1);
  }
}

/**
 * The document as JS values that the MongoDB driver (js-bson) serializes back to exactly `raw`.
 * Usually a plain object; an OrderedDocument where key order or repeated keys need it. Throws a
 * CodecError naming the field when the driver cannot write the document back exactly (deprecated
 * Undefined or DBPointer values, unsorted regex flags, invalid UTF-8, ...). Every result is
 * re-serialized and compared with `raw` before it is returned, so data is never silently changed.
 */
export function decodeExact(raw: Buffer): Document {
  const buf = wholeDocument(raw);
  const doc = decodeDocument(buf, 0, false, '') as Document;
  assertReencodes(doc, buf);
  return doc;
}

/** Throws unless js-bson serializes `doc` to exactly `raw`. */
export function assertReencodes(doc: Document, raw: Buffer): void {
  const again = BSON.serialize(doc);
  if (!asBuffer(again).equals(raw)) {
    let at = 0;
    while (at < raw.length && at < again.length && raw[at] === again[at]) at++;
    throw new CodecError(
      `document cannot be re-inserted exactly through the MongoDB Node.js driver: ` +
        `re-encoding differs from the stored bytes at byte ${at} (${raw.length} bytes stored, ${again.length} re-encoded)`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Content hash

/**
 * Order-independent digest of a set of documents: the sum of their sha256 digests read as 256-bit
 * unsigned big-endian integers, modulo 2^256, as 64 lowercase hex digits. Kept as eight 32-bit
 * limbs so adding a digest is eight additions, not BigInt parsing.
 */
export class ContentHash {
  private readonly limbs = new Uint32Array(8); // limbs[0] most significant
  private count = 0;
  private byteCount = 0;

  add(hash: Buffer, bsonBytes: number): void {
    if (hash.length !== 32) throw new CodecError(`content hash needs a 32-byte sha256 digest, got ${hash.length} bytes`);
    let carry = 0;
    for (let i = 7; i >= 0; i--) {
      const sum = this.limbs[i] + hash.readUInt32BE(i * 4) + carry;
      this.limbs[i] = sum >>> 0;
      carry = sum > 0xffffffff ? 1 : 0;
    }
    this.count++;
    this.byteCount += bsonBytes;
  }

  get documents(): number {
    return this.count;
  }

  get bytes(): number {
    return this.byteCount;
  }

  digest(): string {
    let out = '';
    for (const limb of this.limbs) out += limb.toString(16).padStart(8, '0');
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// COPY ... FROM STDIN (FORMAT binary) for the columns (_id text, doc jsonb, bson bytea, hash bytea)

export const COPY_COLUMNS = ['_id', 'doc', 'bson', 'hash'];

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
  const idBytes = Buffer.byteLength(r.id, 'utf8');
  const docBytes = Buffer.byteLength(r.doc, 'utf8');
  const size = 2 + 4 + idBytes + 4 + 1 + docBytes + 4 + r.bson.length + 4 + r.hash.length;
  const out = Buffer.allocUnsafe(size);
  let p = out.writeInt16BE(COPY_COLUMNS.length, 0);
  p = out.writeInt32BE(idBytes, p);
  p += out.write(r.id, p, 'utf8');
  p = out.writeInt32BE(docBytes + 1, p);
  out[p++] = JSONB_VERSION;
  p += out.write(r.doc, p, 'utf8');
  p = out.writeInt32BE(r.bson.length, p);
  p += r.bson.copy(out, p);
  p = out.writeInt32BE(r.hash.length, p);
  r.hash.copy(out, p);
  return out;
}

/** The field count -1 that ends the data. */
export function copyBinaryTrailer(): Buffer {
  const trailer = Buffer.alloc(2);
  trailer.writeInt16BE(-1, 0);
  return trailer;
}

/**
 * One row of the two columns (text, jsonb) in COPY binary format: a text key and a JSON text sent
 * as jsonb, or NULL when there is no JSON. Lets a check stream rebuilt documents into a temporary
 * table for Postgres to compare as jsonb.
 */
export function copyBinaryTextJsonb(text: string, json: string | null): Buffer {
  const textBytes = Buffer.byteLength(text, 'utf8');
  const jsonBytes = json === null ? 0 : Buffer.byteLength(json, 'utf8');
  const out = Buffer.allocUnsafe(2 + 4 + textBytes + 4 + (json === null ? 0 : 1 + jsonBytes));
  let p = out.writeInt16BE(2, 0);
  p = out.writeInt32BE(textBytes, p);
  p += out.write(text, p, 'utf8');
  if (json === null) {
    out.writeInt32BE(-1, p);
    return out;
  }
  p = out.writeInt32BE(jsonBytes + 1, p);
  out[p++] = JSONB_VERSION;
  out.write(json, p, 'utf8');
  return out;
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
  if (!buf.subarray(pos, pos + COPY_SIGNATURE.length).equals(COPY_SIGNATURE)) throw new CodecError('COPY data is not in binary format (no PGCOPY signature)');
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
