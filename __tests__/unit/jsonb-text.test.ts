// The text PostgreSQL prints for jsonb, predicted from JSON text. The integration test
// codec-postgres.test.ts holds the prediction to PostgreSQL itself on every BSON corpus case and
// thousands of random documents; these pin the rules it follows.
import fc from 'fast-check';
import { BSON } from 'mongodb';
import { assertUtf8Text, queryJson, queryJsonbText } from '../../src/codec.js';
import { jsonbText, numericText } from '../../src/codec/jsonb-text.js';
import { rawDocument } from '../../test/support/bson-arbitraries.js';
import { corpusValidCases, withInt32Id } from '../../test/support/bson-corpus.js';

/** Whether the query form of `raw` can be stored at all (valid UTF-8 text: jsonb holds nothing else). */
function storable(raw: Buffer): boolean {
  try {
    assertUtf8Text(raw);
    return true;
  } catch {
    return false;
  }
}

test('keys sorted by byte length, then bytes; the last of a repeated key wins; PostgreSQL spacing', () => {
  expect(jsonbText('{"bb":1,"a":[1,{}],"c":null,"a":true}')).toBe('{"a": true, "c": null, "bb": 1}');
  expect(jsonbText('{"é":1,"z":2,"ab":3}')).toBe('{"z": 2, "ab": 3, "é": 1}'); // é is two bytes
  expect(jsonbText('[]')).toBe('[]');
  expect(jsonbText('{}')).toBe('{}');
  expect(jsonbText(' { "a" : [ 1 , "x" ] } ')).toBe('{"a": [1, "x"]}');
});

test('strings keep the escapes PostgreSQL writes and lose the ones it does not', () => {
  expect(jsonbText(JSON.stringify({ s: 'a"b\\c\n\t\u0001\u007f/é' }))).toBe('{"s": "a\\"b\\\\c\\n\\t\\u0001\u007f/é"}');
  expect(jsonbText('"\\u00e9\\/"')).toBe('"é/"');
});

test.each([
  ['0', '0'],
  ['-0', '0'],
  ['-0.00', '0.00'],
  ['1.50', '1.50'],
  ['-12.5', '-12.5'],
  ['1e+21', '1000000000000000000000'],
  ['1.5e-7', '0.00000015'],
  ['1.23E+3', '1230'],
  ['1.2345E+2', '123.45'],
  ['0E-3', '0.000'],
  ['-5e-3', '-0.005'],
  ['9007199254740993', '9007199254740993'],
])('numeric %s prints as %s', (input, printed) => {
  expect(numericText(input)).toBe(printed);
});

test('text that is not JSON is refused', () => {
  expect(() => jsonbText('{"a":1')).toThrow(/not JSON/);
  expect(() => jsonbText('{"a":1} x')).toThrow(/not JSON/);
});

test('queryJsonbText, written from the bytes, equals jsonbText of the query form: every corpus case', () => {
  let n = 0;
  for (const [i, c] of corpusValidCases().entries()) {
    const raw = withInt32Id(c.bson, i);
    if (!storable(raw)) continue;
    expect(queryJsonbText(raw)).toBe(jsonbText(queryJson(raw)));
    n++;
  }
  expect(n).toBeGreaterThan(700);
});

test('property: queryJsonbText equals jsonbText of the query form for random documents, repeated and odd keys included', () => {
  fc.assert(
    fc.property(rawDocument(), (raw) => {
      if (storable(raw)) expect(queryJsonbText(raw)).toBe(jsonbText(queryJson(raw)));
    }),
    { numRuns: 2000 },
  );
  const repeated = Buffer.concat([
    Buffer.from(BSON.serialize({ _id: 1, b: 1, a: { y: 1, x: 2 } })).subarray(0, -1),
    Buffer.from(BSON.serialize({ b: 2 })).subarray(4),
  ]);
  repeated.writeInt32LE(repeated.length, 0);
  expect(queryJsonbText(repeated)).toBe('{"a": {"x": 2, "y": 1}, "b": 2, "_id": 1}');
});
