// mongodump's file format: file names, metadata documents, and the framing of .bson streams,
// including every way a damaged file must be refused with its name and byte offset.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { BSON, Int32, Long } from 'mongodb';
import {
  DumpFormatError,
  bsonDocuments,
  escapeCollectionName,
  jsonErrorIndex,
  metadataJson,
  parseMetadata,
  unescapeCollectionName,
} from '../../src/dump-format.js';
import { dumpFileDocuments } from '../../src/dump-source.js';

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const b of it) out.push(Buffer.from(b));
  return out;
}

async function* chunksOf(bytes: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

const docs = [BSON.serialize({ _id: 1, a: 'x' }), BSON.serialize({ _id: 2, big: 'y'.repeat(5000) }), BSON.serialize({ _id: 3 })];
const stream = Buffer.concat(docs);

describe('file names', () => {
  test('escapes like Go url.PathEscape, as mongodump names its files', () => {
    expect(escapeCollectionName('orders')).toBe('orders');
    expect(escapeCollectionName('cafés')).toBe('caf%C3%A9s');
    expect(escapeCollectionName('a/b c?d,e;f')).toBe('a%2Fb%20c%3Fd%2Ce%3Bf');
    expect(escapeCollectionName('keep-_.~$&+:=@')).toBe('keep-_.~$&+:=@');
    expect(escapeCollectionName('100%')).toBe('100%25');
  });

  test('unescapes back to the collection name', () => {
    for (const name of ['orders', 'cafés', 'a/b c?d', '100%', 'x+y']) expect(unescapeCollectionName(escapeCollectionName(name))).toBe(name);
    expect(unescapeCollectionName('bad%zz')).toBeUndefined();
  });

  test('cuts names too long for a file system and appends a hash of the exact name', () => {
    const long = 'aVery'.repeat(60);
    const escaped = escapeCollectionName(long);
    expect(escaped.length).toBe(208 + 3 + 27);
    expect(escaped.slice(0, 208)).toBe(long.slice(0, 208));
    expect(escaped.slice(208, 211)).toBe('%24');
    expect(escapeCollectionName(`${long}x`)).not.toBe(escaped);
  });
});

describe('metadata', () => {
  test('has the fields mongodump writes, in its order, as canonical Extended JSON', () => {
    const text = metadataJson({
      database: 'shop',
      collection: 'orders',
      kind: 'collection',
      options: { capped: true, size: new Int32(4096) },
      indexes: [
        { v: 2, key: { _id: new Int32(1) }, name: '_id_', ns: 'shop.orders' },
        { key: { email: new Int32(1) }, name: 'email_1', unique: true },
      ],
    });
    expect(text).toBe(
      '{"options":{"capped":true,"size":{"$numberInt":"4096"}},"indexes":[{"key":{"_id":{"$numberInt":"1"}},"name":"_id_"},' +
        '{"key":{"email":{"$numberInt":"1"}},"name":"email_1","unique":true}],"collectionName":"orders","type":"collection"}',
    );
  });

  test('omits empty options and writes a view with no indexes', () => {
    expect(metadataJson({ database: 'd', collection: 'c', kind: 'collection', options: {}, indexes: [] })).toBe(
      '{"indexes":[],"collectionName":"c","type":"collection"}',
    );
    const view = JSON.parse(
      metadataJson({
        database: 'd',
        collection: 'v',
        kind: 'view',
        options: { viewOn: 'c', pipeline: [{ $match: { a: 1 } }] },
        indexes: [],
      }),
    );
    expect(view.type).toBe('view');
    expect(view.options.viewOn).toBe('c');
  });

  test('parses what mongodump writes, keeping number types and dropping v and ns', () => {
    const m = parseMetadata(
      '{"indexes":[{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_","ns":"db1.c4"},' +
        '{"v":{"$numberInt":"2"},"key":{"t":{"$numberInt":"1"}},"name":"ttl","expireAfterSeconds":{"$numberLong":"60"}}],' +
        '"uuid":"cdc1ea3f66974c739a083cd38ab03670","collectionName":"c4","type":"collection"}',
      'c4.metadata.json',
    );
    expect(m.collectionName).toBe('c4');
    expect(m.kind).toBe('collection');
    expect(m.indexes.map((i) => Object.keys(i))).toEqual([
      ['key', 'name'],
      ['key', 'name', 'expireAfterSeconds'],
    ]);
    expect(m.indexes[1].expireAfterSeconds).toBeInstanceOf(Long);
  });

  test('writes a time-series collection as a collection of measurements that keeps its timeseries option', () => {
    const text = metadataJson({
      database: 'd',
      collection: 'ts',
      kind: 'timeseries',
      options: { timeseries: { timeField: 't' } },
      indexes: [],
    });
    expect(JSON.parse(text)).toMatchObject({ type: 'collection', options: { timeseries: { timeField: 't' } } });
    expect(parseMetadata(text, 'ts.metadata.json').kind).toBe('collection');
  });

  test('knows a view of an older dump by its viewOn', () => {
    expect(parseMetadata('{"options":{"viewOn":"c","pipeline":[]},"indexes":[]}', 'v.metadata.json').kind).toBe('view');
  });

  test('refuses text that is not JSON, naming the file and the byte offset', () => {
    expect(() => parseMetadata('{"indexes":[}', 'shop/orders.metadata.json')).toThrow(DumpFormatError);
    expect(() => parseMetadata('{"indexes":[}', 'shop/orders.metadata.json')).toThrow(
      /^shop\/orders\.metadata\.json: not valid JSON at byte offset 12 /,
    );
    // A byte offset, not a character index: é takes two bytes.
    expect(() => parseMetadata('{"collectionName":"é",}', 'y.metadata.json')).toThrow(
      /^y\.metadata\.json: not valid JSON at byte offset 23 /,
    );
    expect(() => parseMetadata('[1]', 'x.metadata.json')).toThrow(/x\.metadata\.json: holds JSON but not a metadata document/);
  });
});

describe('.bson framing', () => {
  test.each([1, 3, 7, 64, 1 << 20])('splits a stream read in chunks of %i bytes into its documents, byte for byte', async (size) => {
    const out = await collect(bsonDocuments(chunksOf(stream, size), 'f.bson'));
    expect(out).toEqual(docs);
  });

  test('a small document spanning two large reads is joined alone, without the rest of the read', async () => {
    const read = 1 << 20;
    const filler = Buffer.from(BSON.serialize({ _id: 0, pad: 'p'.repeat(read - 100) }));
    const small = Buffer.from(BSON.serialize({ _id: 1, s: 'x'.repeat(200) })); // starts ~100 bytes before the first read ends
    const after = Buffer.from(BSON.serialize({ _id: 2, pad: 'q'.repeat(read) }));
    const out = await collect(bsonDocuments(chunksOf(Buffer.concat([filler, small, after]), read), 'f.bson'));
    expect(out.map((d) => d.length)).toEqual([filler.length, small.length, after.length]);
    expect(out[1].equals(small)).toBe(true);
    expect(out[1].buffer.byteLength).toBeLessThan(64 * 1024);
  });

  test('a document of 16 MiB arriving in 64 KiB chunks comes out whole, gathered once (not copied per chunk)', async () => {
    const big = Buffer.from(BSON.serialize({ _id: 1, blob: Buffer.alloc(16 * 1024 * 1024 - 64, 7) }));
    const started = Date.now();
    const out = await collect(bsonDocuments(chunksOf(Buffer.concat([docs[0], big, docs[2]]), 64 * 1024), 'big.bson'));
    expect(out.map((d) => d.length)).toEqual([docs[0].length, big.length, docs[2].length]);
    expect(out[1].equals(big)).toBe(true);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  test('an empty file holds no documents', async () => {
    expect(await collect(bsonDocuments(chunksOf(Buffer.alloc(0), 1), 'f.bson'))).toEqual([]);
  });

  test('a file cut inside a document fails naming the file and the offset of that document', async () => {
    const cut = stream.subarray(0, stream.length - 3);
    await expect(collect(bsonDocuments(chunksOf(cut, 100), 'shop/orders.bson'))).rejects.toThrow(
      `shop/orders.bson: the document at byte offset ${docs[0].length + docs[1].length} declares ${docs[2].length} bytes, but the file ends ${docs[2].length - 3} byte(s) later`,
    );
  });

  test('a file cut inside a length fails naming the stray bytes', async () => {
    const cut = Buffer.concat([docs[0], Buffer.from([7, 0])]);
    await expect(collect(bsonDocuments(chunksOf(cut, 5), 'a.bson'))).rejects.toThrow(
      `a.bson: the file is truncated: 2 stray byte(s) at byte offset ${docs[0].length}`,
    );
  });

  test('a length running past the end of the file fails naming the offset', async () => {
    const bad = Buffer.from(docs[1]);
    bad.writeInt32LE(docs[1].length + 1000, 0);
    const bytes = Buffer.concat([docs[0], bad]);
    await expect(collect(bsonDocuments(chunksOf(bytes, 4096), 'b.bson'))).rejects.toThrow(
      `b.bson: the document at byte offset ${docs[0].length} declares ${docs[1].length + 1000} bytes, but the file ends ${docs[1].length} byte(s) later`,
    );
  });

  test('an impossible length or a missing terminator is refused', async () => {
    const tiny = Buffer.from([3, 0, 0, 0, 0]);
    await expect(collect(bsonDocuments(chunksOf(tiny, 10), 'c.bson'))).rejects.toThrow(
      'c.bson: byte offset 0 holds a document length of 3 bytes',
    );
    const unterminated = Buffer.from(docs[2]);
    unterminated[unterminated.length - 1] = 1;
    await expect(collect(bsonDocuments(chunksOf(unterminated, 10), 'd.bson'))).rejects.toThrow('d.bson: the document at byte offset 0');
  });
});

describe('dump files on disk', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'dump-format-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('reads plain and gzip files alike', async () => {
    writeFileSync(path.join(dir, 'p.bson'), stream);
    writeFileSync(path.join(dir, 'g.bson.gz'), gzipSync(stream));
    expect(await collect(dumpFileDocuments(path.join(dir, 'p.bson')))).toEqual(docs);
    expect(await collect(dumpFileDocuments(path.join(dir, 'g.bson.gz')))).toEqual(docs);
  });

  test('a cut gzip file fails naming the file', async () => {
    const gz = gzipSync(stream);
    const file = path.join(dir, 'cut.bson.gz');
    writeFileSync(file, gz.subarray(0, gz.length - 12));
    await expect(collect(dumpFileDocuments(file))).rejects.toThrow(file);
  });
});

describe('where JSON stops being JSON', () => {
  test.each([
    ['{"a":1}', undefined],
    ['{"a":[1,2,{"b":"c\\"d"}]} ', undefined],
    ['{"a":1', 6],
    ['{"a" 1}', 5],
    ['{"a":tru}', 5],
    ['{"a":1} x', 8],
    ['', 0],
    ['{"a":"é",}', 9],
  ])('%j -> %p', (text, index) => {
    expect(jsonErrorIndex(text)).toBe(index);
  });
});
