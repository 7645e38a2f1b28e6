// The text PostgreSQL prints for the `doc` column's jsonb (queryJsonbText in json-forms.ts), written
// as UTF-8 bytes into one reused buffer instead of as JS strings, so verification can compare it
// with the bytes PostgreSQL sent without decoding them. Verification renders every row of a table,
// and building, sorting and joining strings per key and value (then decoding the row's text to
// compare) cost more than the scan itself; this writes each value's bytes once.
//
// The bytes equal Buffer.from(queryJsonbText(raw)) for every document whose text is valid UTF-8
// (a unit test holds it to that on the BSON corpus and random documents). Text that is not valid
// UTF-8 is copied as it is, where queryJsonbText shows U+FFFD: such bytes never equal the (valid)
// text PostgreSQL prints, so a caller that finds the bytes differ falls back to queryJsonbText.
// The common types are written here; the rare ones (decimal, code, DBPointer, min/max key, dates
// outside JavaScript's range) take queryJsonbText's own text for the value.

import {
  Elements,
  JS_DATE_LIMIT_MS,
  T_ARRAY,
  T_BINARY,
  T_BOOLEAN,
  T_DATE,
  T_DOCUMENT,
  T_DOUBLE,
  T_INT32,
  T_INT64,
  T_NULL,
  T_OBJECTID,
  T_REGEX,
  T_STRING,
  T_SYMBOL,
  T_TIMESTAMP,
  T_UNDEFINED,
  wholeDocument,
} from './bson-elements.js';
import { jsonbValue } from './json-forms.js';
import { numericText } from './jsonb-text.js';

/** The output buffer, reused across documents; one larger than this is let go after its document. */
const KEPT_OUTPUT_BYTES = 1 << 20;
let out = Buffer.allocUnsafe(64 * 1024);
let len = 0;

/**
 * The members of the documents being written (outer ones below inner ones), five numbers each:
 * key start, key end, type, value start, value end; and their order once sorted. A stack, so no
 * document allocates per member.
 */
const FIELDS = 5;
let members = new Int32Array(256 * FIELDS);
let order = new Int32Array(256);
let top = 0;

/** Whether `raw`'s query form, as PostgreSQL prints it as jsonb, is exactly the bytes `text[from..]`. */
export function queryJsonbTextMatches(raw: Buffer, text: Buffer, from = 0): boolean {
  render(raw);
  const same = len === text.length - from && out.compare(text, from, text.length, 0, len) === 0;
  release();
  return same;
}

/** The jsonb text of `raw`'s query form as UTF-8 bytes (a copy; for callers other than the hot path). */
export function queryJsonbBytes(raw: Buffer): Buffer {
  render(raw);
  const copy = Buffer.from(out.subarray(0, len));
  release();
  return copy;
}

function render(raw: Buffer): void {
  const buf = wholeDocument(raw);
  len = 0;
  top = 0; // a document that failed half-way may have left members behind
  writeDocument(buf, 0);
}

function release(): void {
  if (out.length > KEPT_OUTPUT_BYTES) out = Buffer.allocUnsafe(64 * 1024);
  len = 0;
}

function ensure(n: number): void {
  if (len + n <= out.length) return;
  let size = out.length * 2;
  while (size < len + n) size *= 2;
  const bigger = Buffer.allocUnsafe(size);
  out.copy(bigger, 0, 0, len);
  out = bigger;
}

function growMembers(): void {
  const m = new Int32Array(members.length * 2);
  m.set(members);
  members = m;
  const o = new Int32Array(order.length * 2);
  o.set(order);
  order = o;
}

function byte(b: number): void {
  ensure(1);
  out[len++] = b;
}

/** Two bytes: a separator (", " or ": "). */
function pair(a: number, b: number): void {
  ensure(2);
  out[len++] = a;
  out[len++] = b;
}

function ascii(s: string): void {
  ensure(s.length);
  const o = out;
  let p = len;
  for (let i = 0; i < s.length; i++) o[p++] = s.charCodeAt(i);
  len = p;
}

/** Constant ASCII pieces, as bytes. */
function piece(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}
const TRUE = piece('true');
const FALSE = piece('false');
const NULL = piece('null');
const BINARY_OPEN = piece('{"$binary": {"base64": "');
const BINARY_SUBTYPE = piece('", "subType": "');
const BINARY_CLOSE = piece('"}}');
const TIMESTAMP_OPEN = piece('{"$timestamp": {"i": ');
const TIMESTAMP_T = piece(', "t": ');
const CLOSE_TWO = piece('}}');
const REGEX_OPEN = piece('{"$regularExpression": {"options": ');
const REGEX_PATTERN = piece(', "pattern": ');
const HEX = piece('0123456789abcdef');

