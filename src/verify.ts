/**
 * Checks on a restored branch: does it hold, exactly, what its manifest says the backup stored?
 *
 * Every number is recomputed from the restored rows; nothing the backup wrote about its data is
 * trusted except as the expectation to compare against:
 * - manifest: the run exists on the branch and completed;
 * - per collection: the table exists with the stored columns and types; its row count, byte total
 *   and content hash (the sum of sha256(bson), computed from the bytes: here during the full pass,
 *   by Postgres for a sample) equal the manifest's; every row's `hash` equals sha256(`bson`) (all
 *   rows, in the same scan);
 * - per row (all rows for `verify: full`, a random sample for `sample`), in this process: the
 *   bytes parse as BSON, the `_id` column is the document's `_id`, and the `doc` column equals the
 *   query form rebuilt from the bytes (as the text PostgreSQL prints for both; a row whose text
 *   differs is compared by Postgres as jsonb, so numbers compare exactly), and (full) every row of
 *   the table was read and compared.
 * Every column is read once, in one COPY TO per table, with backpressure: memory stays flat. Two
 * tables are read at once, each on its own connection, so Postgres prints one table's jsonb while
 * this process checks the other's rows.
 */
import { hash as oneShotHash } from 'node:crypto';
import pg from 'pg';
import { type MongoClient } from 'mongodb';
import { assertUtf8Text, ContentHash, idKey, queryJson, queryJsonbText, queryJsonbTextMatches, ROW_COLUMNS } from './codec.js';
import { copyOut } from './copy-streams.js';
import { readManifest, type CollectionRecord, type Manifest } from './manifest.js';
import { quoteIdent } from './naming.js';
import type { Logger } from './io.js';
import { logCheck, type Check } from './report.js';

export interface VerifyOptions {
  /** The run whose manifest to check (the backup branch's `run-id` annotation); else the newest completed. */
  runId?: string;
  mode: 'full' | 'sample';
  sampleSize: number;
  log: Logger;
}

export interface VerifyReport {
  manifest?: Manifest;
  checks: Check[];
  /** Collections with a table that were checked (views are recorded, not stored). */
  collections: number;
  /** Rows counted in those tables. */
  documents: number;
  /** Restored row count per `db.collection`, for comparing with the source. */
  counts: Map<string, number>;
}

const EXPECTED_COLUMNS: Record<string, string> = Object.fromEntries(ROW_COLUMNS.map((c) => [c.name, c.type]));
const COLUMNS_TEXT = ROW_COLUMNS.map((c) => `${c.name} ${c.type}`).join(', ');
const EXAMPLES = 3;

export function label(c: Pick<CollectionRecord, 'database' | 'collection'>): string {
  return `${c.database}.${c.collection}`;
}

