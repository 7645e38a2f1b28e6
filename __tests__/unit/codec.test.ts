import { createHash } from 'node:crypto';
import { Binary, BSONRegExp, BSONSymbol, Code, Decimal128, Double, Int32, Long, MaxKey, MinKey, ObjectId, Timestamp, BSON } from 'mongodb';
import {
  CodecError,
  ContentHash,
  COPY_COLUMNS,
  OrderedDocument,
  OutOfRangeDate,
  assertReencodes,
  canonicalJson,
  copyBinaryHeader,
  copyBinaryRows,
  copyBinaryTrailer,
  copyBinaryTuple,
  decodeExact,
  encodeDocument,
  idKey,
  queryJson,
} from '../../src/codec.js';

const oid = new ObjectId('650000000000000000000001');
const ser = (doc: object): Buffer => Buffer.from(BSON.serialize(doc));
const query = (doc: object): unknown => JSON.parse(queryJson(ser({ _id: oid, ...doc })));

/** A document `{ _id: 1, a: <element of type `type` with these value bytes> }`, built by hand. */
function withElement(type: number, value: Buffer): Buffer {
  const body = Buffer.concat([
    Buffer.from([0x10]),
    Buffer.from('_id\0'),
    Buffer.from([1, 0, 0, 0]),
    Buffer.from([type]),
    Buffer.from('a\0'),
    value,
    Buffer.from([0]),
  ]);
  const doc = Buffer.concat([Buffer.alloc(4), body]);
  doc.writeInt32LE(doc.length, 0);
  return doc;
}
const int64 = (v: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(v);
  return b;
};

