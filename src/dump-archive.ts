/**
 * mongodump's `--archive` format: one file (or gzip stream, with `--gzip`) holding every collection.
 *
 *   magic 0x8199e26d (int32 LE) · header {concurrent_collections, version "0.1", server_version, tool_version}
 *   · one {db, collection, metadata (the metadata.json text), size} per collection · terminator (int32 -1)
 *   · blocks: {db, collection, EOF: false, CRC: 0} documents… terminator
 *   · per collection, at its end: {db, collection, EOF: true, CRC: CRC-64/ECMA of its documents} terminator
 *
 * mongodump interleaves the blocks of collections it dumps in parallel; this writer writes one
 * collection after the other, which the format allows and mongorestore reads the same way.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { BSON, Int32, Long, type Document } from 'mongodb';
import { ContentHash } from './codec.js';
import { DumpFormatError, TERMINATOR, bsonFrames, metadataJson, parseMetadata } from './dump-format.js';
import type { DumpContents, DumpCollection } from './dump-source.js';
import { checkDumpTarget, syncPath, type DumpReadBack, type DumpSink, type DumpTotals } from './dump-target.js';
import type { CollectionSpec } from './mongo.js';
import { isSelected, isSystemDatabase, type Selection } from './selection.js';

export const ARCHIVE_MAGIC = Buffer.from([0x6d, 0xe2, 0x99, 0x81]);
const TERMINATOR_BYTES = Buffer.from([0xff, 0xff, 0xff, 0xff]);
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);

// CRC-64/ECMA-182 as Go's hash/crc64 computes it (reflected polynomial 0xC96C5795D7870F42, all bits
// inverted before and after), in two 32-bit halves: BigInt per byte would be far too slow.
const CRC_LO = new Uint32Array(256);
const CRC_HI = new Uint32Array(256);
for (let n = 0; n < 256; n++) {
  let lo = n;
  let hi = 0;
  for (let k = 0; k < 8; k++) {
    const carry = lo & 1;
    lo = ((lo >>> 1) | (hi << 31)) >>> 0;
    hi = hi >>> 1;
    if (carry) {
      lo = (lo ^ 0xd7870f42) >>> 0;
      hi = (hi ^ 0xc96c5795) >>> 0;
    }
  }
  CRC_LO[n] = lo;
  CRC_HI[n] = hi;
}

export class Crc64 {
  private lo = 0xffffffff;
  private hi = 0xffffffff;

  update(data: Buffer): this {
    let { lo, hi } = this;
    for (let i = 0; i < data.length; i++) {
      const idx = (lo ^ data[i]) & 0xff;
      lo = (((lo >>> 8) | (hi << 24)) ^ CRC_LO[idx]) >>> 0;
      hi = ((hi >>> 8) ^ CRC_HI[idx]) >>> 0;
    }
    this.lo = lo;
    this.hi = hi;
    return this;
  }

  /** The CRC as the signed int64 mongodump stores (Go's uint64 converted). */
  value(): Long {
    return Long.fromBits(~this.lo >>> 0, ~this.hi >>> 0, false);
  }
}

function serialize(doc: Document): Buffer {
  const bytes = BSON.serialize(doc);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function ns(database: string, collection: string): string {
  return `${database}.${collection}`;
}

async function startsWith(file: string, magic: Buffer): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(magic.length);
    const { bytesRead } = await handle.read(head, 0, magic.length, 0);
    return bytesRead === magic.length && head.equals(magic);
  } finally {
    await handle.close();
  }
}

/** Whether a file is an archive (plain, or gzip as mongodump --archive --gzip writes it): by its first bytes. */
export async function isArchiveFile(file: string): Promise<boolean> {
  return (await startsWith(file, ARCHIVE_MAGIC)) || (await startsWith(file, GZIP_MAGIC));
}

