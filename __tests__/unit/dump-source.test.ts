// Opening a mongodump directory: what a backup takes from it (as mongodump users expect: views by
// their metadata, system collections and admin's users/roles left out, escaped and cut file names
// resolved through collectionName), and the dumps it refuses before touching the standby.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { BSON } from 'mongodb';
import { escapeCollectionName } from '../../src/dump-format.js';
import { dumpDocuments, openDumpDirectory } from '../../src/dump-source.js';

const ALL = { databases: [], include: [], exclude: [] };
const meta = (name: string, extra = '') =>
  `{${extra}"indexes":[{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_"}],"collectionName":"${name}","type":"collection"}`;

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const b of it) out.push(Buffer.from(b));
  return out;
}

describe('opening a mongodump directory', () => {
  let root: string;
  let n = 0;
  const fresh = (): string => {
    const dir = path.join(root, `d${n++}`);
    mkdirSync(dir);
    return dir;
  };
  const put = (dir: string, rel: string, content: string | Buffer) => {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), content);
  };
  beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), 'dump-source-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  test('takes collections and views as mongodump wrote them, and leaves out what mongorestore would not restore as data', async () => {
    const dir = fresh();
    const docs = [BSON.serialize({ _id: 1 }), BSON.serialize({ _id: 2 })].map((u) => Buffer.from(u));
    const long = 'x'.repeat(300);
    put(dir, 'shop/orders.bson', Buffer.concat(docs));
    put(dir, 'shop/orders.metadata.json', meta('orders', '"options":{"capped":true,"size":{"$numberInt":"4096"}},'));
    put(dir, 'shop/caf%C3%A9s.bson.gz', gzipSync(docs[0]));
    put(dir, 'shop/caf%C3%A9s.metadata.json.gz', gzipSync(meta('cafés')));
    put(dir, `shop/${escapeCollectionName(long)}.bson`, Buffer.alloc(0));
    put(dir, `shop/${escapeCollectionName(long)}.metadata.json`, meta(long));
    put(
      dir,
      'shop/recent.metadata.json',
      '{"options":{"viewOn":"orders","pipeline":[]},"indexes":[],"collectionName":"recent","type":"view"}',
    );
    put(dir, 'shop/system.js.bson', Buffer.alloc(0));
    put(dir, 'shop/nometa.bson', docs[1]);
    put(dir, 'admin/system.users.bson', Buffer.alloc(0));
    put(dir, 'shop/$admin.system.users.bson', Buffer.alloc(0));
    put(dir, 'oplog.bson', Buffer.alloc(0));
    put(dir, 'prelude.json', '{"ServerVersion":"7.0.14","ToolVersion":"100.10.0"}\n');

    const dump = await openDumpDirectory(dir, ALL);
    expect(dump.serverVersion).toBe('7.0.14');
    expect(dump.oplog).toBe(true);
    expect(dump.collections.map((c) => [c.spec.collection, c.spec.kind])).toEqual([
      ['cafés', 'collection'],
      ['nometa', 'collection'],
      ['orders', 'collection'],
      ['recent', 'view'],
      [long, 'collection'],
    ]);
    const orders = dump.collections.find((c) => c.spec.collection === 'orders');
    expect(orders?.spec.options.capped).toBe(true);
    expect(orders?.spec.indexes).toEqual([{ key: { _id: expect.anything() }, name: '_id_' }]);
    expect(await collect(dumpDocuments(orders!))).toEqual(docs);
    expect(await collect(dumpDocuments(dump.collections[0]))).toEqual([docs[0]]);
    expect(dump.collections.find((c) => c.spec.collection === 'nometa')?.spec.indexes).toEqual([]);

    const selected = await openDumpDirectory(dir, { databases: [], include: ['shop.o*'], exclude: [] });
    expect(selected.collections.map((c) => c.spec.collection)).toEqual(['orders']);
  });

  test.each([
    ['an empty directory', () => undefined, 'holds no mongodump output'],
    [
      'one database folder passed instead of its parent',
      (dir: string) => writeFileSync(path.join(dir, 'orders.bson'), ''),
      'pass its parent directory',
    ],
    [
      'a collection both plain and gzip',
      (dir: string) => {
        mkdirSync(path.join(dir, 'shop'));
        writeFileSync(path.join(dir, 'shop', 'a.bson'), '');
        writeFileSync(path.join(dir, 'shop', 'a.bson.gz'), gzipSync(''));
      },
      'hold the same collection, one compressed and one not',
    ],
    [
      'a time-series collection (buckets)',
      (dir: string) => {
        mkdirSync(path.join(dir, 'm'));
        writeFileSync(path.join(dir, 'm', 'system.buckets.ts.bson'), '');
        writeFileSync(
          path.join(dir, 'm', 'ts.metadata.json'),
          '{"options":{"timeseries":{"timeField":"t"}},"indexes":[],"collectionName":"ts","type":"timeseries"}',
        );
      },
      'm.ts is a time-series collection, which mongodump stores as internal buckets',
    ],
    [
      'a gzip metadata file that is not gzip',
      (dir: string) => (mkdirSync(path.join(dir, 's')), writeFileSync(path.join(dir, 's', 'c.metadata.json.gz'), '{}')),
      'c.metadata.json.gz: not readable gzip data',
    ],
  ])('refuses %s', async (_name, make, message) => {
    const dir = fresh();
    make(dir);
    await expect(openDumpDirectory(dir, ALL)).rejects.toThrow(message);
  });

  test('refuses a path that does not exist, naming it', async () => {
    await expect(openDumpDirectory(path.join(root, 'nope'), ALL)).rejects.toThrow(
      `source-dump-dir ${path.join(root, 'nope')} does not exist`,
    );
  });
});
