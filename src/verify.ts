/**
 * Checks on a restored branch: does it hold, exactly, what its manifest says the backup stored?
 *
 * Every number is recomputed from the restored rows; nothing the backup wrote about its data is
 * trusted except as the expectation to compare against:
 * - manifest: the run exists on the branch and completed;
 * - per collection: the table exists with the stored columns and types; its row count, byte total
 *   and content hash (the sum of sha256(bson), computed by Postgres from the bytes) equal the
 *   manifest's; every row's `hash` equals sha256(`bson`) (all rows, in the same scan);
 * - per row (all rows for `verify: full`, a random sample for `sample`), in this process: the
 *   bytes parse as BSON, the `_id` column is the document's `_id`, and the `doc` column equals the
 *   query form rebuilt from the bytes (compared by Postgres as jsonb, so numbers compare exactly).
 * Rows are read through a server-side cursor in slices bounded by bytes: memory stays flat.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { BSON, type MongoClient } from 'mongodb';
import { idKey, queryJson } from './codec.js';
import { readManifest, type CollectionRecord, type Manifest } from './manifest.js';
import { quoteIdent } from './naming.js';
import type { Logger } from './io.js';

export type CheckStatus = 'pass' | 'fail' | 'notice';

export interface CheckResult {
  /** `db.collection`, or a label such as `(manifest)` / `(user check 2)`. */
  subject: string;
  check: string;
  status: CheckStatus;
  /** The numbers behind the verdict, or what went wrong. */
  detail: string;
}

export interface VerifyOptions {
  /** The run whose manifest to check (the backup branch's `run-id` annotation); else the newest completed. */
  runId?: string;
  mode: 'full' | 'sample';
  sampleSize: number;
  batchSize: number;
  log: Logger;
}

export interface VerifyReport {
  manifest?: Manifest;
  checks: CheckResult[];
  /** Collections with a table that were checked (views are recorded, not stored). */
  collections: number;
  /** Rows counted in those tables. */
  documents: number;
  /** Restored row count per `db.collection`, for comparing with the source. */
  counts: Map<string, number>;
}

const EXPECTED_COLUMNS: Record<string, string> = { _id: 'text', doc: 'jsonb', bson: 'bytea', hash: 'bytea' };
const FETCH_TARGET_BYTES = 8 * 1024 * 1024;
const EXAMPLES = 3;
const CURSOR = 'supaneon_verify_rows';

/** One log line per check: failures as errors, notices as warnings. */
export function logCheck(log: Logger, r: CheckResult): void {
  const line = `${r.status === 'pass' ? 'PASS' : r.status === 'fail' ? 'FAIL' : 'NOTE'} ${r.subject}: ${r.check}: ${r.detail}`;
  if (r.status === 'fail') log.error(line);
  else if (r.status === 'notice') log.warn(line);
  else log.info(line);
}

export function label(c: Pick<CollectionRecord, 'database' | 'collection'>): string {
  return `${c.database}.${c.collection}`;
}

export async function verifyBackup(client: pg.Client, opts: VerifyOptions): Promise<VerifyReport> {
  const report: VerifyReport = { checks: [], collections: 0, documents: 0, counts: new Map() };
  const add = (r: CheckResult) => {
    report.checks.push(r);
    logCheck(opts.log, r);
  };

  let manifest: Manifest;
  try {
    manifest = await readManifest(client, opts.runId);
  } catch (e) {
    add({ subject: '(manifest)', check: 'manifest exists', status: 'fail', detail: (e as Error).message });
    return report;
  }
  report.manifest = manifest;
  const run = manifest.backup;
  if (run.status !== 'completed') {
    add({
      subject: '(manifest)',
      check: 'backup completed',
      status: 'fail',
      detail:
        `backup run ${run.runId} (started ${run.startedAt.toISOString()}) has status "${run.status}": it never committed, ` +
        'so this branch does not hold a complete backup; verify another backup branch',
    });
    return report;
  }
  const stored = manifest.collections.filter((c) => c.kind !== 'view');
  add({
    subject: '(manifest)',
    check: 'backup completed',
    status: 'pass',
    detail: `run ${run.runId}, finished ${run.finishedAt?.toISOString() ?? '?'}, ${stored.length} collection(s), consistency ${run.consistency ?? 'unknown'}`,
  });

  for (const c of manifest.collections) {
    if (c.kind === 'view') {
      add({ subject: label(c), check: 'view recorded', status: 'pass', detail: 'views are recorded in the manifest, not stored as tables' });
      continue;
    }
    await opts.log.group(`Verifying ${label(c)}`, async () => {
      try {
        await verifyCollection(client, c, opts, add, report);
      } catch (e) {
        // A check that cannot run is a failed check of this collection, not an anonymous crash.
        add({ subject: label(c), check: 'checks could run', status: 'fail', detail: `verification stopped: ${(e as Error).message}` });
      }
    });
  }
  return report;
}

