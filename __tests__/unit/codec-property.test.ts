// Random documents of every BSON type, serialized by js-bson (as the driver would), through the codec.

import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { BSON, Decimal128 } from 'mongodb';
import { ContentHash, canonicalJson, decodeExact, encodeDocument, idKey } from '../../src/codec.js';
import { bsonValue, rawDocument } from '../../test/support/bson-arbitraries.js';

const RUNS = 400;

const topLevel = rawDocument();
const value = bsonValue;

describe('random documents', () => {
  it('re-decode to values the driver serializes to the same bytes', () => {
    fc.assert(
      fc.property(topLevel, (raw) => {
        expect(Buffer.from(BSON.serialize(decodeExact(raw))).equals(raw)).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it('are stored with their exact bytes, a sha256, and a query form that is valid JSON without NUL', () => {
    fc.assert(
      fc.property(topLevel, (raw) => {
        const row = encodeDocument(raw);
        expect(row.bson.equals(raw)).toBe(true);
        expect(row.hash.equals(createHash('sha256').update(raw).digest())).toBe(true);
        expect(row.doc).not.toMatch(/\\u0000|\0/);
        expect(() => JSON.parse(row.doc)).not.toThrow();
        expect(() => JSON.parse(row.id)).not.toThrow();
      }),
      { numRuns: RUNS },
    );
  });

  it('get distinct _id keys for distinct _id values', () => {
    const idBytes = (id: unknown): Buffer => Buffer.from(BSON.serialize({ _id: id }));
    fc.assert(
      fc.property(value, value, (a, b) => {
        const [ra, rb] = [idBytes(a), idBytes(b)];
        expect(idKey(ra) === idKey(rb)).toBe(ra.equals(rb));
      }),
      { numRuns: RUNS },
    );
  });
});

describe('Decimal128 text', () => {
  // The codec formats canonical Decimal128 values itself (for speed); it must say exactly what
  // js-bson's Decimal128.toString() says, for every bit pattern.
  it("equals js-bson's Decimal128.toString()", () => {
    const decimals = fc.oneof(
      fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => new Decimal128(b)),
      fc
        .tuple(fc.bigInt({ min: -(10n ** 34n) + 1n, max: 10n ** 34n - 1n }), fc.integer({ min: -6176, max: 6111 }))
        .map(([c, e]) => Decimal128.fromString(`${c}E${e}`)),
      fc
        .tuple(fc.bigInt({ min: -(2n ** 60n), max: 2n ** 60n }), fc.integer({ min: -40, max: 10 }))
        .map(([c, e]) => Decimal128.fromString(`${c}E${e}`)),
    );
    fc.assert(
      fc.property(decimals, (d) => {
        const raw = Buffer.from(BSON.serialize({ _id: 1, d }));
        expect(canonicalJson(raw)).toBe(`{"_id":{"$numberInt":"1"},"d":{"$numberDecimal":"${d.toString()}"}}`);
      }),
      { numRuns: 20 * RUNS },
    );
  });
});

describe('ContentHash', () => {
  it('does not depend on the order documents are added in', () => {
    const digests = fc.array(
      fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b)),
      { maxLength: 40 },
    );
    fc.assert(
      fc.property(digests, fc.infiniteStream(fc.nat()), (ds, randoms) => {
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
      }),
      { numRuns: RUNS },
    );
  });
});

test('the generator covers every BSON type', () => {
  const seen = new Set<number>();
  const walk = (raw: Buffer): void => {
    // Independent of the codec: js-bson's own canonical Extended JSON names each type it met.
    const text = JSON.stringify(
      BSON.EJSON.serialize(BSON.deserialize(raw, { promoteValues: false, bsonRegExp: true }), { relaxed: false }),
    );
    const markers: Array<[number, string]> = [
      [0x01, '$numberDouble'],
      [0x13, '$numberDecimal'],
      [0x12, '$numberLong'],
      [0x10, '$numberInt'],
      [0x05, '$binary'],
      [0x11, '$timestamp'],
      [0xff, '$minKey'],
      [0x7f, '$maxKey'],
      [0x0d, '$code'],
      [0x0f, '$scope'],
      [0x0e, '$symbol'],
      [0x0b, '$regularExpression'],
      [0x07, '$oid'],
      [0x09, '$date'],
    ];
    for (const [type, marker] of markers) if (text.includes(`"${marker}"`)) seen.add(type);
  };
  fc.sample(topLevel, 300).forEach(walk);
  expect([...seen].sort((x, y) => x - y)).toEqual([0x01, 0x05, 0x07, 0x09, 0x0b, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x7f, 0xff]);
});