describe('queryJson', () => {
  it('writes numbers as JSON numbers, int64 and Decimal128 exactly', () => {
    const text = queryJson(
      ser({
        _id: oid,
        i: new Int32(-7),
        l: Long.fromString('9007199254740993'),
        lmin: Long.MIN_VALUE,
        d: new Double(1.5),
        big: new Double(1e21),
        tiny: new Double(5e-324),
        nz: new Double(-0),
        dec: Decimal128.fromString('1.10'),
        dexp: Decimal128.fromString('1.23E+3000'),
        dsmall: Decimal128.fromString('-0E-6176'),
      }),
    );
    expect(text).toContain('"l":9007199254740993');
    expect(text).toContain('"lmin":-9223372036854775808');
    expect(text).toContain('"dec":1.10');
    expect(text).toContain('"big":1e+21');
    expect(text).toContain('"nz":0,');
    expect(text).toContain('"dexp":1.23E+3000');
    expect(text).toContain('"dsmall":-0E-6176');
    expect(JSON.parse(text)).toMatchObject({ i: -7, d: 1.5, tiny: 5e-324 });
  });

  it('writes non-finite numbers as strings', () => {
    expect(
      query({
        a: new Double(NaN),
        b: new Double(Infinity),
        c: new Double(-Infinity),
        d: Decimal128.fromString('NaN'),
        e: Decimal128.fromString('-Infinity'),
      }),
    ).toEqual({ _id: oid.toHexString(), a: 'NaN', b: 'Infinity', c: '-Infinity', d: 'NaN', e: '-Infinity' });
  });

  it('writes dates as ISO strings, out-of-range dates as $date/$numberLong', () => {
    expect(query({ d: new Date('2024-05-01T10:00:00Z'), y: new Date(253402300800000) })).toEqual({
      _id: oid.toHexString(),
      d: '2024-05-01T10:00:00.000Z',
      y: '+010000-01-01T00:00:00.000Z',
    });
    expect(JSON.parse(queryJson(withElement(0x09, int64(8640000000000001n))))).toEqual({
      _id: 1,
      a: { $date: { $numberLong: '8640000000000001' } },
    });
    expect(JSON.parse(queryJson(withElement(0x09, int64(-9223372036854775808n))))).toEqual({
      _id: 1,
      a: { $date: { $numberLong: '-9223372036854775808' } },
    });
  });

  it('writes ObjectId as hex, UUIDs as UUID strings, other binary as $binary', () => {
    const uuid = new Binary(Buffer.from('00112233445566778899aabbccddeeff', 'hex'), 4);
    expect(
      query({
        u: uuid,
        b: new Binary(Buffer.from([1, 2, 3]), 0x80),
        short4: new Binary(Buffer.from([1]), 4),
        old: new Binary(Buffer.from([9, 9]), 2),
      }),
    ).toEqual({
      _id: '650000000000000000000001',
      u: '00112233-4455-6677-8899-aabbccddeeff',
      b: { $binary: { base64: 'AQID', subType: '80' } },
      short4: { $binary: { base64: 'AQ==', subType: '04' } },
      old: { $binary: { base64: 'CQk=', subType: '02' } },
    });
  });

  it('writes the remaining types as canonical Extended JSON, Symbol as a string, Undefined as null', () => {
    expect(
      query({
        ts: new Timestamp({ t: 4294967295, i: 7 }),
        r: new BSONRegExp('^a.c$', 'im'),
        mn: new MinKey(),
        mx: new MaxKey(),
        c: new Code('f()'),
        cs: new Code('g()', { x: new Int32(1) }),
        s: new BSONSymbol('sym'),
        n: null,
        t: true,
        f: false,
      }),
    ).toEqual({
      _id: oid.toHexString(),
      ts: { $timestamp: { t: 4294967295, i: 7 } },
      r: { $regularExpression: { pattern: '^a.c$', options: 'im' } },
      mn: { $minKey: 1 },
      mx: { $maxKey: 1 },
      c: { $code: 'f()' },
      cs: { $code: 'g()', $scope: { x: 1 } },
      s: 'sym',
      n: null,
      t: true,
      f: false,
    });
    expect(JSON.parse(queryJson(withElement(0x06, Buffer.alloc(0))))).toEqual({ _id: 1, a: null });
    const ptr = Buffer.concat([Buffer.from([5, 0, 0, 0]), Buffer.from('db.c\0'), Buffer.from('650000000000000000000002', 'hex')]);
    expect(JSON.parse(queryJson(withElement(0x0c, ptr)))).toEqual({
      _id: 1,
      a: { $dbPointer: { $ref: 'db.c', $id: { $oid: '650000000000000000000002' } } },
    });
  });

  it('keeps nesting, $-prefixed and dotted keys, and replaces NUL with U+FFFD', () => {
    const text = queryJson(ser({ _id: oid, 'a.b': { $c: ['x\0y', { é: [1, [2]] }] }, s: 'nul\0\0' }));
    expect(text).not.toContain('\\u0000');
    expect(JSON.parse(text)).toEqual({ _id: oid.toHexString(), 'a.b': { $c: ['x\uFFFDy', { é: [1, [2]] }] }, s: 'nul\uFFFD\uFFFD' });
  });

  it('writes both copies of a repeated key (JSONB then keeps the last)', () => {
    const raw = ser(
      new OrderedDocument([
        ['_id', 1],
        ['a', 1],
        ['a', 2],
      ]),
    );
    expect(queryJson(raw)).toBe('{"_id":1,"a":1,"a":2}');
  });

  it('names the problem in malformed BSON', () => {
    const good = ser({ _id: 1, s: 'abc' });
    expect(() => queryJson(good.subarray(0, good.length - 1))).toThrow(CodecError);
    const badLength = Buffer.from(good);
    badLength.writeInt32LE(100, good.indexOf('s\0') + 2);
    expect(() => queryJson(badLength)).toThrow(/string length 100 out of bounds/);
    const badType = Buffer.from(good);
    badType[4] = 0x42;
    expect(() => queryJson(badType)).toThrow(/unknown element type 0x42/);
    expect(() => queryJson(Buffer.concat([good, Buffer.from([0])]))).toThrow(/one whole document/);
  });
});

