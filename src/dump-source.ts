/**
 * A mongodump directory as a backup source: the same collections-with-documents a live MongoDB
 * gives (a CollectionSpec and a stream of raw BSON documents per collection), read from files.
 *
 * Everything that can be checked without reading the documents is checked when the dump is opened
 * (the directory holds a dump, every metadata file parses, no collection is named twice), so a bad
 * dump fails before the standby is touched; a damaged `.bson` found while streaming fails inside the
 * backup's transaction, which rolls back.
 */
import { createReadStream } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { createGunzip, gunzipSync } from 'node:zlib';
import { archiveDocuments, isArchiveFile, openArchive } from './dump-archive.js';
import type { Document } from 'mongodb';
import {
  BSON_SUFFIX,
  DumpFormatError,
  GZIP_SUFFIX,
  METADATA_SUFFIX,
  bsonDocuments,
  parseMetadata,
  unescapeCollectionName,
} from './dump-format.js';
import type { CollectionSpec } from './mongo.js';
import { isSelected, isSystemDatabase, type Selection } from './selection.js';

export interface DumpCollection {
  spec: CollectionSpec;
  /** The `.bson` or `.bson.gz` file, when the dump has one (views and some empty collections have none). */
  bsonFile?: string;
  metadataFile?: string;
  /** The archive holding the collection, when the dump is a mongodump --archive file. */
  archiveFile?: string;
}

export interface DumpContents {
  dir: string;
  collections: DumpCollection[];
  /** Every database the dump holds, selected or not. */
  databases: string[];
  /** From prelude.json, which recent mongodump versions write beside the databases. */
  serverVersion?: string;
  toolVersion?: string;
  /** The dump has an oplog.bson (mongodump --oplog): operations during the dump, which are not replayed. */
  oplog?: boolean;
}

interface Found {
  bson?: string;
  metadata?: string;
}

