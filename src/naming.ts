// MongoDB database and collection names -> PostgreSQL schema and table identifiers.
//
// MongoDB allows names PostgreSQL cannot take as they are: longer than its 63-byte identifiers
// (NAMEDATALEN - 1; longer ones are silently truncated, so two collections could land in one
// table), and database names that clash with schemas PostgreSQL or this tool own. The mapping:
//
// - A name is kept exactly as it is when it fits 63 bytes of UTF-8, is not reserved, and does not
//   itself end like a mapped name (`~` + 8 lowercase hex digits).
// - Any other name becomes its longest prefix that fits 54 bytes, cut at a UTF-8 character
//   boundary, + `~` + the first 8 hex digits of sha256(name). Mapped names always end in that
//   suffix and kept names never do, so a kept name never equals a mapped one; two mapped names
//   collide only if their prefixes and 32-bit hashes both agree.
// - Reserved schema names, compared case-insensitively so that look-alikes such as `PG_data` or
//   `Public` are also kept apart from the real ones: `pg_*` (PostgreSQL refuses to create them),
//   `information_schema`, `public` (shared with whatever else lives in the database), and this
//   tool's metadata schema `supaneon_sync`. They are mapped like long names, with a leading `_`
//   (`pg_catalog` -> `_pg_catalog~1a2b3c4d`).
//
// The exact mapping is recorded per collection in the manifest (schema_name, table_name).
//
// Also the names of the Neon branches this tool makes: a prefix and the UTC time to the second.

import { createHash } from 'node:crypto';
import type { NeonApi } from './neon.js';

export const META_SCHEMA = 'supaneon_sync';

/** PostgreSQL identifiers hold at most NAMEDATALEN - 1 = 63 bytes. */
const MAX_IDENTIFIER_BYTES = 63;
const SUFFIX_LENGTH = 9; // '~' + 8 hex digits
const MAPPED_SUFFIX = /~[0-9a-f]{8}$/;
const RESERVED_SCHEMAS = new Set(['information_schema', 'public', META_SCHEMA]);

function isReservedSchema(name: string): boolean {
  const lower = name.toLowerCase();
  return lower.startsWith('pg_') || RESERVED_SCHEMAS.has(lower);
}

/** The longest prefix of `name` that fits `maxBytes` of UTF-8 without splitting a character. */
function utf8Prefix(name: string, maxBytes: number): string {
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length <= maxBytes) return name;
  let cut = maxBytes;
  while (cut > 0 && (bytes[cut] & 0xc0) === 0x80) cut--; // back off continuation bytes
  return bytes.toString('utf8', 0, cut);
}

/** `readable` cut to fit, + '~' + the first 8 hex digits of sha256(name). */
function mapped(name: string, readable = name): string {
  const hash = createHash('sha256').update(name, 'utf8').digest('hex').slice(0, 8);
  return `${utf8Prefix(readable, MAX_IDENTIFIER_BYTES - SUFFIX_LENGTH)}~${hash}`;
}

function checkName(kind: string, name: string): void {
  if (name === '') throw new Error(`MongoDB ${kind} name is empty; MongoDB does not allow empty names`);
  if (name.includes('\0'))
    throw new Error(`MongoDB ${kind} name ${JSON.stringify(name)} contains a NUL character, which no valid MongoDB name has`);
}

function fits(name: string): boolean {
  return Buffer.byteLength(name, 'utf8') <= MAX_IDENTIFIER_BYTES && !MAPPED_SUFFIX.test(name);
}

/** The PostgreSQL schema (unquoted form) holding the tables of MongoDB database `database`. */
export function schemaNameFor(database: string): string {
  checkName('database', database);
  // A reserved name is led by '_' as well: PostgreSQL refuses any schema starting with `pg_`.
  if (isReservedSchema(database)) return mapped(database, `_${database}`);
  return fits(database) ? database : mapped(database);
}

/** The PostgreSQL table (unquoted form) holding MongoDB collection `collection`. */
export function tableNameFor(collection: string): string {
  checkName('collection', collection);
  return fits(collection) ? collection : mapped(collection);
}

/**
 * `name` as a delimited SQL identifier: wrapped in double quotes with inner quotes doubled. Every
 * identifier spliced into SQL goes through here, whatever its origin.
 */
export function quoteIdent(name: string): string {
  if (name === '') throw new Error('cannot quote an empty SQL identifier (PostgreSQL has no zero-length identifiers)');
  if (name.includes('\0')) throw new Error(`cannot quote SQL identifier ${JSON.stringify(name)}: it contains a NUL character`);
  return `"${name.replaceAll('"', '""')}"`;
}

/** `<prefix>YYYYMMDDTHHMMSSZ`: 2026-06-15T12:03:04.567Z -> `<prefix>20260615T120304Z`, every branch this tool makes. */
export function branchName(prefix: string, at: Date): string {
  return `${prefix}${at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z')}`;
}

/**
 * `branchName(prefix, now)` that no branch of the project has yet. Neon refuses duplicate names,
 * and two runs within one second (a retried job, a matrix, tests) would ask for the same one: the
 * later waits for the next second.
 */
export async function freeBranchName(neon: Pick<NeonApi, 'findBranchesByName'>, prefix: string): Promise<string> {
  let name = branchName(prefix, new Date());
  while ((await neon.findBranchesByName(name)).length > 0) {
    await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5));
    name = branchName(prefix, new Date());
  }
  return name;
}