describe('idKey', () => {
  it.each([
    ['ObjectId', oid],
    ['string', 'user@example.com'],
    ['int32', new Int32(5)],
    ['int64', Long.fromNumber(5)],
    ['double', new Double(5)],
    ['decimal', Decimal128.fromString('5.0')],
    ['date', new Date(0)],
    ['uuid', new Binary(Buffer.alloc(16, 7), 4)],
    ['document', { a: new Int32(1), b: 'x' }],
    ['array', [new Int32(1), 'a']],
    ['null', null],
    ['minkey', new MinKey()],
    ['timestamp', new Timestamp({ t: 1, i: 2 })],
  ])('of a %s _id equals canonical EJSON of the value', (_name, id) => {
    expect(idKey(ser({ _id: id, other: 1 }))).toBe(BSON.EJSON.stringify(id, { relaxed: false }));
  });

  it('tells int32, int64, double and decimal ids apart', () => {
    const keys = [new Int32(1), Long.fromNumber(1), new Double(1), Decimal128.fromString('1'), '1'].map((id) => idKey(ser({ _id: id })));
    expect(new Set(keys).size).toBe(5);
  });

  it('keeps key order in document ids, integer-like keys included', () => {
    const a = idKey(
      ser({
        _id: new OrderedDocument([
          ['b', 1],
          ['1', 2],
        ]),
      }),
    );
    const b = idKey(
      ser({
        _id: new OrderedDocument([
          ['1', 2],
          ['b', 1],
        ]),
      }),
    );
    expect(a).toBe('{"b":{"$numberInt":"1"},"1":{"$numberInt":"2"}}');
    expect(a).not.toBe(b);
  });

  it('finds _id anywhere in the document and refuses a document without one', () => {
    expect(idKey(ser({ x: 1, _id: 'late' }))).toBe('"late"');
    expect(() => idKey(ser({ x: 1 }))).toThrow(/no _id field/);
  });
});

describe('encodeDocument', () => {
  it('stores the exact bytes, copied out of a larger buffer, with their sha256', () => {
    const raw = ser({ _id: oid, name: 'Ada', n: new Int32(3) });
    const pool = Buffer.alloc(1 << 20, 1); // like a driver reply holding many documents
    raw.copy(pool, 1000);
    const row = encodeDocument(pool.subarray(1000, 1000 + raw.length));
    expect(row.bson.equals(raw)).toBe(true);
    expect(row.bson.buffer.byteLength).toBeLessThanOrEqual(Buffer.poolSize);
    pool.fill(0);
    expect(row.bson.equals(raw)).toBe(true);
    expect(row.hash.equals(createHash('sha256').update(raw).digest())).toBe(true);
    expect(row.id).toBe(`{"$oid":"${oid.toHexString()}"}`);
    expect(JSON.parse(row.doc)).toEqual({ _id: oid.toHexString(), name: 'Ada', n: 3 });
  });
});