async function verifyCollection(
  client: pg.Client,
  c: CollectionRecord,
  opts: VerifyOptions,
  add: (r: CheckResult) => void,
  report: VerifyReport,
): Promise<void> {
  const subject = label(c);
  const relation = `${quoteIdent(c.schemaName)}.${quoteIdent(c.tableName)}`;

  const columnProblem = await tableProblem(client, relation);
  if (columnProblem) {
    add({ subject, check: 'table and columns', status: 'fail', detail: `${relation}: ${columnProblem}` });
    return;
  }
  add({ subject, check: 'table and columns', status: 'pass', detail: `${relation} (_id text, doc jsonb, bson bytea, hash bytea)` });
  report.collections++;

  const totals = await tableTotals(client, relation);
  report.documents += totals.rows;
  report.counts.set(subject, totals.rows);
  add({
    subject,
    check: 'row count',
    status: totals.rows === c.documents ? 'pass' : 'fail',
    detail: `${totals.rows} rows restored, manifest says ${c.documents}` + (totals.bytes === c.bsonBytes ? '' : `; ${totals.bytes} BSON bytes, manifest says ${c.bsonBytes}`),
  });
  add({
    subject,
    check: 'content hash',
    status: totals.contentHash === c.contentHash ? 'pass' : 'fail',
    detail: totals.contentHash === c.contentHash ? `recomputed ${short(totals.contentHash)} = manifest` : `recomputed ${totals.contentHash}, manifest says ${c.contentHash}`,
  });
  add({
    subject,
    check: 'hash column = sha256(bson)',
    status: totals.badHashRows === 0 ? 'pass' : 'fail',
    detail: totals.badHashRows === 0 ? `all ${totals.rows} rows` : `${totals.badHashRows} of ${totals.rows} rows differ (e.g. _id ${totals.badHashExample})`,
  });

  const rows = await checkRows(client, relation, opts.mode === 'sample' ? opts.sampleSize : undefined, opts.batchSize);
  const scope = opts.mode === 'sample' ? `random sample of ${rows.checked} of ${totals.rows} rows` : `all ${rows.checked} rows`;
  const rowsOk = rows.badBson.count === 0 && rows.badId.count === 0 && rows.badHash.count === 0;
  add({
    subject,
    check: 'documents rebuild (BSON, _id, hash)',
    status: rowsOk ? 'pass' : 'fail',
    detail: rowsOk
      ? scope
      : `${scope}: ${describeBad([
          ['not valid BSON', rows.badBson],
          ['_id column differs from the document', rows.badId],
          ['sha256(bson) differs from hash', rows.badHash],
        ])}`,
  });
  add({
    subject,
    check: 'jsonb agrees with the document',
    status: rows.badDoc.count === 0 ? 'pass' : 'fail',
    detail: rows.badDoc.count === 0 ? scope : `${scope}: ${describeBad([['doc differs from the rebuilt document', rows.badDoc]])}`,
  });
}