function bytes(b: Buffer): void {
  ensure(b.length);
  const o = out;
  let p = len;
  for (let i = 0; i < b.length; i++) o[p++] = b[i];
  len = p;
}

function hexBytes(src: Buffer, start: number, end: number): void {
  ensure((end - start) * 2);
  const o = out;
  let p = len;
  for (let i = start; i < end; i++) {
    o[p++] = HEX[src[i] >> 4];
    o[p++] = HEX[src[i] & 15];
  }
  len = p;
}

/**
 * A key or text value as PostgreSQL prints a JSON string: ", \ and the controls escaped (\b \f \n
 * \r \t, others \u00xx), everything else as its bytes; NUL, which jsonb cannot hold, as U+FFFD (the
 * query form's choice).
 */
function text(src: Buffer, start: number, end: number): void {
  ensure(end - start + 2);
  let o = out;
  let p = len;
  o[p++] = 0x22;
  for (let i = start; i < end; i++) {
    const b = src[i];
    if (b >= 0x20 && b !== 0x22 && b !== 0x5c) {
      o[p++] = b;
      continue;
    }
    len = p;
    ensure(6 + end - i);
    o = out;
    switch (b) {
      case 0x22:
      case 0x5c:
        o[p++] = 0x5c;
        o[p++] = b;
        break;
      case 0x00:
        o[p++] = 0xef;
        o[p++] = 0xbf;
        o[p++] = 0xbd;
        break;
      case 0x08:
        o[p++] = 0x5c;
        o[p++] = 0x62; // b
        break;
      case 0x09:
        o[p++] = 0x5c;
        o[p++] = 0x74; // t
        break;
      case 0x0a:
        o[p++] = 0x5c;
        o[p++] = 0x6e; // n
        break;
      case 0x0c:
        o[p++] = 0x5c;
        o[p++] = 0x66; // f
        break;
      case 0x0d:
        o[p++] = 0x5c;
        o[p++] = 0x72; // r
        break;
      default:
        o[p++] = 0x5c;
        o[p++] = 0x75; // u
        o[p++] = 0x30;
        o[p++] = 0x30;
        o[p++] = HEX[b >> 4];
        o[p++] = HEX[b & 15];
    }
  }
  o[p++] = 0x22;
  len = p;
}

/** jsonb's key order: byte length, then bytes. */
function compareKeys(src: Buffer, a: number, b: number): number {
  const aStart = members[a * FIELDS];
  const bStart = members[b * FIELDS];
  const aLength = members[a * FIELDS + 1] - aStart;
  const bLength = members[b * FIELDS + 1] - bStart;
  if (aLength !== bLength) return aLength - bLength;
  for (let i = 0; i < aLength; i++) {
    const d = src[aStart + i] - src[bStart + i];
    if (d !== 0) return d;
  }
  return 0;
}

/** Above this many members a document is sorted by Array.prototype.sort instead of by insertion. */
const INSERTION_SORT_MAX = 24;

/** Sorts order[from..to) by key, equal keys in the order written (so the last of them is the one kept). */
function sortMembers(src: Buffer, from: number, to: number): void {
  if (to - from > INSERTION_SORT_MAX) {
    const sorted = Array.from(order.subarray(from, to)).sort((a, b) => compareKeys(src, a, b) || a - b);
    order.set(sorted, from);
    return;
  }
  for (let i = from + 1; i < to; i++) {
    const m = order[i];
    let j = i - 1;
    while (j >= from && compareKeys(src, order[j], m) > 0) {
      order[j + 1] = order[j];
      j--;
    }
    order[j + 1] = m;
  }
}

function writeDocument(src: Buffer, start: number): void {
  const e = new Elements(src, start);
  const base = top;
  while (e.next()) {
    if (top === order.length) growMembers();
    const f = top * FIELDS;
    members[f] = e.keyStart;
    members[f + 1] = e.keyEnd;
    members[f + 2] = e.type;
    members[f + 3] = e.valueStart;
    members[f + 4] = e.valueEnd;
    order[top] = top;
    top++;
  }
  const end = top;
  if (end - base > 1) sortMembers(src, base, end);
  byte(0x7b);
  let first = true;
  for (let k = base; k < end; k++) {
    const m = order[k];
    // Of a repeated key the last written wins, as in jsonb: it is the last of its run.
    if (k + 1 < end && compareKeys(src, m, order[k + 1]) === 0) continue;
    if (!first) pair(0x2c, 0x20);
    first = false;
    // `members` may be replaced while a nested value is written: read it afresh each time.
    const f = m * FIELDS;
    text(src, members[f], members[f + 1]);
    pair(0x3a, 0x20);
    writeValue(src, members[f + 2], members[f + 3], members[f + 4]);
  }
  byte(0x7d);
  top = base;
}