/** The archive's frames after its magic number, decompressed when the file is gzip. */
async function* archiveFrames(file: string): AsyncGenerator<Buffer> {
  const gzip = await startsWith(file, GZIP_MAGIC);
  const raw = createReadStream(file, { highWaterMark: 1024 * 1024 });
  const stream = gzip ? raw.pipe(createGunzip()) : raw;
  if (gzip) raw.on('error', (err) => stream.destroy(err));
  try {
    // The magic number is not a BSON length: check and strip it before framing.
    let checked = false;
    async function* afterMagic(): AsyncGenerator<Buffer> {
      let pending = Buffer.alloc(0);
      for await (const chunk of stream) {
        if (checked) {
          yield chunk as Buffer;
          continue;
        }
        pending = Buffer.concat([pending, chunk as Buffer]);
        if (pending.length < 4) continue;
        if (!pending.subarray(0, 4).equals(ARCHIVE_MAGIC)) {
          throw new DumpFormatError(`${file}: not a mongodump archive (byte offset 0 does not hold the archive magic number 0x8199e26d)`);
        }
        checked = true;
        if (pending.length > 4) yield pending.subarray(4);
      }
      if (!checked) throw new DumpFormatError(`${file}: not a mongodump archive (shorter than its magic number)`);
    }
    yield* bsonFrames(afterMagic(), file, { terminators: true, start: 4 });
  } catch (err) {
    if (err instanceof DumpFormatError) throw err;
    throw new DumpFormatError(
      `${file}: the archive is truncated or damaged after byte offset ${raw.bytesRead} of the file (${(err as Error).message})`,
    );
  } finally {
    raw.destroy();
    stream.destroy();
  }
}

interface ArchivePrelude {
  serverVersion?: string;
  toolVersion?: string;
  collections: { database: string; collection: string; metadata: string }[];
}

function asDocument(frame: Buffer, file: string, what: string): Document {
  if (frame === TERMINATOR) throw new DumpFormatError(`${file}: a terminator stands where the archive's ${what} should be`);
  try {
    return BSON.deserialize(frame);
  } catch (err) {
    throw new DumpFormatError(`${file}: the archive's ${what} is not a BSON document (${(err as Error).message})`);
  }
}

/**
 * Opens an archive: reads its prelude (which lists every collection with its metadata) and returns
 * the collections the selection covers. Each collection's documents are read by scanning the archive
 * for its blocks (mongodump interleaves them), once per collection.
 */
export async function openArchive(file: string, selection: Selection): Promise<DumpContents> {
  const frames = archiveFrames(file);
  const prelude: ArchivePrelude = { collections: [] };
  try {
    const header = asDocument((await frames.next()).value as Buffer, file, 'header');
    if (header.version !== '0.1')
      throw new DumpFormatError(`${file}: archive format version ${String(header.version)} is not 0.1, the only one mongodump writes`);
    prelude.serverVersion = typeof header.server_version === 'string' ? header.server_version : undefined;
    prelude.toolVersion = typeof header.tool_version === 'string' ? header.tool_version : undefined;
    for (;;) {
      const next = await frames.next();
      if (next.done) throw new DumpFormatError(`${file}: the archive ends inside its list of collections`);
      if (next.value === TERMINATOR) break;
      const m = asDocument(next.value, file, 'collection metadata');
      if (typeof m.db !== 'string' || typeof m.collection !== 'string' || typeof m.metadata !== 'string') {
        throw new DumpFormatError(`${file}: a collection entry of the archive lacks db, collection or metadata`);
      }
      prelude.collections.push({ database: m.db, collection: m.collection, metadata: m.metadata });
    }
  } finally {
    await frames.return(undefined);
  }
  const collections: DumpCollection[] = [];
  for (const c of prelude.collections) {
    if (isSystemDatabase(c.database) || c.collection.startsWith('$admin.')) continue;
    if (!isSelected(c.database, c.collection, selection)) continue;
    const where = `${file} (metadata of ${ns(c.database, c.collection)})`;
    const metadata = c.metadata === '' ? undefined : parseMetadata(c.metadata, where);
    if (metadata?.kind === 'timeseries') {
      throw new DumpFormatError(
        `${where}: ${ns(c.database, c.collection)} is a time-series collection, which mongodump stores as internal buckets, not as its documents; ` +
          `back it up from the live MongoDB, or leave it out with exclude: ${ns(c.database, c.collection)}`,
      );
    }
    const spec: CollectionSpec = {
      database: c.database,
      collection: c.collection,
      kind: metadata?.kind ?? 'collection',
      options: metadata?.options ?? {},
      indexes: metadata?.indexes ?? [],
    };
    collections.push({ spec, archiveFile: file });
  }
  collections.sort((a, b) => (ns(a.spec.database, a.spec.collection) < ns(b.spec.database, b.spec.collection) ? -1 : 1));
  const databases = [...new Set(prelude.collections.map((c) => c.database))];
  return { dir: file, collections, databases, serverVersion: prelude.serverVersion, toolVersion: prelude.toolVersion };
}

