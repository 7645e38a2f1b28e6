// Random documents of every BSON type, serialized by js-bson (as the driver would), through the codec.

import { createHash } from 'node:crypto';
import fc from 'fast-check';
import {
  Binary, BSONRegExp, BSONSymbol, Code, Decimal128, Double, Int32, Long, MaxKey, MinKey, ObjectId, Timestamp, BSON,
} from 'mongodb';
import { ContentHash, OrderedDocument, OutOfRangeDate, decodeExact, encodeDocument, idKey, queryJson } from '../../src/codec.js';

const RUNS = 400;

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
  fc.tuple(fc.bigInt({ min: -(10n ** 34n) + 1n, max: 10n ** 34n - 1n }), fc.integer({ min: -6176, max: 6111 }))
    .map(([c, e]) => Decimal128.fromString(`${c}E${e}`)),
  fc.tuple(fc.integer({ min: 0, max: 255 }).filter((t) => t !== 9), fc.uint8Array({ maxLength: 20 })).map(([t, b]) => new Binary(b, t)),
  fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => new Binary(b, 4)),
  fc.record({ t: fc.nat({ max: 2 ** 32 - 1 }), i: fc.nat({ max: 2 ** 32 - 1 }) }).map((ti) => new Timestamp(ti)),
  fc.constantFrom(new MinKey(), new MaxKey(), null, true, false),
  text,
  text.map((s) => new Code(s)),
  text.map((s) => new BSONSymbol(s)),
  fc.tuple(text.filter((s) => !s.includes('\0')), fc.subarray([...'ilmsux'])).map(([p, o]) => new BSONRegExp(p, o.join(''))),
  fc.uint8Array({ minLength: 12, maxLength: 12 }).map((b) => new ObjectId(b)),
  fc.integer({ min: -JS_DATE_LIMIT, max: JS_DATE_LIMIT }).map((ms) => new Date(ms)),
  // Beyond JS Date's range but whole JS numbers (what the driver can write): up to 2^53, and the
  // wider powers of two down to int64's minimum.
  fc.oneof(fc.integer({ min: JS_DATE_LIMIT + 1, max: Number.MAX_SAFE_INTEGER }).chain((ms) => fc.constantFrom(ms, -ms)),
    fc.constantFrom(2 ** 62, -(2 ** 62), -(2 ** 63))).map((ms) => new OutOfRangeDate(ms)),
);

const { value } = fc.letrec<{ value: unknown; document: unknown }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('document'), fc.array(tie('value'), { maxLength: 4 }),
    fc.tuple(text, tie('document')).map(([code, scope]) => new Code(code, scope as Record<string, unknown>))),
  // Fields as an ordered list so integer-like keys can follow others and keys can repeat, as in raw BSON.
  document: fc.array(fc.tuple(key, tie('value')), { maxLength: 5 }).map((fields) => new OrderedDocument(fields)),
}));

const topLevel = fc.tuple(value, fc.array(fc.tuple(key, value), { maxLength: 6 }))
  .map(([id, fields]) => Buffer.from(BSON.serialize(new OrderedDocument([['_id', id], ...fields]))));

describe('random documents', () => {
  it('re-decode to values the driver serializes to the same bytes', () => {
    fc.assert(fc.property(topLevel, (raw) => {
      expect(Buffer.from(BSON.serialize(decodeExact(raw))).equals(raw)).toBe(true);
    }), { numRuns: RUNS });
  });

  it('are stored with their exact bytes, a sha256, and a query form that is valid JSON without NUL', () => {
    fc.assert(fc.property(topLevel, (raw) => {
      const row = encodeDocument(raw);
      expect(row.bson.equals(raw)).toBe(true);
      expect(row.hash.equals(createHash('sha256').update(raw).digest())).toBe(true);
      expect(row.doc).not.toMatch(/\\u0000|\0/);
      expect(() => JSON.parse(row.doc)).not.toThrow();
      expect(() => JSON.parse(row.id)).not.toThrow();
    }), { numRuns: RUNS });
  });

  it('get distinct _id keys for distinct _id values', () => {
    const idBytes = (id: unknown): Buffer => Buffer.from(BSON.serialize({ _id: id }));
    fc.assert(fc.property(value, value, (a, b) => {
      const [ra, rb] = [idBytes(a), idBytes(b)];
      expect(idKey(ra) === idKey(rb)).toBe(ra.equals(rb));
    }), { numRuns: RUNS });
  });
});

describe('ContentHash', () => {
  it('does not depend on the order documents are added in', () => {
    const digests = fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b)), { maxLength: 40 });
    fc.assert(fc.property(digests, fc.infiniteStream(fc.nat()), (ds, randoms) => {
      const shuffled = [...ds];
      for (let i = shuffled.length - 1; i > 0; i--) {
        const j = randoms.next().value % (i + 1);
        [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
      }
      const a = new ContentHash();
      const b = new ContentHash();
      ds.forEach((d, i) => a.add(d, i));
      shuffled.forEach((d) => b.add(d, 0));
      expect(b.digest()).toBe(a.digest());
      const sum = ds.reduce((acc, d) => acc + BigInt('0x' + (d.toString('hex') || '0')), 0n) % 2n ** 256n;
      expect(a.digest()).toBe(sum.toString(16).padStart(64, '0'));
      expect(a.documents).toBe(ds.length);
    }), { numRuns: RUNS });
  });
});

test('the generator covers every BSON type', () => {
  const seen = new Set<number>();
  const walk = (raw: Buffer): void => {
    // Independent of the codec: js-bson's own canonical Extended JSON names each type it met.
    const text = JSON.stringify(BSON.EJSON.serialize(BSON.deserialize(raw, { promoteValues: false, bsonRegExp: true }), { relaxed: false }));
    const markers: Array<[number, string]> = [[0x01, '$numberDouble'], [0x13, '$numberDecimal'], [0x12, '$numberLong'], [0x10, '$numberInt'],
      [0x05, '$binary'], [0x11, '$timestamp'], [0xff, '$minKey'], [0x7f, '$maxKey'], [0x0d, '$code'], [0x0f, '$scope'], [0x0e, '$symbol'],
      [0x0b, '$regularExpression'], [0x07, '$oid'], [0x09, '$date']];
    for (const [type, marker] of markers) if (text.includes(`"${marker}"`)) seen.add(type);
  };
  fc.sample(topLevel, 300).forEach(walk);
  expect([...seen].sort((x, y) => x - y)).toEqual([0x01, 0x05, 0x07, 0x09, 0x0b, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x7f, 0xff]);
});