describe('decodeExact', () => {
  it('gives plain objects with BSON type wrappers that re-encode exactly', () => {
    const raw = ser({ _id: oid, i: new Int32(1), d: new Double(1), l: Long.fromNumber(1), nz: new Double(-0), nested: { a: [1, 'x'] } });
    const doc = decodeExact(raw);
    expect(doc).not.toBeInstanceOf(Map);
    expect(doc.i).toBeInstanceOf(Int32);
    expect(doc.d).toBeInstanceOf(Double);
    expect(doc.l).toBeInstanceOf(Long);
    expect(Buffer.from(BSON.serialize(doc)).equals(raw)).toBe(true);
  });

  it('keeps integer-like keys after others and repeated keys, through OrderedDocument', () => {
    const raw = ser(
      new OrderedDocument([
        ['_id', 1],
        ['b', 1],
        ['2', 2],
        ['b', 3],
        [
          'sub',
          new OrderedDocument([
            ['z', 1],
            ['0', 0],
          ]),
        ],
      ]),
    );
    const doc = decodeExact(raw) as OrderedDocument;
    expect(doc).toBeInstanceOf(OrderedDocument);
    expect(doc.fields.map(([k]) => k)).toEqual(['_id', 'b', '2', 'b', 'sub']);
    expect((doc.get('b') as Int32).value).toBe(3);
    expect(Buffer.from(BSON.serialize(doc)).equals(raw)).toBe(true);
    expect(BSON.calculateObjectSize(doc)).toBe(raw.length);
  });

  it('keeps a __proto__ key as a field', () => {
    const raw = ser(
      new OrderedDocument([
        ['_id', 1],
        ['__proto__', new Int32(5)],
      ]),
    );
    const doc = decodeExact(raw);
    expect(Object.keys(doc)).toEqual(['_id', '__proto__']);
    expect(Buffer.from(BSON.serialize(doc)).equals(raw)).toBe(true);
  });

  it("rebuilds datetimes outside JavaScript's range when they are whole JS numbers", () => {
    for (const ms of [8640000000000001n, -8640000000000001n, 2n ** 60n, -(2n ** 63n)]) {
      const raw = withElement(0x09, int64(ms));
      const doc = decodeExact(raw);
      expect(doc.a).toBeInstanceOf(OutOfRangeDate);
      expect(Buffer.from(BSON.serialize(doc)).equals(raw)).toBe(true);
    }
  });

  it('refuses, naming field and reason, what the driver cannot write back exactly', () => {
    expect(() => decodeExact(withElement(0x09, int64(2n ** 60n + 1n)))).toThrow(/field "a".*datetime 1152921504606846977 ms/);
    expect(() => decodeExact(withElement(0x06, Buffer.alloc(0)))).toThrow(/field "a".*Undefined/);
    const ptr = Buffer.concat([Buffer.from([2, 0, 0, 0]), Buffer.from('c\0'), Buffer.alloc(12)]);
    expect(() => decodeExact(withElement(0x0c, ptr))).toThrow(/field "a".*DBPointer/);
    expect(() => decodeExact(withElement(0x0b, Buffer.from('x\0mi\0')))).toThrow(/flags "mi"/);
    expect(() => decodeExact(withElement(0x02, Buffer.from([3, 0, 0, 0, 0xff, 0xfe, 0])))).toThrow(/not valid UTF-8/);
    const arrayWithGap = Buffer.concat([Buffer.from([12, 0, 0, 0, 0x10]), Buffer.from('5\0'), Buffer.from([1, 0, 0, 0, 0])]);
    expect(() => decodeExact(withElement(0x04, arrayWithGap))).toThrow(/field "a.5".*not its index 0/);
  });

  it('keeps regex flags MongoDB accepts but js-bson would reject when they are sorted', () => {
    const raw = withElement(0x0b, Buffer.from('x\0aiz\0'));
    expect(Buffer.from(BSON.serialize(decodeExact(raw))).equals(raw)).toBe(true);
  });

  it('assertReencodes reports where bytes differ', () => {
    const raw = ser({ _id: 1, a: new Double(1) });
    expect(() => assertReencodes({ _id: 1, a: new Double(2) }, raw)).toThrow(
      /differs from the stored bytes at byte 22 \(25 bytes stored, 25 re-encoded\)/,
    );
    expect(() => assertReencodes({ _id: 1, a: 1 }, raw)).toThrow(/25 bytes stored, 21 re-encoded/);
    expect(() => assertReencodes({ _id: new Int32(1), a: new Double(1) }, raw)).not.toThrow();
  });
});

describe('canonicalJson', () => {
  it('equals EJSON.stringify of the deserialized document for ordinary documents', () => {
    const doc = {
      _id: oid,
      s: 'x',
      n: new Int32(1),
      d: new Double(2.5),
      e: new Double(1e21),
      z: new Double(-0),
      arr: [new Int32(1)],
      sub: { a: Long.fromNumber(3) },
    };
    const raw = ser(doc);
    expect(canonicalJson(raw)).toBe(BSON.EJSON.stringify(doc, { relaxed: false }));
  });
});

describe('ContentHash', () => {
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
  const reference = (ds: Buffer[]): string =>
    (ds.reduce((acc, d) => acc + BigInt('0x' + d.toString('hex')), 0n) % 2n ** 256n).toString(16).padStart(64, '0');

  it('is the sum of digests modulo 2^256, with carries across limbs', () => {
    const h = new ContentHash();
    expect(h.digest()).toBe('0'.repeat(64));
    const ones = Buffer.alloc(32, 0xff);
    const one = Buffer.alloc(32);
    one[31] = 1;
    h.add(ones, 10);
    h.add(one, 5);
    expect(h.digest()).toBe('0'.repeat(64)); // wrapped
    h.add(one, 1);
    h.add(Buffer.from('00000000ffffffff' + 'f'.repeat(48), 'hex'), 1);
    expect(h.digest()).toBe('0000000100000000' + '0'.repeat(48));
    expect(h.documents).toBe(4);
    expect(h.bytes).toBe(17);
  });

  it('matches a BigInt reference and does not depend on order', () => {
    const ds = Array.from({ length: 500 }, (_, i) => digest(`doc ${i}`));
    const forward = new ContentHash();
    const backward = new ContentHash();
    ds.forEach((d) => forward.add(d, 1));
    [...ds].reverse().forEach((d) => backward.add(d, 1));
    expect(forward.digest()).toBe(reference(ds));
    expect(backward.digest()).toBe(forward.digest());
  });

  it('refuses something that is not a sha256 digest', () => {
    expect(() => new ContentHash().add(Buffer.alloc(20), 1)).toThrow(/32-byte/);
  });
});

