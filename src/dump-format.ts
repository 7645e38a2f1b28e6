/**
 * mongodump's directory format, as the MongoDB Database Tools write and read it:
 *
 *   <out>/<db>/<collection>.bson            the documents, concatenated BSON, nothing between them
 *   <out>/<db>/<collection>.metadata.json   {"options":…,"indexes":[…],"uuid":…,"collectionName":…,"type":…}
 *                                           as one line of canonical Extended JSON v2
 *
 * `--gzip` appends `.gz` to both names. Views have a metadata file and no `.bson`. Collection names
 * are escaped into file names like Go's url.PathEscape, and names too long for a file system are
 * cut and suffixed with a hash; the metadata's `collectionName` keeps the exact name.
 *
 * This module holds only the format: names, the metadata document, and the framing of a `.bson`
 * stream. Reading a dump (dump-source.ts) and writing one (dump-target.ts) are built on it.
 */
import { createHash } from 'node:crypto';
import { BSON, type Document } from 'mongodb';
import type { CollectionSpec } from './mongo.js';

const { EJSON } = BSON;

/** A bad dump: the message names the file and, where it can, the byte offset. */
export class DumpFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DumpFormatError';
  }
}

export const BSON_SUFFIX = '.bson';
export const METADATA_SUFFIX = '.metadata.json';
export const GZIP_SUFFIX = '.gz';

/**
 * The largest document a `.bson` file may hold: MongoDB's 16 MiB limit plus the 16 KiB it allows
 * internal documents (the oplog) beyond it. A longer length is damage, not data.
 */
const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024 + 16 * 1024;

/** Characters Go's url.PathEscape leaves as they are; every other byte becomes %XX (upper-case hex). */
const PATH_SEGMENT_SAFE = /^[A-Za-z0-9\-_.~$&+:=@]$/;

