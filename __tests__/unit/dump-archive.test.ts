// mongodump's --archive format: CRC-64/ECMA as Go computes it, the writer's layout, reading
// interleaved blocks (as parallel mongodump writes them), and damaged archives refused by name.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { BSON, Int32, Long, type Document } from 'mongodb';
import { ARCHIVE_MAGIC, ArchiveWriter, Crc64, archiveDocuments } from '../../src/dump-archive.js';
import { openDumpDirectory } from '../../src/dump-source.js';
import type { CollectionSpec } from '../../src/mongo.js';

const ALL = { databases: [], include: [], exclude: [] };
const ser = (d: Document): Buffer => Buffer.from(BSON.serialize(d));
const TERM = Buffer.from([0xff, 0xff, 0xff, 0xff]);

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const b of it) out.push(Buffer.from(b));
  return out;
}

async function* from(docs: Buffer[]): AsyncGenerator<Buffer> {
  yield* docs;
}

const spec = (collection: string, kind: CollectionSpec['kind'] = 'collection'): CollectionSpec => ({
  database: 'shop',
  collection,
  kind,
  options: kind === 'view' ? { viewOn: 'orders', pipeline: [] } : {},
  indexes: kind === 'view' ? [] : [{ key: { _id: new Int32(1) }, name: '_id_' }],
});

describe('mongodump archives', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'dump-archive-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('CRC-64/ECMA matches Go hash/crc64 (the CRC-64/XZ check value)', () => {
    expect(new Crc64().update(Buffer.from('123456789')).value().toUnsigned().toString(16)).toBe('995dc9bbdf1939fa');
    expect(new Crc64().update(Buffer.from('1234')).update(Buffer.from('56789')).value().toUnsigned().toString(16)).toBe('995dc9bbdf1939fa');
  });

  test.each([false, true])('writes an archive (gzip %p) that reads back collection by collection', async (gzip) => {
    const orders = Array.from({ length: 2500 }, (_, i) => ser({ _id: i, pad: 'x'.repeat(i % 900) }));
    const file = path.join(dir, `out-${gzip}.archive`);
    const w = await ArchiveWriter.open(file, { gzip, replace: false });
    const collections = [spec('orders'), spec('empty'), spec('recent', 'view')];
    await w.begin(
      collections.map((s) => ({ database: 'shop', spec: s, bytes: 0 })),
      '7.0.2',
    );
    await w.writeCollection('shop', collections[0], from(orders));
    await w.writeCollection('shop', collections[1], from([]));
    await w.writeCollection('shop', collections[2], undefined);
    await w.end();
    const back = await w.readBack('shop', collections[0]);
    expect(back.documents).toBe(2500);
    await w.commit();

    const bytes = gzip ? gunzipSync(readFileSync(file)) : readFileSync(file);
    expect(bytes.subarray(0, 4)).toEqual(ARCHIVE_MAGIC);
    const contents = await openDumpDirectory(file, ALL);
    expect(contents.serverVersion).toBe('7.0.2');
    expect(contents.collections.map((c) => [c.spec.collection, c.spec.kind])).toEqual([
      ['empty', 'collection'],
      ['orders', 'collection'],
      ['recent', 'view'],
    ]);
    expect(await collect(archiveDocuments(file, 'shop', 'orders'))).toEqual(orders);
    expect(await collect(archiveDocuments(file, 'shop', 'empty'))).toEqual([]);
  });

  function handMade(blocks: Buffer[]): string {
    const file = path.join(dir, `hand-${Math.random().toString(36).slice(2)}.archive`);
    writeFileSync(file, Buffer.concat(blocks));
    return file;
  }
  const header = ser({ concurrent_collections: new Int32(4), version: '0.1', server_version: '8.0.0', tool_version: '100.10.0' });
  const meta = (c: string) =>
    ser({ db: 'd', collection: c, metadata: `{"indexes":[],"collectionName":"${c}","type":"collection"}`, size: new Int32(0) });
  const block = (c: string, docs: Buffer[]) => Buffer.concat([ser({ db: 'd', collection: c, EOF: false, CRC: Long.ZERO }), ...docs, TERM]);
  const eof = (c: string, docs: Buffer[]) => {
    const crc = new Crc64();
    for (const d of docs) crc.update(d);
    return Buffer.concat([ser({ db: 'd', collection: c, EOF: true, CRC: crc.value() }), TERM]);
  };

  test('reads the interleaved blocks of collections dumped in parallel, checking each CRC', async () => {
    const a = [ser({ _id: 1 }), ser({ _id: 2 }), ser({ _id: 3 })];
    const b = [ser({ _id: 'x' }), ser({ _id: 'y' })];
    const file = handMade([
      ARCHIVE_MAGIC,
      header,
      meta('a'),
      meta('b'),
      TERM,
      block('a', [a[0]]),
      block('b', [b[0]]),
      block('a', a.slice(1)),
      eof('a', a),
      block('b', [b[1]]),
      eof('b', b),
    ]);
    expect(await collect(archiveDocuments(file, 'd', 'a'))).toEqual(a);
    expect(await collect(archiveDocuments(file, 'd', 'b'))).toEqual(b);
    const wrongCrc = handMade([ARCHIVE_MAGIC, header, meta('a'), TERM, block('a', a), eof('a', a.slice(1))]);
    await expect(collect(archiveDocuments(wrongCrc, 'd', 'a'))).rejects.toThrow(
      `${wrongCrc}: the documents of d.a do not match the CRC the archive records for them`,
    );
  });

  test('a truncated archive, a cut document and a file that is no archive are refused by name', async () => {
    const a = [ser({ _id: 1 }), ser({ _id: 2 })];
    const noEnd = handMade([ARCHIVE_MAGIC, header, meta('a'), TERM, block('a', a)]);
    await expect(collect(archiveDocuments(noEnd, 'd', 'a'))).rejects.toThrow(
      `${noEnd}: the archive ends before the end of d.a; it is truncated`,
    );
    const whole = Buffer.concat([ARCHIVE_MAGIC, header, meta('a'), TERM, block('a', a), eof('a', a)]);
    const cut = handMade([whole.subarray(0, whole.length - 40)]);
    await expect(collect(archiveDocuments(cut, 'd', 'a'))).rejects.toThrow(
      new RegExp(`^${cut.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: the document at byte offset \\d+ declares`),
    );
    const notArchive = handMade([Buffer.from('hello world')]);
    await expect(openDumpDirectory(notArchive, ALL)).rejects.toThrow(`source-dump-dir ${notArchive} is a file but not a mongodump archive`);
  });
});
