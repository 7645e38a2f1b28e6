// Every valid case of the BSON specification's corpus through the codec: stored bytes identical,
// query form valid for JSONB, canonical _id keys faithful, and exact re-decoding for the driver.

import { createHash } from 'node:crypto';
import { BSON } from 'mongodb';
import { CodecError, assertUtf8Text, canonicalJson, decodeExact, encodeDocument, idKey, queryJson } from '../../src/codec.js';
import { corpusDecodeErrors, corpusValidCases, firstElementAsId, withInt32Id } from '../../test/support/bson-corpus.js';

const cases = corpusValidCases();

/**
 * Cases the MongoDB Node.js driver cannot write back byte-exact, so decodeExact must refuse them
 * with this reason (recover reports such a document instead of inserting something different).
 * Both are deprecated BSON types that current MongoDB servers do not create.
 */
const NOT_REINSERTABLE: Record<string, RegExp> = {
  'dbpointer.json: DBpointer': /field "a".*DBPointer \(0x0C\)/,
  'dbpointer.json: DBpointer with opposite key order': /field "a".*DBPointer \(0x0C\)/,
  'dbpointer.json: With two-byte UTF-8': /field "a".*DBPointer \(0x0C\)/,
  'multi-type-deprecated.json: All BSON types': /field "DBPointer".*DBPointer \(0x0C\)/,
  'undefined.json: Undefined': /field "a".*Undefined \(0x06\)/,
};

/**
 * Cases whose canonical Extended JSON (the `_id` key form) js-bson's EJSON.parse cannot turn back
 * into the same bytes. The key stays exact and injective; only js-bson's parser loses them:
 * it reads $dbPointer as a DBRef document, $undefined as null, and every NaN as the one canonical
 * NaN (the corpus marks the NaN-payload doubles lossy for the same reason).
 */
const EJSON_PARSE_LOSSY: Record<string, string> = {
  'dbpointer.json: DBpointer': '$dbPointer parses as a DBRef document',
  'dbpointer.json: DBpointer with opposite key order': '$dbPointer parses as a DBRef document',
  'dbpointer.json: With two-byte UTF-8': '$dbPointer parses as a DBRef document',
  'multi-type-deprecated.json: All BSON types': '$dbPointer and $undefined do not parse back to their types',
  'undefined.json: Undefined': '$undefined parses as null',
};

test('the corpus holds the 728 valid cases the project is proven on', () => {
  expect(cases).toHaveLength(728);
  expect(new Set(cases.map((c) => c.name)).size).toBeGreaterThan(700);
});

describe.each(cases.map((c, i) => [c.name, c, i] as const))('%s', (_name, c, i) => {
  it('is stored with its bytes unchanged, hashed, keyed by _id', () => {
    const stored = withInt32Id(c.bson, i);
    const row = encodeDocument(stored);
    expect(row.bson.equals(stored)).toBe(true);
    expect(row.hash.equals(createHash('sha256').update(stored).digest())).toBe(true);
    expect(row.id).toBe(`{"$numberInt":"${i}"}`);
    expect(row.doc).toBe(queryJson(stored));
  });

  it("has only valid UTF-8 text, as the driver's deserializer agrees", () => {
    expect(() => BSON.deserialize(c.bson)).not.toThrow();
    expect(() => assertUtf8Text(c.bson)).not.toThrow();
  });

  it('has a query form that is valid JSON without NUL', () => {
    const text = queryJson(c.bson);
    expect(text).not.toMatch(/\\u0000|\0/);
    const parsed = JSON.parse(text) as Record<string, unknown>;
    expect(typeof parsed).toBe('object');
  });

  it("has canonical Extended JSON equal to js-bson's, faithful to the bytes", () => {
    const text = canonicalJson(c.bson);
    if (EJSON_PARSE_LOSSY[c.name]) return expect(JSON.parse(text)).toEqual(JSON.parse(c.canonicalExtJson));
    expect(text).toBe(
      BSON.EJSON.stringify(BSON.deserialize(c.bson, { promoteValues: false, promoteLongs: false, bsonRegExp: true }), { relaxed: false }),
    );
    // Cases marked lossy (NaN payloads, non-canonical Decimal128 encodings) have no Extended JSON
    // that parses back to their bytes; their exactness is proven by the stored bytes and decodeExact.
    if (!c.lossy) expect(Buffer.from(BSON.serialize(BSON.EJSON.parse(text, { relaxed: false }))).equals(c.bson)).toBe(true);
  });

  it('keys a document by its value as _id', () => {
    if (c.bson.length === 5) return expect(() => idKey(c.bson)).toThrow(/no _id field/);
    const keyed = firstElementAsId(c.bson);
    const key = idKey(keyed);
    const text = canonicalJson(keyed);
    expect(text.startsWith(`{"_id":${key}`)).toBe(true);
  });

  it('decodes to values the driver re-encodes to the same bytes, or refuses with the reason', () => {
    const reason = NOT_REINSERTABLE[c.name];
    if (reason) {
      expect(() => decodeExact(c.bson)).toThrow(CodecError);
      expect(() => decodeExact(c.bson)).toThrow(reason);
      return;
    }
    expect(Buffer.from(BSON.serialize(decodeExact(c.bson))).equals(c.bson)).toBe(true);
    const stored = withInt32Id(c.bson, i);
    expect(Buffer.from(BSON.serialize(decodeExact(stored))).equals(stored)).toBe(true);
  });
});

describe('decode errors', () => {
  const errors = corpusDecodeErrors();

  test('the corpus holds decode-error cases', () => expect(errors.length).toBeGreaterThan(60));

  // Invalid UTF-8 is a value, not a framing error: the stored bytes stay exact, the query form shows
  // U+FFFD, and only re-insertion (which would have to re-encode the text) refuses it.
  it.each(errors.filter((e) => /UTF-8/i.test(e.description)).map((e) => [e.name, e] as const))(
    '%s: query form replaces, decodeExact refuses',
    (_n, e) => {
      expect(queryJson(e.bson)).toContain('\uFFFD');
      expect(() => assertUtf8Text(e.bson)).toThrow(/not valid UTF-8/);
      expect(() => decodeExact(e.bson)).toThrow(e.file === 'dbpointer.json' ? /DBPointer/ : /not valid UTF-8/);
    },
  );

  it.each(errors.filter((e) => !/UTF-8/i.test(e.description)).map((e) => [e.name, e] as const))('%s: rejected', (_n, e) => {
    expect(() => queryJson(e.bson)).toThrow(CodecError);
    expect(() => decodeExact(e.bson)).toThrow(CodecError);
  });

  // Verification proves "valid BSON" with queryJson plus assertUtf8Text instead of deserializing:
  // together they must refuse exactly what the driver's deserializer refuses.
  it.each(errors.map((e) => [e.name, e] as const))('%s: queryJson with assertUtf8Text refuses it as BSON.deserialize does', (_n, e) => {
    expect(() => BSON.deserialize(e.bson)).toThrow();
    expect(() => {
      queryJson(e.bson);
      assertUtf8Text(e.bson);
    }).toThrow(CodecError);
  });
});
