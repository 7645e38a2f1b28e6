// The text PostgreSQL prints for a jsonb value, computed from the JSON text it was made from, so a
// check can compare a stored `doc` column with the query form rebuilt from the bytes without
// sending the rebuilt form to Postgres to parse. jsonb keeps no key order or whitespace:
// - object keys sorted by their UTF-8 byte length, then bytewise; of a repeated key the last wins;
// - `": "` after a key, `", "` between members and elements;
// - numbers as PostgreSQL numeric prints them: no exponent, the input's scale kept (1.50 stays
//   1.50, 1.5e-3 is 0.0015, 1e21 is 1000000000000000000000), no negative zero;
// - strings escaped as PostgreSQL escapes them (", \, \b \f \n \r \t, other controls as \u00xx).
// Equal text means equal jsonb; a difference may still be jsonb-equal (1.0 and 1.00 are equal
// numerics), so a caller that finds a difference asks Postgres before reporting it.

import { CodecError } from './bson-elements.js';

interface Cursor {
  s: string;
  i: number;
}

/** PostgreSQL's text of `json::jsonb` for valid JSON text (as the query form writes it). */
export function jsonbText(json: string): string {
  const c: Cursor = { s: json, i: 0 };
  const out = value(c);
  skipSpace(c);
  if (c.i !== json.length) bad(c, 'text after the value');
  return out;
}

function bad(c: Cursor, what: string): never {
  throw new CodecError(`not JSON the query form writes: ${what} at offset ${c.i}`);
}

function skipSpace(c: Cursor): void {
  for (;;) {
    const ch = c.s.charCodeAt(c.i);
    if (ch === 0x20 || ch === 0x0a || ch === 0x0d || ch === 0x09) c.i++;
    else return;
  }
}

function value(c: Cursor): string {
  skipSpace(c);
  const ch = c.s.charCodeAt(c.i);
  if (ch === 0x7b /* { */) return object(c);
  if (ch === 0x5b /* [ */) return array(c);
  if (ch === 0x22 /* " */) return pgString(stringToken(c));
  if (ch === 0x2d || (ch >= 0x30 && ch <= 0x39)) return numericText(numberToken(c));
  for (const word of ['true', 'false', 'null']) {
    if (c.s.startsWith(word, c.i)) {
      c.i += word.length;
      return word;
    }
  }
  return bad(c, 'unexpected character');
}

interface Member {
  key: string;
  /** The key as PostgreSQL prints it, with its quotes. */
  printed: string;
  bytes: number;
  ascii: boolean;
  value: string;
  order: number;
}

/** Whether every character is ASCII (then UTF-16 order is byte order and length is byte length). */
function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

function object(c: Cursor): string {
  c.i++; // {
  const members: Member[] = [];
  skipSpace(c);
  if (c.s.charCodeAt(c.i) === 0x7d) {
    c.i++;
    return '{}';
  }
  for (;;) {
    skipSpace(c);
    if (c.s.charCodeAt(c.i) !== 0x22) bad(c, 'expected a key');
    const token = stringToken(c);
    const key = token.includes('\\') ? (JSON.parse(token) as string) : token.slice(1, -1);
    const ascii = isAscii(key);
    skipSpace(c);
    if (c.s.charCodeAt(c.i) !== 0x3a) bad(c, 'expected ":"');
    c.i++;
    members.push({
      key,
      printed: pgString(token),
      bytes: ascii ? key.length : Buffer.byteLength(key, 'utf8'),
      ascii,
      value: value(c),
      order: members.length,
    });
    skipSpace(c);
    const sep = c.s.charCodeAt(c.i++);
    if (sep === 0x7d) break;
    if (sep !== 0x2c) bad(c, 'expected "," or "}"');
  }
  // Length first, then bytes; equal keys latest first, so keeping the first of each keeps the last written.
  members.sort((a, b) => a.bytes - b.bytes || compareKeys(a, b) || b.order - a.order);
  let out = '{';
  for (let k = 0; k < members.length; k++) {
    const m = members[k];
    if (k > 0 && m.key === members[k - 1].key) continue;
    if (out.length > 1) out += ', ';
    out += `${m.printed}: ${m.value}`;
  }
  return out + '}';
}