/**
 * The documents of one collection of an archive, in order, checked against the CRC its end-of-
 * collection block records. A collection whose end never comes fails: the archive is truncated.
 */
export async function* archiveDocuments(file: string, database: string, collection: string): AsyncGenerator<Buffer> {
  const frames = archiveFrames(file);
  try {
    // Skip the prelude.
    for (;;) {
      const next = await frames.next();
      if (next.done) throw new DumpFormatError(`${file}: the archive ends inside its prelude`);
      if (next.value === TERMINATOR) break;
    }
    const crc = new Crc64();
    let inBlock = false;
    let ours = false;
    for (;;) {
      const next = await frames.next();
      if (next.done) {
        throw new DumpFormatError(
          `${file}: the archive ends before the end of ${ns(database, collection)}; it is truncated: take a new dump or copy it again`,
        );
      }
      const frame = next.value;
      if (frame === TERMINATOR) {
        inBlock = false;
        continue;
      }
      if (inBlock) {
        if (ours) {
          crc.update(frame);
          yield frame;
        }
        continue;
      }
      const header = asDocument(frame, file, 'block header');
      ours = header.db === database && header.collection === collection;
      if (header.EOF === true) {
        if (ours) {
          const recorded = Long.fromValue(header.CRC ?? 0);
          if (!recorded.isZero() && !recorded.equals(crc.value())) {
            throw new DumpFormatError(
              `${file}: the documents of ${ns(database, collection)} do not match the CRC the archive records for them; the archive is damaged`,
            );
          }
          return;
        }
        continue; // its terminator follows
      }
      inBlock = true;
    }
  } finally {
    await frames.return(undefined);
  }
}

/** Writes a backup as one archive file (gzip-compressed as a whole with `gzip`), beside the target until verified. */
export class ArchiveWriter implements DumpSink {
  private file: WriteStream | undefined;
  private out: Writable | undefined;
  private readonly written = new Map<string, DumpTotals>();

  private constructor(
    readonly target: string,
    readonly staging: string,
    private readonly gzip: boolean,
  ) {}

  static async open(target: string, opts: { gzip: boolean; replace: boolean }): Promise<ArchiveWriter> {
    const { resolved } = await checkDumpTarget(target, { archive: true, replace: opts.replace });
    await mkdir(path.dirname(resolved), { recursive: true });
    const staging = path.join(path.dirname(resolved), `.${path.basename(resolved)}.partial-${randomBytes(6).toString('hex')}`);
    return new ArchiveWriter(resolved, staging, opts.gzip);
  }

  describe(database: string, collection: string): string {
    return `${this.target} (${ns(database, collection)})`;
  }

