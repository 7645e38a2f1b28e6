// Exact decoding for re-insertion through the MongoDB driver: JS values that js-bson serializes
// back to exactly the stored bytes, or a CodecError naming the field that cannot be written back.

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
import {
  asBuffer,
  CodecError,
  Elements,
  fail,
  JS_DATE_LIMIT_MS,
  stringEnd,
  T_ARRAY,
  T_BINARY,
  T_BOOLEAN,
  T_CODE,
  T_CODE_W_SCOPE,
  T_DATE,
  T_DBPOINTER,
  T_DECIMAL128,
  T_DOCUMENT,
  T_DOUBLE,
  T_INT32,
  T_INT64,
  T_MAXKEY,
  T_MINKEY,
  T_NULL,
  T_OBJECTID,
  T_REGEX,
  T_STRING,
  T_SYMBOL,
  T_TIMESTAMP,
  T_UNDEFINED,
  wholeDocument,
} from './bson-elements.js';

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
  const e = new Elements(buf, start);
  const fields: Array<readonly [string, unknown]> = [];
  while (e.next()) {
    const key = strictUtf8(buf, e.keyStart, e.keyEnd, pathOf(path, '(key)'));
    const fieldPath = pathOf(path, key);
    if (isArray && key !== String(fields.length)) {
      notReinsertable(fieldPath, `array element key "${key}" is not its index ${fields.length}`);
    }
    fields.push([key, decodeValue(buf, e.type, e.valueStart, e.valueEnd, fieldPath)]);
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