function writeArray(src: Buffer, start: number): void {
  const e = new Elements(src, start);
  byte(0x5b);
  let first = true;
  while (e.next()) {
    if (!first) pair(0x2c, 0x20);
    first = false;
    writeValue(src, e.type, e.valueStart, e.valueEnd);
  }
  byte(0x5d);
}

/** An int64 at `start` as a JS number when it is one exactly (|v| < 2^53), else undefined. */
function safeInt64(src: Buffer, start: number): number | undefined {
  const high = src.readInt32LE(start + 4);
  if (high < -0x200000 || high >= 0x200000) return undefined;
  return high * 0x100000000 + src.readUInt32LE(start);
}

function writeValue(src: Buffer, type: number, start: number, end: number): void {
  switch (type) {
    case T_STRING:
    case T_SYMBOL: // the query form shows a symbol as its text
      text(src, start + 4, end - 1);
      return;
    case T_DOCUMENT:
      writeDocument(src, start);
      return;
    case T_ARRAY:
      writeArray(src, start);
      return;
    case T_INT32:
      ascii(String(src.readInt32LE(start)));
      return;
    case T_DOUBLE: {
      const v = src.readDoubleLE(start);
      if (!Number.isFinite(v)) break;
      const s = String(v); // no -0; an exponent (1e+21) is the one form numeric prints otherwise
      ascii(s.includes('e') ? numericText(s) : s);
      return;
    }
    case T_INT64: {
      const v = safeInt64(src, start);
      ascii(v !== undefined ? String(v) : src.readBigInt64LE(start).toString());
      return;
    }
    case T_BOOLEAN:
      bytes(src[start] === 1 ? TRUE : FALSE);
      return;
    case T_NULL:
    case T_UNDEFINED:
      bytes(NULL);
      return;
    case T_OBJECTID:
      byte(0x22);
      hexBytes(src, start, end);
      byte(0x22);
      return;
    case T_DATE: {
      const ms = safeInt64(src, start);
      if (ms === undefined || ms < -JS_DATE_LIMIT_MS || ms > JS_DATE_LIMIT_MS) break;
      byte(0x22);
      ascii(new Date(ms).toISOString());
      byte(0x22);
      return;
    }
    case T_BINARY: {
      const subtype = src[start + 4];
      const dataStart = subtype === 2 ? start + 9 : start + 5;
      if (subtype === 4 && end - dataStart === 16) {
        byte(0x22);
        hexBytes(src, dataStart, dataStart + 4);
        byte(0x2d);
        hexBytes(src, dataStart + 4, dataStart + 6);
        byte(0x2d);
        hexBytes(src, dataStart + 6, dataStart + 8);
        byte(0x2d);
        hexBytes(src, dataStart + 8, dataStart + 10);
        byte(0x2d);
        hexBytes(src, dataStart + 10, dataStart + 16);
        byte(0x22);
        return;
      }
      bytes(BINARY_OPEN);
      const base64 = src.toString('base64', dataStart, end);
      ensure(base64.length);
      len += out.write(base64, len, 'latin1');
      bytes(BINARY_SUBTYPE);
      hexBytes(src, start + 4, start + 5);
      bytes(BINARY_CLOSE);
      return;
    }
    case T_TIMESTAMP:
      bytes(TIMESTAMP_OPEN);
      ascii(String(src.readUInt32LE(start)));
      bytes(TIMESTAMP_T);
      ascii(String(src.readUInt32LE(start + 4)));
      bytes(CLOSE_TWO);
      return;
    case T_REGEX: {
      const patternEnd = src.indexOf(0, start);
      bytes(REGEX_OPEN);
      text(src, patternEnd + 1, end - 1);
      bytes(REGEX_PATTERN);
      text(src, start, patternEnd);
      bytes(CLOSE_TWO);
      return;
    }
  }
  // The rare types, and doubles and dates without a plain form: queryJsonbText's own text.
  const s = jsonbValue(src, type, start, end);
  ensure(s.length * 3);
  len += out.write(s, len, 'utf8');
}
