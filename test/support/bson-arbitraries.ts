// fast-check generators of BSON documents covering every type js-bson can write, in the shapes raw
// BSON allows and plain JS objects do not: ordered fields with integer-like and repeated keys,
// `$`/dotted/Unicode keys, NUL in strings, every double, any Decimal128 bit pattern, datetimes
// outside JavaScript's Date range.

import fc from 'fast-check';
import { Binary, BSONRegExp, BSONSymbol, Code, Decimal128, Double, Int32, Long, MaxKey, MinKey, ObjectId, Timestamp, BSON } from 'mongodb';
import { OrderedDocument, OutOfRangeDate } from '../../src/codec.js';

const text = fc.string({ unit: 'binary', maxLength: 12 }); // full Unicode, NUL included
const key = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 8 }).filter((k) => !k.includes('\0')),
  fc.constantFrom('a', 'a.b', '$x', '$oid', '0', '1', '10', '__proto__', '', 'é', '日本'),
  fc.nat(20).map(String),
);

const JS_DATE_LIMIT = 8.64e15;
const leaf = fc.oneof(
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((n) => new Int32(n)),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((n) => Long.fromBigInt(n)),
  fc.double().map((d) => new Double(d)), // NaN, ±Infinity, -0 included
  fc.constantFrom(new Double(-0), new Double(NaN), new Double(Infinity), new Double(-Infinity), new Double(1e21), new Double(5e-324)),
  fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => new Decimal128(b)), // any bit pattern, canonical or not
  fc
    .tuple(fc.bigInt({ min: -(10n ** 34n) + 1n, max: 10n ** 34n - 1n }), fc.integer({ min: -6176, max: 6111 }))
    .map(([c, e]) => Decimal128.fromString(`${c}E${e}`)),
  fc
    .tuple(
      fc.integer({ min: 0, max: 255 }).filter((t) => t !== 9),
      fc.uint8Array({ maxLength: 20 }),
    )
    .map(([t, b]) => new Binary(b, t)),
  fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => new Binary(b, 4)),
  fc.record({ t: fc.nat({ max: 2 ** 32 - 1 }), i: fc.nat({ max: 2 ** 32 - 1 }) }).map((ti) => new Timestamp(ti)),
  fc.constantFrom(new MinKey(), new MaxKey(), null, true, false),
  text,
  text.map((s) => new Code(s)),
  text.map((s) => new BSONSymbol(s)),
  fc
    .tuple(
      text.filter((s) => !s.includes('\0')),
      fc.subarray([...'ilmsux']),
    )
    .map(([p, o]) => new BSONRegExp(p, o.join(''))),
  fc.uint8Array({ minLength: 12, maxLength: 12 }).map((b) => new ObjectId(b)),
  fc.integer({ min: -JS_DATE_LIMIT, max: JS_DATE_LIMIT }).map((ms) => new Date(ms)),
  // Beyond JS Date's range but whole JS numbers (what the driver can write): up to 2^53, and the
  // wider powers of two down to int64's minimum.
  fc
    .oneof(
      fc.integer({ min: JS_DATE_LIMIT + 1, max: Number.MAX_SAFE_INTEGER }).chain((ms) => fc.constantFrom(ms, -ms)),
      fc.constantFrom(2 ** 62, -(2 ** 62), -(2 ** 63)),
    )
    .map((ms) => new OutOfRangeDate(ms)),
);

const { value: bsonValue } = fc.letrec<{ value: unknown; document: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    tie('document'),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.tuple(text, tie('document')).map(([code, scope]) => new Code(code, scope as Record<string, unknown>)),
  ),
  // Fields as an ordered list so integer-like keys can follow others and keys can repeat, as in raw BSON.
  document: fc.array(fc.tuple(key, tie('value')), { maxLength: 5 }).map((fields) => new OrderedDocument(fields)),
}));

/** Any BSON value, nested documents and arrays included. */
export { bsonValue };

/** A whole raw document as the driver would send it: `_id` (given, or any value) first, then random fields. */
export function rawDocument(id?: fc.Arbitrary<unknown>): fc.Arbitrary<Buffer> {
  return fc
    .tuple(id ?? bsonValue, fc.array(fc.tuple(key, bsonValue), { maxLength: 6 }))
    .map(([_id, fields]) => Buffer.from(BSON.serialize(new OrderedDocument([['_id', _id], ...fields]))));
}