/** Undefined when the table exists with the stored columns and types; else what is wrong. */
async function tableProblem(client: pg.Client, relation: string): Promise<string | undefined> {
  const exists = await client.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [relation]);
  if (!exists.rows[0].present) return 'table missing';
  const r = await client.query<{ attname: string; type: string }>(
    `SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type
       FROM pg_attribute a
      WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`,
    [relation],
  );
  const actual = new Map(r.rows.map((row) => [row.attname, row.type]));
  const problems = Object.entries(EXPECTED_COLUMNS)
    .filter(([name, type]) => actual.get(name) !== type)
    .map(([name, type]) => (actual.has(name) ? `column ${name} is ${actual.get(name)}, expected ${type}` : `column ${name} (${type}) missing`));
  return problems.length > 0 ? problems.join('; ') : undefined;
}

interface Totals {
  rows: number;
  bytes: number;
  contentHash: string;
  badHashRows: number;
  badHashExample?: string;
}

/**
 * One scan by Postgres: count, bytes, the content hash from sha256 of every row's bytes (summed
 * as eight 32-bit limbs, carried here), and rows whose hash column disagrees.
 */
async function tableTotals(client: pg.Client, relation: string): Promise<Totals> {
  const limbs = Array.from({ length: 8 }, (_, i) => `coalesce(sum(('x' || encode(substring(h from ${i * 4 + 1} for 4), 'hex'))::bit(32)::bigint), 0)::text AS l${i}`);
  const r = await client.query(
    `SELECT count(*)::text AS rows, coalesce(sum(length(bson)), 0)::text AS bytes,
            count(*) FILTER (WHERE h IS DISTINCT FROM hash)::text AS bad,
            min(_id) FILTER (WHERE h IS DISTINCT FROM hash) AS bad_example,
            ${limbs.join(',\n            ')}
       FROM (SELECT _id, hash, bson, sha256(bson) AS h FROM ${relation}) s`,
  );
  const row = r.rows[0] as Record<string, string | null>;
  let sum = 0n;
  for (let i = 0; i < 8; i++) sum += BigInt(row[`l${i}`] as string) << BigInt(32 * (7 - i));
  const contentHash = (sum & ((1n << 256n) - 1n)).toString(16).padStart(64, '0');
  return {
    rows: Number(row.rows),
    bytes: Number(row.bytes),
    contentHash,
    badHashRows: Number(row.bad),
    ...(row.bad_example !== null ? { badHashExample: row.bad_example } : {}),
  };
}

interface Bad {
  count: number;
  examples: string[];
}

interface RowCheck {
  checked: number;
  badBson: Bad;
  badId: Bad;
  badHash: Bad;
  badDoc: Bad;
}

/**
 * Reads `_id, bson, hash` through a cursor (every row, or `sample` random rows) and checks each
 * row here; each slice's rebuilt query JSON goes back to Postgres to be compared as jsonb.
 */
async function checkRows(client: pg.Client, relation: string, sample: number | undefined, batchSize: number): Promise<RowCheck> {
  const out: RowCheck = { checked: 0, badBson: bad(), badId: bad(), badHash: bad(), badDoc: bad() };
  const source =
    sample === undefined
      ? `SELECT _id, bson, hash FROM ${relation}`
      : // Only the ids are sorted at random (small), then the sampled rows are read.
        `SELECT _id, bson, hash FROM ${relation} WHERE _id IN (SELECT _id FROM ${relation} ORDER BY random() LIMIT ${Math.max(1, Math.floor(sample))})`;
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    await client.query(`DECLARE ${CURSOR} NO SCROLL CURSOR FOR ${source}`);
    // Start small (documents may be up to 16 MiB each), then size slices by the bytes seen.
    const maxRows = Math.max(1, Math.min(batchSize, 1000));
    let fetchRows = Math.min(maxRows, 10);
    for (;;) {
      const result = await client.query<{ _id: string; bson: Buffer; hash: Buffer }>(`FETCH FORWARD ${fetchRows} FROM ${CURSOR}`);
      if (result.rows.length === 0) break;
      const ids: string[] = [];
      const docs: string[] = [];
      let bytes = 0;
      for (const row of result.rows) {
        out.checked++;
        bytes += row.bson.length;
        if (!createHash('sha256').update(row.bson).digest().equals(row.hash)) note(out.badHash, row._id);
        let rebuilt: string;
        try {
          BSON.deserialize(row.bson);
          if (idKey(row.bson) !== row._id) note(out.badId, row._id);
          rebuilt = queryJson(row.bson);
        } catch {
          note(out.badBson, row._id);
          continue;
        }
        ids.push(row._id);
        docs.push(rebuilt);
      }
      if (ids.length > 0) {
        const mismatched = await client.query<{ id: string }>(
          `SELECT v.id FROM unnest($1::text[], $2::text[]) AS v(id, q)
             JOIN ${relation} t ON t._id = v.id
            WHERE t.doc IS DISTINCT FROM v.q::jsonb`,
          [ids, docs],
        );
        for (const m of mismatched.rows) note(out.badDoc, m.id);
      }
      const average = Math.max(1, bytes / result.rows.length);
      fetchRows = Math.max(1, Math.min(maxRows, Math.floor(FETCH_TARGET_BYTES / average)));
    }
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
  }
  return out;
}