/** The file-name form of a collection name, exactly as mongodump makes it. */
export function escapeCollectionName(collection: string): string {
  let escaped = '';
  for (const ch of collection) {
    if (PATH_SEGMENT_SAFE.test(ch)) {
      escaped += ch;
      continue;
    }
    for (const byte of Buffer.from(ch, 'utf8')) escaped += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  // Names that would make a file name over 255 bytes with the longest suffix (.metadata.json.gz):
  // the first 208 bytes, '%24' (an escaped '$'), and the base64url SHA-1 of the exact name.
  if (Buffer.byteLength(escaped) > 238) {
    const hash = createHash('sha1').update(collection, 'utf8').digest('base64url');
    escaped = `${Buffer.from(escaped).subarray(0, 208).toString('latin1')}%24${hash}`;
  }
  return escaped;
}

/** The collection name a file name stands for (the metadata's collectionName wins when there is one). */
export function unescapeCollectionName(escaped: string): string | undefined {
  try {
    return decodeURIComponent(escaped);
  } catch {
    return undefined;
  }
}

/** Index fields that describe the source server, not the index: mongorestore and FerretDB refuse `ns`. */
const INDEX_NOISE = new Set(['v', 'ns']);

export function cleanIndex(index: Document): Document {
  return Object.fromEntries(Object.entries(index).filter(([k]) => !INDEX_NOISE.has(k)));
}

/**
 * The metadata.json text of a collection, field for field as mongodump writes it (options only when
 * there are any, indexes always, collectionName, type). No `uuid`: a restored collection gets a new
 * one unless mongorestore is asked to preserve it, and the backup does not record it.
 */
export function metadataJson(spec: CollectionSpec): string {
  const metadata: Document = {};
  if (Object.keys(spec.options).length > 0) metadata.options = spec.options;
  metadata.indexes = spec.kind === 'view' ? [] : spec.indexes.map(cleanIndex);
  metadata.collectionName = spec.collection;
  metadata.type = dumpTypeOf(spec.kind);
  return EJSON.stringify(metadata, { relaxed: false });
}

/**
 * The metadata `type` a collection is written with. A backup holds a time-series collection's
 * measurements, not the internal buckets mongodump writes for type "timeseries": it is written as a
 * collection whose recorded `timeseries` option makes mongorestore create it as time series again.
 */
export function dumpTypeOf(kind: CollectionSpec['kind']): 'collection' | 'view' {
  return kind === 'view' ? 'view' : 'collection';
}

/** What a metadata file says about its collection. */
export interface DumpMetadata {
  collectionName?: string;
  kind: CollectionSpec['kind'];
  options: Document;
  indexes: Document[];
}

/**
 * Parses a metadata file's text. Extended JSON v2 (canonical or relaxed) and the legacy form older
 * tools wrote both parse; numbers keep their BSON types. A file that is not JSON fails naming the
 * byte offset where parsing stopped.
 */
export function parseMetadata(text: string, file: string): DumpMetadata {
  let parsed: unknown;
  try {
    parsed = EJSON.parse(text, { relaxed: false });
  } catch (err) {
    const message = (err as Error).message;
    const at = jsonErrorIndex(text);
    const offset = at === undefined ? undefined : Buffer.byteLength(text.slice(0, at));
    throw new DumpFormatError(
      `${file}: not valid JSON${offset === undefined ? '' : ` at byte offset ${offset}`} (${message}); ` +
        'a mongodump metadata file holds one Extended JSON document: take a new dump, or delete the file to import the collection without its options and indexes',
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new DumpFormatError(
      `${file}: holds JSON but not a metadata document (an object with indexes and options); take a new dump of this collection`,
    );
  }
  const doc = parsed as Document;
  const options = isPlainDocument(doc.options) ? (doc.options as Document) : {};
  const indexes = Array.isArray(doc.indexes) ? (doc.indexes as Document[]).filter(isPlainDocument).map(cleanIndex) : [];
  const type = typeof doc.type === 'string' ? doc.type : undefined;
  // Dumps from tools older than the `type` field: a view is known by its viewOn option.
  const kind: CollectionSpec['kind'] =
    type === 'view' || (type === undefined && typeof options.viewOn === 'string')
      ? 'view'
      : type === 'timeseries' || (type === undefined && isPlainDocument(options.timeseries))
        ? 'timeseries'
        : 'collection';
  return {
    collectionName: typeof doc.collectionName === 'string' ? doc.collectionName : undefined,
    kind,
    options,
    indexes,
  };
}

/**
 * Where JSON text stops being JSON (a character index), or undefined when it is JSON: a syntax-only
 * scan, because JSON.parse does not say where it failed for every error.
 */
export function jsonErrorIndex(text: string): number | undefined {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        if (text[i] !== '"') fail();
        string();
        ws();
        if (text[i] !== ':') fail();
        i++;
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') return void i++;
        else fail();
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') return void i++;
        else fail();
      }
    }
    if (c === '"') return string();
    const literal = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(i, i + 400));
    if (!literal) fail();
    i += (literal as RegExpExecArray)[0].length;
  };
  const string = (): void => {
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text.charCodeAt(i) < 0x20) fail();
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail();
          i += 4;
        } else if (!'"\\/bfnrt'.includes(text[i] ?? 'x')) fail();
      }
      i++;
    }
    if (i >= text.length) fail();
    i++;
  };
  try {
    value();
    ws();
    return i < text.length ? i : undefined;
  } catch (at) {
    if (typeof at === 'number') return at;
    throw at;
  }
}

