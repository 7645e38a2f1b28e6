/**
 * Writes a backup as a mongodump directory that mongorestore reads as its own: per collection
 * `<db>/<collection>.bson` (the stored documents' exact bytes, one after the other) and
 * `<collection>.metadata.json`, optionally gzip-compressed like `mongodump --gzip`.
 *
 * Nothing is ever half-written where the user looks: the dump is built in a temporary directory
 * beside the target, read back and checked, and only then renamed into place (a rename within one
 * directory is atomic). A failed or killed run leaves at most a hidden `.<name>.partial-*` directory,
 * never a target that looks complete.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, gunzipSync, gzipSync } from 'node:zlib';
import { ContentHash } from './codec.js';
import {
  BSON_SUFFIX,
  GZIP_SUFFIX,
  METADATA_SUFFIX,
  escapeCollectionName,
  metadataJson,
  parseMetadata,
  type DumpMetadata,
} from './dump-format.js';
import { dumpFileDocuments } from './dump-source.js';
import { TOOL_VERSION } from './manifest.js';
import type { CollectionSpec } from './mongo.js';

/** Bytes gathered before each write to the file: few large writes instead of one per document. */
const WRITE_CHUNK_BYTES = 256 * 1024;

export interface DumpTotals {
  documents: number;
  bytes: number;
  contentHash: string;
}

export interface DumpReadBack extends DumpTotals {
  metadata: DumpMetadata;
}

/** Where recover writes a dump: a mongodump directory (DumpWriter) or archive (ArchiveWriter). */
export interface DumpSink {
  /** Called once with every collection before any is written (an archive lists them all first). */
  begin(collections: readonly { database: string; spec: CollectionSpec; bytes: number }[], serverVersion: string): Promise<void>;
  writeCollection(
    database: string,
    spec: CollectionSpec,
    documents: AsyncIterable<Buffer> | undefined,
    onProgress?: (p: { documents: number; bytes: number }) => void,
  ): Promise<DumpTotals>;
  /** Called once after the last collection. */
  end(): Promise<void>;
  readBack(database: string, spec: CollectionSpec): Promise<DumpReadBack>;
  commit(): Promise<void>;
  abort(): Promise<void>;
  /** Where a collection lands, for messages. */
  describe(database: string, collection: string): string;
}

/**
 * Whether recover may write its dump at `target`: absent, an empty directory, or (with drop-target)
 * anything of the right kind, which is then replaced whole. Asked before any branch is made, and
 * again when the dump is opened. Answers the absolute path and whether something is there now.
 */
export async function checkDumpTarget(
  target: string,
  opts: { archive: boolean; replace: boolean },
): Promise<{ resolved: string; exists: boolean }> {
  const resolved = path.resolve(target);
  const existing = await stat(resolved).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new Error(`target-dump-dir ${target} cannot be examined (${err.code ?? err.message}): check the path and its permissions`);
  });
  if (!existing) return { resolved, exists: false };
  if (opts.archive) {
    if (existing.isDirectory()) throw new Error(`target-dump-dir ${target} is a directory: an archive is one file; name a file to create`);
    if (!opts.replace) throw new Error(`target-dump-dir ${target} already exists: name a new file, or set drop-target: true to replace it`);
    return { resolved, exists: true };
  }
  if (!existing.isDirectory()) throw new Error(`target-dump-dir ${target} is a file: name a directory to create`);
  const entries = await readdir(resolved);
  if (entries.length > 0 && !opts.replace) {
    throw new Error(
      `target-dump-dir ${target} already holds ${entries.length} file(s) or folder(s): name a new directory, or set drop-target: true to replace it`,
    );
  }
  return { resolved, exists: true };
}

export class DumpWriter implements DumpSink {
  private constructor(
    /** The directory the user asked for. */
    readonly target: string,
    /** Where the dump is built until it is complete and checked. */
    readonly staging: string,
    private readonly gzip: boolean,
    private readonly replace: boolean,
  ) {}