function bad(): Bad {
  return { count: 0, examples: [] };
}

function note(b: Bad, id: string): void {
  b.count++;
  if (b.examples.length < EXAMPLES) b.examples.push(id);
}

function describeBad(kinds: [string, Bad][]): string {
  return kinds
    .filter(([, b]) => b.count > 0)
    .map(([what, b]) => `${b.count} row(s) ${what} (e.g. _id ${b.examples.map(clip).join(', ')})`)
    .join('; ');
}

function clip(id: string): string {
  return id.length > 80 ? `${id.slice(0, 77)}...` : id;
}

function short(hash: string): string {
  return `${hash.slice(0, 12)}…`;
}

/**
 * A user check: one SQL query that must return exactly one row with one column holding `true`.
 * Run read-only, so a check cannot change the branch it judges.
 */
export async function runUserCheck(client: pg.Client, sql: string, index: number): Promise<CheckResult> {
  const subject = `(user check ${index + 1})`;
  const shown = sql.length > 120 ? `${sql.slice(0, 117)}...` : sql;
  await client.query('BEGIN READ ONLY');
  try {
    const r = await client.query({ text: sql, rowMode: 'array' });
    const ok = r.rows.length === 1 && r.rows[0].length === 1 && r.rows[0][0] === true;
    const got = r.rows.length !== 1 ? `${r.rows.length} rows` : r.rows[0].length !== 1 ? `${r.rows[0].length} columns` : JSON.stringify(r.rows[0][0]);
    return { subject, check: shown, status: ok ? 'pass' : 'fail', detail: ok ? 'returned true' : `returned ${got}; a check must return one row with a single true` };
  } catch (e) {
    return { subject, check: shown, status: 'fail', detail: `query failed: ${(e as Error).message}` };
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
  }
}

/**
 * Compares restored row counts with the live MongoDB. The source keeps changing after a backup,
 * so a difference is drift to know about (a notice), not a verification failure.
 */
export async function compareSourceCounts(
  mongo: MongoClient,
  collections: readonly CollectionRecord[],
  restored: ReadonlyMap<string, number>,
): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  for (const c of collections) {
    const subject = label(c);
    const rows = restored.get(subject);
    if (c.kind === 'view' || rows === undefined) continue;
    let live: number;
    try {
      live = await mongo.db(c.database).collection(c.collection).countDocuments({});
    } catch (e) {
      out.push({ subject, check: 'source count', status: 'notice', detail: `could not count in MongoDB: ${(e as Error).message}` });
      continue;
    }
    out.push({
      subject,
      check: 'source count',
      status: live === rows ? 'pass' : 'notice',
      detail: live === rows ? `${live} documents in MongoDB = restored` : `MongoDB now has ${live} documents, the backup ${rows} (changed since the backup)`,
    });
  }
  return out;
}