  /** Writes the magic number, the header and the metadata of every collection: the archive's prelude. */
  async begin(collections: readonly { database: string; spec: CollectionSpec; bytes: number }[], serverVersion: string): Promise<void> {
    this.file = createWriteStream(this.staging, { flags: 'wx' });
    if (this.gzip) {
      const gz = createGzip();
      gz.pipe(this.file);
      this.out = gz;
    } else {
      this.out = this.file;
    }
    await this.write(ARCHIVE_MAGIC);
    await this.write(
      serialize({ concurrent_collections: new Int32(1), version: '0.1', server_version: serverVersion, tool_version: 'supaneon-sync' }),
    );
    for (const c of collections) {
      const size = c.bytes <= 0x7fffffff ? new Int32(c.bytes) : Long.fromNumber(c.bytes);
      await this.write(
        serialize({ db: c.database, collection: c.spec.collection, metadata: metadataJson({ ...c.spec, database: c.database }), size }),
      );
    }
    await this.write(TERMINATOR_BYTES);
  }

  private async write(bytes: Buffer): Promise<void> {
    const out = this.out as Writable;
    // once() rejects on 'error' and removes its listeners either way: no listener piles up per write.
    if (!out.write(bytes)) await once(out, 'drain');
  }

  /** One collection: its documents in blocks of about 1 MiB, then its end with the CRC. Views have no data. */
  async writeCollection(
    database: string,
    spec: CollectionSpec,
    documents: AsyncIterable<Buffer> | undefined,
    onProgress?: (p: { documents: number; bytes: number }) => void,
  ): Promise<DumpTotals> {
    const hash = new ContentHash();
    const totals = (): DumpTotals => ({ documents: hash.documents, bytes: hash.bytes, contentHash: hash.digest() });
    if (spec.kind === 'view') return totals();
    const crc = new Crc64();
    const blockHeader = serialize({ db: database, collection: spec.collection, EOF: false, CRC: Long.ZERO });
    let block: Buffer[] = [];
    let blockBytes = 0;
    const flush = async () => {
      if (block.length === 0) return;
      await this.write(Buffer.concat([blockHeader, ...block, TERMINATOR_BYTES]));
      block = [];
      blockBytes = 0;
      onProgress?.({ documents: hash.documents, bytes: hash.bytes });
    };
    for await (const raw of documents ?? []) {
      hash.add(createHash('sha256').update(raw).digest(), raw.length);
      crc.update(raw);
      block.push(raw);
      blockBytes += raw.length;
      if (blockBytes >= 1024 * 1024) await flush();
    }
    await flush();
    await this.write(
      Buffer.concat([serialize({ db: database, collection: spec.collection, EOF: true, CRC: crc.value() }), TERMINATOR_BYTES]),
    );
    const t = totals();
    this.written.set(ns(database, spec.collection), t);
    onProgress?.({ documents: t.documents, bytes: t.bytes });
    return t;
  }

  /** Ends the file (flushing the compressor) and makes sure it reached the disk. */
  async end(): Promise<void> {
    const out = this.out as Writable;
    out.end();
    await finished(this.file as WriteStream);
    await syncPath(this.staging);
  }

  /** Reads the written archive back: per collection its count and hash, its metadata, checking every CRC. */
  async readBack(database: string, spec: CollectionSpec): Promise<DumpReadBack> {
    const contents = await openArchive(this.staging, { databases: [], include: [], exclude: [] });
    const entry = contents.collections.find((c) => c.spec.database === database && c.spec.collection === spec.collection);
    if (!entry) throw new Error(`${this.target}: the archive written lists no ${ns(database, spec.collection)}`);
    const hash = new ContentHash();
    if (spec.kind !== 'view') {
      for await (const raw of archiveDocuments(this.staging, database, spec.collection))
        hash.add(createHash('sha256').update(raw).digest(), raw.length);
    }
    return {
      documents: hash.documents,
      bytes: hash.bytes,
      contentHash: hash.digest(),
      metadata: { collectionName: entry.spec.collection, kind: entry.spec.kind, options: entry.spec.options, indexes: entry.spec.indexes },
    };
  }

  async commit(): Promise<void> {
    await rename(this.staging, this.target);
    await syncPath(path.dirname(this.target));
  }

  async abort(): Promise<void> {
    this.out?.destroy();
    this.file?.destroy();
    await rm(this.staging, { force: true });
  }
}