function compareKeys(a: Member, b: Member): number {
  if (a.ascii && b.ascii) return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
  return Buffer.compare(Buffer.from(a.key, 'utf8'), Buffer.from(b.key, 'utf8'));
}

function array(c: Cursor): string {
  c.i++; // [
  skipSpace(c);
  if (c.s.charCodeAt(c.i) === 0x5d) {
    c.i++;
    return '[]';
  }
  let out = '[';
  for (let first = true; ; first = false) {
    if (!first) out += ', ';
    out += value(c);
    skipSpace(c);
    const sep = c.s.charCodeAt(c.i++);
    if (sep === 0x5d) break;
    if (sep !== 0x2c) bad(c, 'expected "," or "]"');
  }
  return out + ']';
}

/** A string token with its quotes, as written. */
function stringToken(c: Cursor): string {
  const start = c.i;
  let i = start + 1;
  for (;;) {
    const q = c.s.indexOf('"', i);
    if (q === -1) bad(c, 'unterminated string');
    let slashes = 0;
    for (let j = q - 1; j > start && c.s.charCodeAt(j) === 0x5c; j--) slashes++;
    i = q + 1;
    if (slashes % 2 === 0) break;
  }
  c.i = i;
  return c.s.slice(start, i);
}

/**
 * A string token as PostgreSQL prints it. Without a backslash it is printed as written (no
 * character needs escaping, or JSON would not have accepted it); with one, it is decoded and
 * escaped again the way PostgreSQL escapes.
 */
function pgString(token: string): string {
  if (!token.includes('\\')) return token;
  const s = JSON.parse(token) as string;
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    switch (ch) {
      case 0x08:
        out += '\\b';
        break;
      case 0x0c:
        out += '\\f';
        break;
      case 0x0a:
        out += '\\n';
        break;
      case 0x0d:
        out += '\\r';
        break;
      case 0x09:
        out += '\\t';
        break;
      case 0x22:
        out += '\\"';
        break;
      case 0x5c:
        out += '\\\\';
        break;
      default:
        out += ch < 0x20 ? `\\u${ch.toString(16).padStart(4, '0')}` : s[i];
    }
  }
  return out + '"';
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

function numberToken(c: Cursor): string {
  NUMBER.lastIndex = c.i;
  const m = NUMBER.exec(c.s);
  if (!m) bad(c, 'malformed number');
  c.i += m[0].length;
  return m[0];
}

/** A JSON number as PostgreSQL numeric prints it (numeric_in then numeric_out). */
export function numericText(token: string): string {
  const negative = token.charCodeAt(0) === 0x2d;
  const body = negative ? token.slice(1) : token;
  const e = body.search(/[eE]/);
  const mantissa = e === -1 ? body : body.slice(0, e);
  const exponent = e === -1 ? 0 : Number(body.slice(e + 1));
  const point = mantissa.indexOf('.');
  const intDigits = point === -1 ? mantissa : mantissa.slice(0, point);
  const fracDigits = point === -1 ? '' : mantissa.slice(point + 1);
  let int: string;
  let frac: string;
  if (exponent === 0) {
    int = intDigits;
    frac = fracDigits;
  } else {
    const digits = intDigits + fracDigits;
    const at = intDigits.length + exponent; // where the point falls in `digits`
    const scale = Math.max(0, fracDigits.length - exponent);
    if (at <= 0) {
      int = '0';
      frac = '0'.repeat(-at) + digits;
    } else if (at >= digits.length) {
      int = digits + '0'.repeat(at - digits.length);
      frac = '';
    } else {
      int = digits.slice(0, at);
      frac = digits.slice(at);
    }
    frac = frac.padEnd(scale, '0').slice(0, scale);
  }
  int = int.replace(/^0+(?=\d)/, '');
  const zero = /^0*$/.test(int) && /^0*$/.test(frac);
  return `${negative && !zero ? '-' : ''}${int}${frac.length > 0 ? `.${frac}` : ''}`;
}
