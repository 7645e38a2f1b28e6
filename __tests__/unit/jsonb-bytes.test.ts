// The `doc` column's jsonb text written as bytes (jsonb-bytes.ts) is the UTF-8 of the text
// queryJsonbText writes as a string, for every document whose text is valid UTF-8: verification
// relies on that to compare rows with the bytes PostgreSQL sent without decoding them.
import fc from 'fast-check';
import { BSON } from 'mongodb';
import { assertUtf8Text, queryJsonbBytes, queryJsonbText, queryJsonbTextMatches } from '../../src/codec.js';
import { rawDocument } from '../../test/support/bson-arbitraries.js';
import { corpusValidCases, withInt32Id } from '../../test/support/bson-corpus.js';

function storable(raw: Buffer): boolean {
  try {
    assertUtf8Text(raw);
    return true;
  } catch {
    return false;
  }
}

function raw(doc: BSON.Document): Buffer {
  return Buffer.from(BSON.serialize(doc));
}

test('queryJsonbBytes is the UTF-8 of queryJsonbText: every corpus case', () => {
  let n = 0;
  for (const [i, c] of corpusValidCases().entries()) {
    const doc = withInt32Id(c.bson, i);
    if (!storable(doc)) continue;
    expect(queryJsonbBytes(doc).toString('hex')).toBe(Buffer.from(queryJsonbText(doc)).toString('hex'));
    n++;
  }
  expect(n).toBeGreaterThan(700);
});

test('property: queryJsonbBytes is the UTF-8 of queryJsonbText for random documents, repeated and odd keys included', () => {
  fc.assert(
    fc.property(rawDocument(), (doc) => {
      if (storable(doc)) expect(queryJsonbBytes(doc).equals(Buffer.from(queryJsonbText(doc)))).toBe(true);
    }),
    { numRuns: 3000 },
  );
});

test('keys sorted as jsonb sorts them (byte length, then bytes), the last of a repeated key kept, nested too', () => {
  const repeated = Buffer.concat([
    Buffer.from(BSON.serialize({ _id: 1, b: 1, a: { y: 1, x: 2 } })).subarray(0, -1),
    Buffer.from(BSON.serialize({ b: 2 })).subarray(4),
  ]);
  repeated.writeInt32LE(repeated.length, 0);
  expect(queryJsonbBytes(repeated).toString()).toBe('{"a": {"x": 2, "y": 1}, "b": 2, "_id": 1}');
  expect(queryJsonbBytes(raw({ é: 1, z: 2, ab: 3 })).toString()).toBe('{"z": 2, "ab": 3, "é": 1}');
  // Enough keys to take the other sort, with a nested document that needs the member stack to grow.
  const many: BSON.Document = {};
  for (let i = 300; i > 0; i--) many[`k${i}`] = i % 7 === 0 ? { [`n${i}`]: i, a: [i] } : i;
  expect(queryJsonbBytes(raw(many)).equals(Buffer.from(queryJsonbText(raw(many))))).toBe(true);
});

test('text escaped as PostgreSQL escapes it; NUL shown as U+FFFD', () => {
  const doc = raw({ s: 'a"b\\c\n\t\u0001\u007f/é\0', 'k"\n': true });
  expect(queryJsonbBytes(doc).toString()).toBe('{"s": "a\\"b\\\\c\\n\\t\\u0001\u007f/é\uFFFD", "k\\"\\n": true}');
});

test('a large document grows the output buffer, and the next one still renders', () => {
  const big = raw({ _id: 1, data: new BSON.Binary(Buffer.alloc(3 * 1024 * 1024, 7)), s: 'x'.repeat(200_000) });
  expect(queryJsonbBytes(big).equals(Buffer.from(queryJsonbText(big)))).toBe(true);
  expect(queryJsonbBytes(raw({ a: 1 })).toString()).toBe('{"a": 1}');
});

test('queryJsonbTextMatches compares with the bytes from an offset, exactly', () => {
  const doc = raw({ _id: 1, n: 1.5, when: new Date(0) });
  const text = Buffer.concat([Buffer.from([1]), Buffer.from(queryJsonbText(doc))]);
  expect(queryJsonbTextMatches(doc, text, 1)).toBe(true);
  expect(queryJsonbTextMatches(doc, Buffer.concat([text, Buffer.from(' ')]), 1)).toBe(false);
  expect(queryJsonbTextMatches(doc, text.subarray(0, -1), 1)).toBe(false);
  const changed = Buffer.from(text);
  changed[changed.length - 2] ^= 1;
  expect(queryJsonbTextMatches(doc, changed, 1)).toBe(false);
});

test('bytes that are not a document are refused, as queryJsonbText refuses them', () => {
  const doc = raw({ a: 'x' });
  doc.writeInt32LE(200, 7); // the string's length runs past the document
  expect(() => queryJsonbText(doc)).toThrow(/invalid BSON/);
  expect(() => queryJsonbBytes(doc)).toThrow(/invalid BSON/);
});