describe('COPY binary format', () => {
  it('writes the PGCOPY header and the -1 trailer', () => {
    expect(copyBinaryHeader().toString('hex')).toBe('5047434f50590aff0d0a00' + '00000000' + '00000000');
    expect(copyBinaryTrailer().toString('hex')).toBe('ffff');
  });

  it('writes a tuple of four length-prefixed fields, jsonb with its version byte', () => {
    const row = encodeDocument(ser({ _id: 'é', v: 'ü' }));
    const t = copyBinaryTuple(row);
    expect(t.readInt16BE(0)).toBe(COPY_COLUMNS.length);
    let p = 2;
    const fields: Buffer[] = [];
    for (let i = 0; i < 4; i++) {
      const len = t.readInt32BE(p);
      fields.push(t.subarray(p + 4, p + 4 + len));
      p += 4 + len;
    }
    expect(p).toBe(t.length);
    expect(fields[0].toString('utf8')).toBe('"é"');
    expect(fields[1][0]).toBe(1);
    expect(fields[1].subarray(1).toString('utf8')).toBe(row.doc);
    expect(fields[2].equals(row.bson)).toBe(true);
    expect(fields[3].equals(row.hash)).toBe(true);
  });
});

describe('COPY binary rows', () => {
  async function* inChunks(data: Buffer, size: number): AsyncGenerator<Buffer> {
    for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
  }
  const parse = async (data: Buffer, size: number): Promise<(string | null)[][]> => {
    const rows: (string | null)[][] = [];
    for await (const fields of copyBinaryRows(inChunks(data, size)[Symbol.asyncIterator]()))
      rows.push(fields.map((f) => (f === null ? null : f.toString('hex'))));
    return rows;
  };

  /** A two-field tuple (text, jsonb or NULL) in COPY binary format, as PostgreSQL sends one. */
  const textJsonbTuple = (text: string, json: string | null): Buffer => {
    const head = Buffer.alloc(6);
    head.writeInt16BE(2, 0);
    head.writeInt32BE(Buffer.byteLength(text), 2);
    const field = json === null ? Buffer.from([0xff, 0xff, 0xff, 0xff]) : Buffer.alloc(4);
    if (json !== null) field.writeInt32BE(Buffer.byteLength(json) + 1, 0);
    return Buffer.concat([head, Buffer.from(text), field, ...(json === null ? [] : [Buffer.from([1]), Buffer.from(json)])]);
  };

  it('reads back every field of every row whatever the chunk boundaries (stored rows, NULLs, a header extension)', async () => {
    const rows = [encodeDocument(ser({ _id: 1, s: 'x'.repeat(300) })), encodeDocument(ser({ _id: 'two', a: [1, 2] }))];
    const withExtension = Buffer.concat([copyBinaryHeader().subarray(0, 15), Buffer.from([0, 0, 0, 3, 9, 9, 9])]);
    const data = Buffer.concat([withExtension, ...rows.map(copyBinaryTuple), textJsonbTuple('k', null), copyBinaryTrailer()]);
    const expected = [
      ...rows.map((r) => [
        Buffer.from(r.id).toString('hex'),
        Buffer.concat([Buffer.from([1]), Buffer.from(r.doc)]).toString('hex'),
        r.bson.toString('hex'),
        r.hash.toString('hex'),
      ]),
      [Buffer.from('k').toString('hex'), null],
    ];
    for (const size of [1, 2, 3, 7, 64, data.length]) expect(await parse(data, size)).toEqual(expected);
  });

  it('refuses data that is not binary COPY or ends inside a row', async () => {
    await expect(parse(Buffer.from('not a copy stream at all'), 4)).rejects.toThrow(CodecError);
    const cut = Buffer.concat([copyBinaryHeader(), textJsonbTuple('abc', '{}')]);
    await expect(parse(cut.subarray(0, cut.length - 2), 5)).rejects.toThrow(/ended inside a row/);
  });
});