export async function verifyBackup(client: pg.Client, opts: VerifyOptions): Promise<VerifyReport> {
  const report: VerifyReport = { checks: [], collections: 0, documents: 0, counts: new Map() };
  const add = (r: Check) => {
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

  await opts.log.group(`Verifying ${stored.length} collection(s), up to ${COLLECTIONS_AT_ONCE} at once`, () =>
    verifyCollections(client, manifest.collections, opts, add, report),
  );
  return report;
}

/**
 * Collections verified at the same time, each on a connection of its own. One pass is mostly this
 * process checking rows while Postgres waits, another mostly Postgres printing jsonb (large
 * documents) while this process waits; two at once keep both busy. Each table is still read by
 * one COPY on one connection.
 */
const COLLECTIONS_AT_ONCE = 2;

/**
 * Verifies every collection of the manifest, up to COLLECTIONS_AT_ONCE at a time: the branch
 * connection takes one, a second connection to the branch (opened with the same settings) the
 * next, and so on. The checks are reported in manifest order whatever order the passes end in.
 * When no second connection can be opened, the branch connection verifies them all, one by one.
 */
async function verifyCollections(
  client: pg.Client,
  collections: readonly CollectionRecord[],
  opts: VerifyOptions,
  add: (r: Check) => void,
  report: VerifyReport,
): Promise<void> {
  const results: (Check[] | undefined)[] = collections.map(() => undefined);
  let reported = 0;
  const reportReady = () => {
    for (; reported < collections.length && results[reported]; reported++) for (const r of results[reported] ?? []) add(r);
  };
  let next = 0;
  /** Verifies collections one after another until none is left (or its own connection cannot be had). */
  const lane = async (scan: pg.Client | SecondConnection, recheck: SecondConnection): Promise<void> => {
    for (;;) {
      let connection: pg.Client;
      try {
        connection = scan instanceof SecondConnection ? await scan.open() : scan;
      } catch (e) {
        opts.log.debug(`verifying the remaining collections on the other connection(s): ${(e as Error).message}`);
        return;
      }
      const i = next++;
      if (i >= collections.length) return;
      const c = collections[i];
      const checks: Check[] = [];
      if (c.kind === 'view') {
        checks.push({
          subject: label(c),
          check: 'view recorded',
          status: 'pass',
          detail: 'views are recorded in the manifest, not stored as tables',
        });
      } else {
        try {
          await verifyCollection(connection, recheck, c, opts, (r) => checks.push(r), report);
        } catch (e) {
          // A check that cannot run is a failed check of this collection, not an anonymous crash;
          // a second connection that failed is replaced for the next collection.
          if (scan instanceof SecondConnection) await scan.reset();
          checks.push({
            subject: label(c),
            check: 'checks could run',
            status: 'fail',
            detail: `verification stopped: ${(e as Error).message}`,
          });
        }
      }
      results[i] = checks;
      reportReady();
    }
  };
  const rechecks = Array.from(
    { length: COLLECTIONS_AT_ONCE },
    () => new SecondConnection(client, 'the jsonb comparison of differing rows'),
  );
  const scans = Array.from({ length: COLLECTIONS_AT_ONCE - 1 }, () => new SecondConnection(client, 'verifying collections in parallel'));
  try {
    await Promise.all([lane(client, rechecks[0]), ...scans.map((scan, k) => lane(scan, rechecks[k + 1]))]);
  } finally {
    await Promise.all([...rechecks, ...scans].map((c) => c.reset()));
  }
}

async function verifyCollection(
  client: pg.Client,
  second: SecondConnection,
  c: CollectionRecord,
  opts: VerifyOptions,
  add: (r: Check) => void,
  report: VerifyReport,
): Promise<void> {
  const subject = label(c);
  const relation = `${quoteIdent(c.schemaName)}.${quoteIdent(c.tableName)}`;

  const columnProblem = await tableProblem(client, relation);
  if (columnProblem) {
    add({ subject, check: 'table and columns', status: 'fail', detail: `${relation}: ${columnProblem}` });
    return;
  }
  add({ subject, check: 'table and columns', status: 'pass', detail: `${relation} (${COLUMNS_TEXT})` });
  report.collections++;

  // A full pass reads every row anyway, so it also yields the totals; a sample needs Postgres to scan.
  const sample = opts.mode === 'sample' ? opts.sampleSize : undefined;
  let rows: RowCheck;
  let totals: Totals;
  try {
    if (sample === undefined) {
      rows = await checkRows(client, second, relation, undefined);
      totals = {
        rows: rows.checked,
        bytes: rows.content.bytes,
        contentHash: rows.content.digest(),
        badHashRows: rows.badHash.count,
        ...(rows.badHash.examples.length > 0 ? { badHashExample: rows.badHash.examples[0] } : {}),
      };
    } else {
      totals = await tableTotals(client, relation);
      rows = await checkRows(client, second, relation, sample);
    }
  } catch (e) {
    await second.reset();
    throw e;
  }
  report.documents += totals.rows;
  report.counts.set(subject, totals.rows);
  add({
    subject,
    check: 'row count',
    status: totals.rows === c.documents ? 'pass' : 'fail',
    detail:
      `${totals.rows} rows restored, manifest says ${c.documents}` +
      (totals.bytes === c.bsonBytes ? '' : `; ${totals.bytes} BSON bytes, manifest says ${c.bsonBytes}`),
  });
  add({
    subject,
    check: 'content hash',
    status: totals.contentHash === c.contentHash ? 'pass' : 'fail',
    detail:
      totals.contentHash === c.contentHash
        ? `recomputed ${short(totals.contentHash)} = manifest`
        : `recomputed ${totals.contentHash}, manifest says ${c.contentHash}`,
  });
  add({
    subject,
    check: 'hash column = sha256(bson)',
    status: totals.badHashRows === 0 ? 'pass' : 'fail',
    detail:
      totals.badHashRows === 0
        ? `all ${totals.rows} rows`
        : `${totals.badHashRows} of ${totals.rows} rows differ (e.g. _id ${totals.badHashExample})`,
  });

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
    status: rows.badDoc.count + rows.missing.count + rows.extra.count === 0 ? 'pass' : 'fail',
    detail:
      rows.badDoc.count + rows.missing.count + rows.extra.count === 0
        ? scope
        : `${scope}: ${describeBad([
            ['doc differs from the rebuilt document', rows.badDoc],
            ['read but then not found in the table', rows.missing],
            ['in the table but not read by the check', rows.extra],
          ])}`,
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
    .map(([name, type]) =>
      actual.has(name) ? `column ${name} is ${actual.get(name)}, expected ${type}` : `column ${name} (${type}) missing`,
    );
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
  const limbs = Array.from(
    { length: 8 },
    (_, i) => `coalesce(sum(('x' || encode(substring(h from ${i * 4 + 1} for 4), 'hex'))::bit(32)::bigint), 0)::text AS l${i}`,
  );
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
  /** Rows, bytes and content hash of the rows read, from sha256 of their bytes computed here. */
  content: ContentHash;
  badBson: Bad;
  badId: Bad;
  badHash: Bad;
  badDoc: Bad;
  /** Rows read by the pass that the comparison did not find in the table. */
  missing: Bad;
  /** Rows of the table the pass did not read (full mode only). */
  extra: Bad;
}

/**
 * The per-row pass: one COPY TO of the rows (`_id, doc, bson, hash`; every row, or `sample`
 * random rows), each checked here as it arrives, so every column is read once, in one scan, as a
 * plain scan reads it. The `doc` column arrives as the text PostgreSQL prints for the jsonb value;
 * the query form's jsonb text is written from the bytes (queryJsonbText: what PostgreSQL would
 * print for the query form) and the two compared. Equal text is equal jsonb; a row whose text differs is
 * handed to PostgreSQL to compare as jsonb (numbers compare exactly, so `1.0` and `1.00` are the
 * same), on a second connection opened only then, and only the rows Postgres finds different fail.
 * A full pass reads the table itself in one statement, so the rows checked are exactly the
 * table's rows: none can be missed, none checked that the table does not hold.
 * Backpressure runs end to end: memory holds a few chunks and a bounded batch of rows to
 * compare, not the collection.
 */
async function checkRows(client: pg.Client, second: SecondConnection, relation: string, sample: number | undefined): Promise<RowCheck> {
  const out: RowCheck = {
    checked: 0,
    content: new ContentHash(),
    badBson: bad(),
    badId: bad(),
    badHash: bad(),
    badDoc: bad(),
    missing: bad(),
    extra: bad(),
  };
  const source =
    sample === undefined
      ? `SELECT _id, doc, bson, hash FROM ${relation}`
      : // Only the ids are sorted at random (small), then the sampled rows are read.
        `SELECT _id, doc, bson, hash FROM ${relation} WHERE _id IN (SELECT _id FROM ${relation} ORDER BY random() LIMIT ${Math.max(1, Math.floor(sample))})`;
  const recheck = new JsonbRecheck(second, relation, out);
  for await (const row of copyOut(client, source)) {
    const differs = checkRow(row, out);
    if (differs) await recheck.add(differs.id, differs.q);
  }
  await recheck.flush();
  return out;
}

/**
 * Checks one row as it arrives: sha256 of its bytes (for the hash column and the content hash),
 * the bytes valid BSON, the `_id` column the document's `_id`, and the `doc` column's text equal
 * to the rebuilt query form's jsonb text. Answers the row (its `_id` and rebuilt query form) when
 * the texts differ, for PostgreSQL to compare as jsonb.
 */
function checkRow([idField, doc, bson, hash]: (Buffer | null)[], out: RowCheck): { id: string; q: string } | undefined {
  out.checked++;
  // One call per row: the one-shot hash skips the Hash object a createHash chain makes.
  const digest = bson === null ? undefined : oneShotHash('sha256', bson, 'buffer');
  if (bson !== null && digest) out.content.add(digest, bson.length);
  if (idField === null) {
    note(out.badId, '(NULL)');
    return undefined;
  }
  const id = idField.toString('utf8');
  if (!digest || hash === null || !digest.equals(hash)) note(out.badHash, id);
  // jsonb's binary form is a version byte (1) and then the text PostgreSQL prints.
  const jsonbBinary = doc !== null && doc[0] === 1;
  let same: boolean;
  let rebuilt: string | undefined;
  try {
    if (bson === null) throw new Error('no bytes');
    // The jsonb text of the query form is written as bytes and compared with the bytes PostgreSQL
    // sent (no strings); only a row whose bytes differ has its text rebuilt as a string, so that
    // text that is not valid UTF-8 compares as queryJsonbText shows it. Both walk every element
    // the way queryJson frames it, as the driver's deserializer would; assertUtf8Text adds the one
    // check they leave out (text is valid UTF-8) over the whole document, so together they prove
    // the bytes are valid BSON.
    same = jsonbBinary && queryJsonbTextMatches(bson, doc, 1);
    if (!same) rebuilt = queryJsonbText(bson);
    assertUtf8Text(bson);
    if (idKey(bson) !== id) note(out.badId, id);
  } catch {
    note(out.badBson, id);
    return undefined;
  }
  if (doc === null) {
    note(out.badDoc, id);
    return undefined;
  }
  if (same || (jsonbBinary && doc.toString('utf8', 1) === rebuilt)) return undefined;
  return { id, q: queryJson(bson) };
}

/** Rows held for one PostgreSQL comparison at most (and about this many bytes of rebuilt text). */
const RECHECK_ROWS = 500;
const RECHECK_BYTES = 4 * 1024 * 1024;

/**
 * The rows whose `doc` text differs from the rebuilt form's, compared by PostgreSQL as jsonb in
 * batches (bounded memory) on the second connection while the pass goes on: a row is a finding
 * only if the jsonb values differ, or if the table does not hold its `_id`.
 */
class JsonbRecheck {
  private ids: string[] = [];
  private forms: string[] = [];
  private bytes = 0;

  constructor(
    private readonly second: SecondConnection,
    private readonly relation: string,
    private readonly out: RowCheck,
  ) {}

  async add(id: string, q: string): Promise<void> {
    this.ids.push(id);
    this.forms.push(q);
    this.bytes += q.length;
    if (this.ids.length >= RECHECK_ROWS || this.bytes >= RECHECK_BYTES) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.ids.length === 0) return;
    const ids = this.ids;
    const forms = this.forms;
    this.ids = [];
    this.forms = [];
    this.bytes = 0;
    const client = await this.second.open();
    const r = await client.query<{ id: string; missing: boolean }>(
      `SELECT v.id, t._id IS NULL AS missing
         FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS v(id, q, n)
         LEFT JOIN ${this.relation} t ON t._id = v.id
        WHERE t._id IS NULL OR t.doc IS DISTINCT FROM v.q::jsonb
        ORDER BY v.n`,
      [ids, forms],
    );
    for (const row of r.rows) note(row.missing ? this.out.missing : this.out.badDoc, row.id);
  }
}