  /**
   * Checks the target (absent, an empty directory, or replaceable with drop-target) and creates the
   * staging directory beside it, on the same file system so the final rename is atomic.
   */
  static async open(target: string, opts: { gzip: boolean; replace: boolean }): Promise<DumpWriter> {
    const { resolved, exists: replace } = await checkDumpTarget(target, { archive: false, replace: opts.replace });
    const parent = path.dirname(resolved);
    await mkdir(parent, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
      throw new Error(
        `cannot create ${parent}, the parent of target-dump-dir (${err.code ?? err.message}): check the path and its permissions`,
      );
    });
    const staging = path.join(parent, `.${path.basename(resolved)}.partial-${randomBytes(6).toString('hex')}`);
    await mkdir(staging);
    return new DumpWriter(resolved, staging, opts.gzip, replace);
  }

  private file(database: string, collection: string, suffix: string): string {
    return path.join(this.staging, database, escapeCollectionName(collection) + suffix + (this.gzip ? GZIP_SUFFIX : ''));
  }

  /** Where a collection's documents end up once the dump is in place (for messages). */
  describe(database: string, collection: string): string {
    return path.join(this.target, path.relative(this.staging, this.file(database, collection, BSON_SUFFIX)));
  }

  /**
   * Writes prelude.json, as recent mongodump versions do beside the databases: the source server's
   * version (mongorestore reads it to know what it restores) and what wrote the dump.
   */
  async begin(_collections: unknown, serverVersion: string): Promise<void> {
    const prelude = Buffer.from(JSON.stringify({ ServerVersion: serverVersion, ToolVersion: `supaneon-sync ${TOOL_VERSION}` }) + '\n');
    await writeFile(path.join(this.staging, `prelude.json${this.gzip ? GZIP_SUFFIX : ''}`), this.gzip ? gzipSync(prelude) : prelude, {
      flag: 'wx',
    });
  }

  async end(): Promise<void> {}

  /**
   * Writes one collection: its documents (not for a view, which mongodump writes as metadata only)
   * streamed from `documents` with backpressure, then its metadata. Returns what was written, hashed
   * on the way exactly as backup and verify hash.
   */
  async writeCollection(
    database: string,
    spec: CollectionSpec,
    documents: AsyncIterable<Buffer> | undefined,
    onProgress?: (p: { documents: number; bytes: number }) => void,
  ): Promise<DumpTotals> {
    await mkdir(path.join(this.staging, database), { recursive: true });
    const hash = new ContentHash();
    if (spec.kind !== 'view') {
      const file = this.file(database, spec.collection, BSON_SUFFIX);
      const source = Readable.from(chunked(documents ?? empty(), hash, onProgress));
      const out = createWriteStream(file, { flags: 'wx' });
      if (this.gzip) await pipeline(source, createGzip(), out);
      else await pipeline(source, out);
      await syncPath(file);
    }
    const metadata = metadataJson({ ...spec, database });
    const bytes = Buffer.from(metadata, 'utf8');
    const metadataFile = this.file(database, spec.collection, METADATA_SUFFIX);
    await writeFile(metadataFile, this.gzip ? gzipSync(bytes) : bytes, { flag: 'wx' });
    await syncPath(metadataFile);
    await syncPath(path.join(this.staging, database));
    return { documents: hash.documents, bytes: hash.bytes, contentHash: hash.digest() };
  }

  /** Reads a written collection back from its files: the documents' count and hash, and the parsed metadata. */
  async readBack(database: string, spec: CollectionSpec): Promise<DumpReadBack> {
    const hash = new ContentHash();
    if (spec.kind !== 'view') {
      for await (const raw of dumpFileDocuments(this.file(database, spec.collection, BSON_SUFFIX))) {
        hash.add(createHash('sha256').update(raw).digest(), raw.length);
      }
    }
    const metadataFile = this.file(database, spec.collection, METADATA_SUFFIX);
    const bytes = await readFile(metadataFile);
    const metadata = parseMetadata((this.gzip ? gunzipSync(bytes) : bytes).toString('utf8'), metadataFile);
    return { documents: hash.documents, bytes: hash.bytes, contentHash: hash.digest(), metadata };
  }

  /** Puts the finished dump in place of the target (replacing an empty or, with drop-target, an old one). */
  async commit(): Promise<void> {
    await syncPath(this.staging);
    if (!this.replace) {
      await rename(this.staging, this.target);
      await syncPath(path.dirname(this.target));
      return;
    }
    const old = path.join(path.dirname(this.target), `.${path.basename(this.target)}.replaced-${randomBytes(6).toString('hex')}`);
    await rename(this.target, old);
    try {
      await rename(this.staging, this.target);
    } catch (err) {
      await rename(old, this.target).catch(() => undefined);
      throw err;
    }
    await syncPath(path.dirname(this.target));
    await rm(old, { recursive: true, force: true });
  }

  /** Removes the staging directory: the target stays as it was. */
  async abort(): Promise<void> {
    await rm(this.staging, { recursive: true, force: true });
  }
}

async function* empty(): AsyncGenerator<Buffer> {}

/**
 * Flushes a file or directory to the disk. The rename that publishes a dump must not reach the disk
 * before the files it publishes: after a crash, a dump that looks complete must be complete.
 */
export async function syncPath(target: string): Promise<void> {
  const handle = await open(target, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Documents gathered into chunks for the file, hashed and counted as they pass. */
async function* chunked(
  documents: AsyncIterable<Buffer>,
  hash: ContentHash,
  onProgress?: (p: { documents: number; bytes: number }) => void,
): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const raw of documents) {
    hash.add(createHash('sha256').update(raw).digest(), raw.length);
    pending.push(raw);
    pendingBytes += raw.length;
    if (pendingBytes >= WRITE_CHUNK_BYTES) {
      yield Buffer.concat(pending, pendingBytes);
      onProgress?.({ documents: hash.documents, bytes: hash.bytes });
      pending = [];
      pendingBytes = 0;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending, pendingBytes);
  onProgress?.({ documents: hash.documents, bytes: hash.bytes });
}