function isPlainDocument(value: unknown): value is Document {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Splits a stream of concatenated BSON documents (a `.bson` file, decompressed if need be) into one
 * Buffer per document, checking the framing as it goes: every document's length must be possible
 * and must fit in what is left, and the stream must end exactly after a document. Memory holds one
 * chunk of the stream and at most one document spanning chunks, whatever the file's size.
 * Offsets in messages count bytes of the (decompressed) document stream from its start.
 */
export async function* bsonDocuments(chunks: AsyncIterable<Buffer>, file: string): AsyncGenerator<Buffer> {
  yield* bsonFrames(chunks, file, { terminators: false });
}

/** The little-endian int32 at the start of `parts` when it spans them (they hold at least 4 bytes). */
function int32Across(parts: readonly Buffer[]): number {
  const bytes = Buffer.alloc(4);
  let filled = 0;
  for (const part of parts) {
    filled += part.copy(bytes, filled, 0, Math.min(part.length, 4 - filled));
    if (filled === 4) break;
  }
  return bytes.readInt32LE(0);
}

/** Removes the first `n` bytes of `parts` (they hold at least that many). */
function dropFront(parts: Buffer[], n: number): void {
  let left = n;
  while (left > 0) {
    const part = parts[0];
    if (part.length <= left) {
      parts.shift();
      left -= part.length;
    } else {
      parts[0] = part.subarray(left);
      left = 0;
    }
  }
}

/** What an archive has between its blocks: the int32 -1 (four 0xFF bytes). */
export const TERMINATOR: Buffer = Buffer.alloc(0);

/**
 * The framing of bsonDocuments, also for mongodump archives, whose documents are separated into
 * blocks by terminators: with `terminators`, each one is yielded as the TERMINATOR buffer (compare
 * by identity). `start` is the offset of the first byte in the whole stream (after a magic number).
 */
export async function* bsonFrames(
  chunks: AsyncIterable<Buffer>,
  file: string,
  opts: { terminators: boolean; start?: number },
): AsyncGenerator<Buffer> {
  const parts: Buffer[] = [];
  let have = 0;
  let offset = opts.start ?? 0; // of the first byte in `parts`
  let needed = 0; // length of the document being gathered, once known
  for await (const chunk of chunks) {
    if (chunk.length === 0) continue;
    parts.push(chunk);
    have += chunk.length;
    for (;;) {
      if (needed === 0) {
        if (have < 4) break;
        needed = parts[0].length >= 4 ? parts[0].readInt32LE(0) : int32Across(parts);
        if (needed === -1 && opts.terminators) {
          dropFront(parts, 4);
          have -= 4;
          offset += 4;
          needed = 0;
          yield TERMINATOR;
          continue;
        }
        if (needed < 5 || needed > MAX_DOCUMENT_BYTES) {
          throw new DumpFormatError(
            `${file}: byte offset ${offset} holds a document length of ${needed} bytes, which no BSON document has ` +
              `(5 to ${MAX_DOCUMENT_BYTES}); the file is damaged or is not a mongodump .bson file`,
          );
        }
      }
      if (have < needed) break;
      let doc: Buffer;
      if (parts[0].length >= needed) {
        doc = parts[0].subarray(0, needed);
        parts[0] = parts[0].subarray(needed);
        if (parts[0].length === 0) parts.shift();
      } else {
        // Only the document's own bytes are joined: the rest of the last chunk (up to a whole read) stays where it is.
        doc = Buffer.allocUnsafe(needed);
        let filled = 0;
        for (const part of parts) {
          filled += part.copy(doc, filled, 0, Math.min(part.length, needed - filled));
          if (filled === needed) break;
        }
        dropFront(parts, needed);
      }
      if (doc[needed - 1] !== 0) {
        throw new DumpFormatError(
          `${file}: the document at byte offset ${offset} (${needed} bytes) does not end with a 0 byte; the file is damaged: take a new dump`,
        );
      }
      have -= needed;
      offset += needed;
      needed = 0;
      yield doc;
    }
  }
  if (have === 0) return;
  if (needed === 0) {
    throw new DumpFormatError(
      `${file}: the file is truncated: ${have} stray byte(s) at byte offset ${offset}, too few for a document length; take a new dump or copy the file again`,
    );
  }
  throw new DumpFormatError(
    `${file}: the document at byte offset ${offset} declares ${needed} bytes, but the file ends ${have} byte(s) later: ` +
      'the file is truncated or the length is damaged; take a new dump or copy the file again',
  );
}