/**
 * Another connection to the branch (one compares differing rows, another verifies a collection
 * alongside the branch connection), opened on first use with the branch connection's own settings
 * (same endpoint, role and verified TLS), and reused for every collection. After a failure it is
 * closed, so the next collection starts on a fresh one.
 */
class SecondConnection {
  private connection: pg.Client | undefined;

  /** @param purpose what the connection is for, as error messages name it */
  constructor(
    private readonly client: pg.Client,
    private readonly purpose: string,
  ) {}

  async open(): Promise<pg.Client> {
    if (this.connection) return this.connection;
    const c = this.client;
    const ssl = c.ssl as unknown;
    // Never a weaker connection than the one it copies: refuse rather than connect without verified TLS.
    if (typeof ssl !== 'object' || ssl === null || (ssl as { rejectUnauthorized?: unknown }).rejectUnauthorized !== true) {
      throw new Error(`the branch connection does not verify TLS, so no second connection is opened for ${this.purpose}`);
    }
    const second = new pg.Client({
      host: c.host,
      port: c.port,
      user: c.user,
      password: c.password,
      database: c.database,
      ssl: ssl as pg.ClientConfig['ssl'],
      application_name: 'supaneon-sync verify',
      // Bounded like the first connection (postgres.ts): an endpoint that never answers fails the check.
      connectionTimeoutMillis: 15_000,
      statement_timeout: 0,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    second.on('error', () => undefined); // a dropped connection fails the query that was running
    try {
      await second.connect();
      await second.query('SET default_transaction_read_only = on');
    } catch (e) {
      await second.end().catch(() => undefined);
      throw new Error(`cannot open a second connection to the branch for ${this.purpose}: ${(e as Error).message}`, { cause: e });
    }
    this.connection = second;
    return second;
  }

  async reset(): Promise<void> {
    const w = this.connection;
    this.connection = undefined;
    await w?.end().catch(() => undefined);
  }
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
export async function runUserCheck(client: pg.Client, sql: string, index: number): Promise<Check> {
  const subject = `(user check ${index + 1})`;
  const shown = sql.length > 120 ? `${sql.slice(0, 117)}...` : sql;
  await client.query('BEGIN READ ONLY');
  try {
    const r = await client.query({ text: sql, rowMode: 'array' });
    const ok = r.rows.length === 1 && r.rows[0].length === 1 && r.rows[0][0] === true;
    const got =
      r.rows.length !== 1 ? `${r.rows.length} rows` : r.rows[0].length !== 1 ? `${r.rows[0].length} columns` : JSON.stringify(r.rows[0][0]);
    return {
      subject,
      check: shown,
      status: ok ? 'pass' : 'fail',
      detail: ok ? 'returned true' : `returned ${got}; a check must return one row with a single true`,
    };
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
): Promise<Check[]> {
  const out: Check[] = [];
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
      detail:
        live === rows
          ? `${live} documents in MongoDB = restored`
          : `MongoDB now has ${live} documents, the backup ${rows} (changed since the backup)`,
    });
  }
  return out;
}
