// The two JSON forms of a document. The query form is the `doc` column, natural to query in SQL
// (lossy by design: the `bson` column is the exact copy); canonical Extended JSON v2 keys the
// `_id` column and keeps every type. Both are written straight from the BSON bytes, in key order,
// repeats included, without building JS objects first.

import { Decimal128 } from 'mongodb';
import {
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
import { jsonbText, numericText } from './jsonb-text.js';

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
  return point > 0 ? `${sign}${digits.slice(0, point)}.${digits.slice(point)}` : `${sign}0.${'0'.repeat(-point)}${digits}`;
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
  const e = new Elements(buf, start);
  let out = isArray ? '[' : '{';
  let first = true;
  while (e.next()) {
    if (!first) out += ',';
    first = false;
    if (!isArray) out += jsonKey(buf, e.keyStart, e.keyEnd, form);
    out += valueJson(buf, e.type, e.valueStart, e.valueEnd, form);
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

/**
 * The `doc` column's JSON text: the query form described in ARCHITECTURE.md. Lossy by design
 * (it is for SQL); the `bson` column is the exact copy.
 */
export function queryJson(raw: Buffer): string {
  return documentJson(wholeDocument(raw), 0, false, 'query');
}

/**
 * The whole document as canonical Extended JSON v2, keeping key order and duplicate keys (unlike
 * EJSON.stringify over a deserialized object, which reorders integer-like keys).
 */
export function canonicalJson(raw: Buffer): string {
  return documentJson(wholeDocument(raw), 0, false, 'canonical');
}

const ID_KEY = Buffer.from('_id', 'latin1');

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
  const e = new Elements(buf, 0);
  while (e.next()) {
    if (e.keyEnd - e.keyStart === ID_KEY.length && buf.compare(ID_KEY, 0, ID_KEY.length, e.keyStart, e.keyEnd) === 0) {
      return valueJson(buf, e.type, e.valueStart, e.valueEnd, 'canonical');
    }
  }
  throw new CodecError(
    'document has no _id field; MongoDB collections always store one, so this document cannot be keyed ' +
      '(check that the source is a collection, not a view or aggregation output)',
  );
}

/**
 * The text PostgreSQL prints for the `doc` column's jsonb, written straight from the bytes: equal to
 * `jsonbText(queryJson(raw))` (jsonb-text.ts) without writing and parsing the query form first.
 * Documents have their keys sorted as jsonb sorts them (byte length, then bytes; the last of a
 * repeated key kept), numbers as numeric prints them; the rare values whose query form is itself
 * an object (binary, regex, timestamp, code, ...) go through jsonbText.
 */
export function queryJsonbText(raw: Buffer): string {
  return jsonbDocument(wholeDocument(raw), 0, false);
}

interface JsonbMember {
  key: string;
  printed: string;
  bytes: number;
  ascii: boolean;
  value: string;
  order: number;
}

function jsonbDocument(buf: Buffer, start: number, isArray: boolean): string {
  const e = new Elements(buf, start);
  if (isArray) {
    let out = '[';
    let first = true;
    while (e.next()) {
      if (!first) out += ', ';
      first = false;
      out += jsonbValue(buf, e.type, e.valueStart, e.valueEnd);
    }
    return out + ']';
  }
  const members: JsonbMember[] = [];
  while (e.next()) {
    const printed = jsonKey(buf, e.keyStart, e.keyEnd, 'query').slice(0, -1);
    let ascii = true;
    for (let i = e.keyStart; i < e.keyEnd; i++) {
      if (buf[i] > 0x7f || buf[i] === 0) {
        ascii = false;
        break;
      }
    }
    // The key as jsonb holds it: the query form's text (NUL shown as U+FFFD).
    const key = ascii ? buf.toString('latin1', e.keyStart, e.keyEnd) : (JSON.parse(printed) as string);
    members.push({
      key,
      printed,
      bytes: ascii ? key.length : Buffer.byteLength(key, 'utf8'),
      ascii,
      value: jsonbValue(buf, e.type, e.valueStart, e.valueEnd),
      order: members.length,
    });
  }
  if (members.length > 1) {
    members.sort(
      (a, b) =>
        a.bytes - b.bytes ||
        (a.ascii && b.ascii
          ? a.key < b.key
            ? -1
            : a.key > b.key
              ? 1
              : 0
          : Buffer.compare(Buffer.from(a.key, 'utf8'), Buffer.from(b.key, 'utf8'))) ||
        b.order - a.order,
    );
  }
  let out = '{';
  for (let k = 0; k < members.length; k++) {
    const m = members[k];
    if (k > 0 && m.key === members[k - 1].key) continue;
    if (k > 0) out += ', ';
    out += `${m.printed}: ${m.value}`;
  }
  return out + '}';
}

/**
 * The jsonb text of one element's value (as queryJsonbText prints it inside a document); exported
 * for jsonb-bytes.ts, which writes the common types as bytes and hands it the rare ones.
 */
export function jsonbValue(buf: Buffer, type: number, start: number, end: number): string {
  switch (type) {
    case T_DOCUMENT:
      return jsonbDocument(buf, start, false);
    case T_ARRAY:
      return jsonbDocument(buf, start, true);
    case T_DOUBLE: {
      const v = valueJson(buf, type, start, end, 'query');
      return v.includes('e') && v.charCodeAt(0) !== 0x22 ? numericText(v) : v; // String(v) has no -0 and no other form numeric changes
    }
    case T_DECIMAL128: {
      const v = valueJson(buf, type, start, end, 'query');
      return v.charCodeAt(0) === 0x22 ? v : numericText(v);
    }
    default: {
      const v = valueJson(buf, type, start, end, 'query');
      return v.charCodeAt(0) === 0x7b ? jsonbText(v) : v;
    }
  }
}