/** Opens a mongodump output directory (or a mongodump --archive file) and lists what the selection covers. */
export async function openDumpDirectory(dir: string, selection: Selection): Promise<DumpContents> {
  const info = await stat(dir).catch((err: NodeJS.ErrnoException) => {
    throw new DumpFormatError(
      err.code === 'ENOENT'
        ? `source-dump-dir ${dir} does not exist: pass the directory mongodump --out wrote`
        : `source-dump-dir ${dir} cannot be read (${err.code ?? err.message}): check the path and its permissions`,
    );
  });
  if (!info.isDirectory()) {
    if (await isArchiveFile(dir)) {
      const archive = await openArchive(dir, selection);
      if (
        archive.collections.length === 0 &&
        (await openArchive(dir, { databases: [], include: [], exclude: [] })).collections.length === 0
      ) {
        throw new DumpFormatError(`source-dump-dir ${dir} is a mongodump archive that holds no collection`);
      }
      return archive;
    }
    throw new DumpFormatError(
      `source-dump-dir ${dir} is a file but not a mongodump archive (byte offset 0 holds neither the archive magic number nor gzip's): pass the directory mongodump --out wrote, or the file of mongodump --archive`,
    );
  }
  const top = await readdir(dir, { withFileTypes: true });
  const collections: DumpCollection[] = [];
  let dumpFiles = 0;
  for (const entry of top.filter((e) => e.isDirectory()).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const database = entry.name;
    const dbDir = path.join(dir, database);
    const byName = new Map<string, Found>();
    for (const file of (await readdir(dbDir, { withFileTypes: true })).filter((e) => e.isFile())) {
      const kind = fileKind(file.name);
      if (!kind) continue;
      dumpFiles++;
      const found = byName.get(kind.base) ?? {};
      const full = path.join(dbDir, file.name);
      const other = found[kind.part];
      if (other !== undefined) {
        throw new DumpFormatError(
          `${full} and ${other} hold the same collection, one compressed and one not: delete the one that is out of date`,
        );
      }
      found[kind.part] = full;
      byName.set(kind.base, found);
    }
    if (isSystemDatabase(database)) continue;
    for (const [base, found] of [...byName.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      // Users, roles and the auth schema version that mongodump writes for --db admin dumps.
      if (base.startsWith('$admin.')) continue;
      const metadata = found.metadata ? parseMetadata(await readText(found.metadata), found.metadata) : undefined;
      const fromName = unescapeCollectionName(base);
      const collection = metadata?.collectionName ?? fromName;
      if (collection === undefined) {
        throw new DumpFormatError(
          `${found.bson ?? found.metadata}: the file name is not a mongodump collection name (a bad % escape) and no metadata names the collection`,
        );
      }
      // Time-series buckets are written as system.buckets.<name>.bson beside <name>.metadata.json.
      if (collection.startsWith('system.buckets.')) continue;
      if (!isSelected(database, collection, selection)) continue;
      if (metadata?.kind === 'timeseries') {
        throw new DumpFormatError(
          `${found.metadata}: ${database}.${collection} is a time-series collection, which mongodump stores as internal buckets, not as its documents; ` +
            `back it up from the live MongoDB, or leave it out with exclude: ${database}.${collection}`,
        );
      }
      const spec: CollectionSpec = {
        database,
        collection,
        kind: metadata?.kind ?? 'collection',
        options: metadata?.options ?? ({} as Document),
        indexes: metadata?.indexes ?? [],
      };
      collections.push({ spec, bsonFile: spec.kind === 'view' ? undefined : found.bson, metadataFile: found.metadata });
    }
  }
  if (dumpFiles === 0) {
    const loose = top.some((e) => e.isFile() && fileKind(e.name) !== undefined);
    throw new DumpFormatError(
      loose
        ? `source-dump-dir ${dir} holds .bson/.metadata.json files directly, like one database's folder of a dump: pass its parent directory (the one mongodump --out wrote), whose sub-directories are named after the databases`
        : `source-dump-dir ${dir} holds no mongodump output: expected <database>/<collection>.bson and <collection>.metadata.json files (optionally .gz), as mongodump --out writes them`,
    );
  }
  const prelude = await readPrelude(dir);
  const oplog = top.some((e) => e.isFile() && /^oplog\.bson(\.gz)?$/.test(e.name));
  const databases = top.filter((e) => e.isDirectory()).map((e) => e.name);
  return { dir, collections, databases, ...prelude, oplog };
}

function fileKind(name: string): { base: string; part: 'bson' | 'metadata' } | undefined {
  const plain = name.endsWith(GZIP_SUFFIX) ? name.slice(0, -GZIP_SUFFIX.length) : name;
  if (plain.endsWith(METADATA_SUFFIX)) return { base: plain.slice(0, -METADATA_SUFFIX.length), part: 'metadata' };
  if (plain.endsWith(BSON_SUFFIX)) return { base: plain.slice(0, -BSON_SUFFIX.length), part: 'bson' };
  return undefined;
}

async function readText(file: string): Promise<string> {
  const bytes = await readFile(file);
  if (!file.endsWith(GZIP_SUFFIX)) return bytes.toString('utf8');
  try {
    return gunzipSync(bytes).toString('utf8');
  } catch (err) {
    throw new DumpFormatError(`${file}: not readable gzip data (${(err as Error).message}); take a new dump or copy the file again`);
  }
}

async function readPrelude(dir: string): Promise<{ serverVersion?: string; toolVersion?: string }> {
  for (const name of ['prelude.json', 'prelude.json.gz']) {
    const file = path.join(dir, name);
    const text = await readText(file).catch(() => undefined);
    if (text === undefined) continue;
    try {
      const p = JSON.parse(text) as { ServerVersion?: unknown; ToolVersion?: unknown };
      return {
        serverVersion: typeof p.ServerVersion === 'string' ? p.ServerVersion : undefined,
        toolVersion: typeof p.ToolVersion === 'string' ? p.ToolVersion : undefined,
      };
    } catch {
      return {}; // only informative: a damaged prelude does not make the collections unreadable
    }
  }
  return {};
}

/** Bytes read from a file at a time: large reads, few system calls. */
const READ_CHUNK_BYTES = 1024 * 1024;

/**
 * The documents of one dump file, as raw BSON, streamed: `.gz` files are decompressed on the way.
 * A file that ends inside a document, or whose gzip data is cut, fails naming the file and offset.
 */
export async function* dumpFileDocuments(file: string): AsyncGenerator<Buffer> {
  const raw = createReadStream(file, { highWaterMark: READ_CHUNK_BYTES });
  if (!file.endsWith(GZIP_SUFFIX)) {
    try {
      yield* bsonDocuments(raw, file);
    } finally {
      raw.destroy();
    }
    return;
  }
  const gunzip = createGunzip({ chunkSize: 256 * 1024 });
  raw.on('error', (err) => gunzip.destroy(err));
  raw.pipe(gunzip);
  try {
    yield* bsonDocuments(gunzip, file);
  } catch (err) {
    if (err instanceof DumpFormatError) throw err;
    throw new DumpFormatError(
      `${file}: the gzip data is truncated or damaged after byte offset ${raw.bytesRead} of the file (${(err as Error).message}); take a new dump or copy the file again`,
    );
  } finally {
    raw.destroy();
    gunzip.destroy();
  }
}

/** Documents of a collection of the dump: none for a view or a collection dumped without a `.bson`. */
export function dumpDocuments(c: DumpCollection): AsyncIterable<Buffer> {
  if (c.spec.kind === 'view') return (async function* () {})();
  if (c.archiveFile !== undefined) return archiveDocuments(c.archiveFile, c.spec.database, c.spec.collection);
  if (c.bsonFile === undefined) return (async function* () {})();
  return dumpFileDocuments(c.bsonFile);
}
