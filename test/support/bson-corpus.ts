// Loads the BSON specification's corpus of test vectors from test/fixtures/bson-corpus (copied into
// the repository with its licence and provenance, see its README) so every test can run each case
// through its own path.

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface CorpusValidCase {
  /** `<file>: <description>`, unique across the corpus. */
  name: string;
  file: string;
  description: string;
  /** The canonical BSON bytes of the whole test document. */
  bson: Buffer;
  canonicalExtJson: string;
  relaxedExtJson?: string;
  /** The file marks the BSON type as deprecated (Undefined, DBPointer, Symbol, ...). */
  deprecated: boolean;
  /** The case is marked lossy (its Extended JSON cannot represent the bytes exactly). */
  lossy: boolean;
}

export interface CorpusDecodeError {
  name: string;
  file: string;
  description: string;
  bson: Buffer;
}

export const CORPUS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'bson-corpus');

interface CorpusFile {
  description: string;
  deprecated?: boolean;
  valid?: Array<{ description: string; canonical_bson: string; canonical_extjson: string; relaxed_extjson?: string; lossy?: boolean }>;
  decodeErrors?: Array<{ description: string; bson: string }>;
}

function corpusFiles(): Array<{ file: string; content: CorpusFile }> {
  let names: string[];
  try {
    names = readdirSync(CORPUS_DIR)
      .filter((n) => n.endsWith('.json'))
      .sort();
  } catch (cause) {
    throw new Error(
      `BSON corpus not found at ${CORPUS_DIR}; it is part of the repository (test/fixtures/bson-corpus); restore it with git checkout`,
      { cause },
    );
  }
  return names.map((file) => ({ file, content: JSON.parse(readFileSync(path.join(CORPUS_DIR, file), 'utf8')) as CorpusFile }));
}

/** Every `valid[]` case of every corpus file, in file order. */
export function corpusValidCases(): CorpusValidCase[] {
  return corpusFiles().flatMap(({ file, content }) =>
    (content.valid ?? []).map((c) => ({
      name: `${file}: ${c.description}`,
      file,
      description: c.description,
      bson: Buffer.from(c.canonical_bson, 'hex'),
      canonicalExtJson: c.canonical_extjson,
      relaxedExtJson: c.relaxed_extjson,
      deprecated: content.deprecated === true,
      lossy: c.lossy === true,
    })),
  );
}

/** Every `decodeErrors[]` case: bytes a BSON decoder must reject. */
export function corpusDecodeErrors(): CorpusDecodeError[] {
  return corpusFiles().flatMap(({ file, content }) =>
    (content.decodeErrors ?? []).map((c) => ({
      name: `${file}: ${c.description}`,
      file,
      description: c.description,
      bson: Buffer.from(c.bson, 'hex'),
    })),
  );
}

/**
 * `doc` with one element prepended: `_id` set to the int32 `id`. Corpus documents carry no `_id`
 * (MongoDB adds one to every stored document); this makes them storable without touching the bytes
 * of the case itself.
 */
export function withInt32Id(doc: Buffer, id: number): Buffer {
  const element = Buffer.alloc(1 + 4 + 4);
  element[0] = 0x10;
  element.write('_id\0', 1, 'latin1');
  element.writeInt32LE(id, 5);
  return prependElements(doc, element);
}

/**
 * The document whose `_id` is the value of `doc`'s first element (same bytes, key renamed), followed
 * by the rest of `doc`: lets a test key a document by every BSON value the corpus holds.
 */
export function firstElementAsId(doc: Buffer): Buffer {
  const keyEnd = doc.indexOf(0, 5);
  const renamed = Buffer.concat([doc.subarray(0, 5), Buffer.from('_id', 'latin1'), doc.subarray(keyEnd)]);
  renamed.writeInt32LE(renamed.length, 0);
  return renamed;
}

function prependElements(doc: Buffer, elements: Buffer): Buffer {
  const out = Buffer.concat([doc.subarray(0, 4), elements, doc.subarray(4)]);
  out.writeInt32LE(out.length, 0);
  return out;
}
