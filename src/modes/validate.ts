/**
 * mode: validate — checks everything a backup needs, without changing anything:
 *   1. configuration,
 *   2. MongoDB: reachable, credentials, version and topology, databases listed, each selected
 *      collection readable (estimated counts and sizes, each bounded in time); or, with
 *      source-dump-dir, the dump: found, every metadata file parsed, the selected collections' files,
 *   3. Neon API: key and project, the standby branch behind neon-database-url, branch usage
 *      against the plan's limit, this tool's existing backups and, with max-backup-age, the age of
 *      the newest,
 *   4. Neon Postgres: TLS with the certificate verified, and the role can create schemas and
 *      tables (tried inside a transaction that is rolled back).
 * Every check runs and is reported; the three services are checked side by side so an
 * unreachable host costs its timeout once, not once per check.
 */
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { MongoClient } from 'mongodb';
import type pg from 'pg';
import { rowTableColumns } from '../codec.js';
import type { Config } from '../config.js';
import { openDumpDirectory } from '../dump-source.js';
import type { Io, Logger } from '../io.js';
import {
  ESTIMATE_TIMEOUT_MS,
  connectMongo,
  describeMongoUri,
  describeSource,
  estimateDocumentCount,
  listSelectedCollections,
  missingDatabasesMessage,
} from '../mongo.js';
import {
  BACKUP_KIND,
  findStandby,
  neonApiFor,
  TEMPORARY_KIND,
  TOOL_ANNOTATION,
  standbyNotFound,
  type BranchInfo,
  type NeonApi,
} from '../neon.js';
import { backupFreshness } from '../freshness.js';
import { connectPostgres, describePostgresUrl } from '../postgres.js';
import { checkTable, formatBytes, formatDuration, markdownTable, type Check } from '../report.js';
import { branchBudget, FREE_PLAN_BRANCH_LIMIT } from '../retention.js';

type CheckGroup = 'configuration' | 'mongodb' | 'neon-api' | 'postgres';

/** A check of one group; its subject is the group's title. */
interface GroupCheck extends Check {
  group: CheckGroup;
}

/**
 * The `report` output (JSON). Users' workflows read it, so its checks keep the form it was
 * published with: `name` is the check, `ok` a pass, `skipped` a check not attempted.
 */
export interface ValidationReport {
  valid: boolean;
  checks: { group: CheckGroup; name: string; ok: boolean; skipped?: true; detail: string }[];
  collections: CollectionEstimate[];
}

interface CollectionEstimate {
  database: string;
  collection: string;
  kind: string;
  documents?: number;
  bytes?: number;
}

// Each service gets a few seconds per connection attempt; with the three run side by side the
// whole mode stays well under 20 s even when every host is unreachable.
const CONNECT_TIMEOUT_MS = 5_000;
const GROUP_DEADLINE_MS = 15_000;
const REPORT_COLLECTIONS_LIMIT = 1000;

const GROUP_TITLES: Record<CheckGroup, string> = {
  configuration: 'Configuration',
  mongodb: 'MongoDB',
  'neon-api': 'Neon API',
  postgres: 'Neon Postgres',
};

function groupCheck(group: CheckGroup, check: string, status: GroupCheck['status'], detail: string): GroupCheck {
  return { group, subject: GROUP_TITLES[group], check, status, detail };
}

class Checks {
  readonly results: GroupCheck[] = [];
  constructor(readonly group: CheckGroup) {}
  pass(name: string, detail: string): void {
    this.results.push(groupCheck(this.group, name, 'pass', detail));
  }
  fail(name: string, detail: string): void {
    this.results.push(groupCheck(this.group, name, 'fail', detail));
  }
  /** Marks the checks that could not run because an earlier one failed. */
  skip(names: readonly string[], because: string): void {
    for (const name of names) this.results.push(groupCheck(this.group, name, 'skipped', `not checked: ${because}`));
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export async function validate(config: Config, io: Io): Promise<boolean> {
  const started = Date.now();
  const configuration = new Checks('configuration');
  configuration.pass('inputs', describeConfig(config));
  const collections: CollectionEstimate[] = [];

  const [mongodb, neonApi, postgres] = await Promise.all([
    config.sourceDumpDir
      ? withDeadline('mongodb', 'the mongodump directory', () => checkDump(config.sourceDumpDir as string, config, collections))
      : withDeadline('mongodb', 'MongoDB', () => checkMongo(config, collections)),
    withDeadline('neon-api', 'the Neon API', () => checkNeonApi(config, io.log)),
    withDeadline('postgres', 'Neon Postgres', () => checkPostgres(config)),
  ]);
  const checks = [...configuration.results, ...mongodb, ...neonApi, ...postgres];
  return publish(checks, collections, io, (Date.now() - started) / 1000);
}

/**
 * The report of a run whose configuration did not parse: one failed check per problem, the rest
 * not attempted (their inputs cannot be trusted). Returns false.
 */
export async function reportInvalidConfiguration(problems: readonly string[], io: Io): Promise<boolean> {
  const configuration = new Checks('configuration');
  for (const p of problems) configuration.fail('inputs', p);
  await publish(configuration.results, [], io, 0);
  io.log.info('MongoDB, Neon API and Neon Postgres were not checked: fix the configuration first.');
  return false;
}

function describeConfig(config: Config): string {
  const selection = [
    config.databases.length > 0 ? `databases ${config.databases.join(', ')}` : 'every non-system database',
    config.include.length > 0 ? `include ${config.include.join(', ')}` : undefined,
    config.exclude.length > 0 ? `exclude ${config.exclude.join(', ')}` : undefined,
  ]
    .filter(Boolean)
    .join('; ');
  return `project ${config.neonProjectId}; ${selection}; branch prefix '${config.branchPrefix}', retain ${config.retain}`;
}

/** Runs one group's checks; a group that does not finish in time becomes one failed check. */
async function withDeadline(group: CheckGroup, what: string, run: () => Promise<GroupCheck[]>): Promise<GroupCheck[]> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<GroupCheck[]>((resolve) => {
    timer = setTimeout(
      () =>
        resolve([
          groupCheck(
            group,
            'answered in time',
            'fail',
            `${what} did not answer within ${GROUP_DEADLINE_MS / 1000} s: check the host in its input and that this runner can reach it`,
          ),
        ]),
      GROUP_DEADLINE_MS,
    );
  });
  try {
    return await Promise.race([run(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A dump as the source: it is found and every metadata file parses (what openDumpDirectory checks
 * before a backup touches the standby); sizes come from the files. The documents' framing is
 * checked by the backup itself, inside its transaction: reading every file here could outlast the
 * check's deadline on a large dump.
 */
async function checkDump(dir: string, config: Config, collections: CollectionEstimate[]): Promise<GroupCheck[]> {
  const checks = new Checks('mongodb');
  try {
    const dump = await openDumpDirectory(dir, config);
    checks.pass(
      'dump readable',
      `${dump.dir}${dump.serverVersion ? ` (dumped from MongoDB ${dump.serverVersion})` : ''}: every metadata file parses`,
    );
    let bytes = 0;
    for (const c of dump.collections) {
      const size = c.bsonFile ? (await stat(c.bsonFile)).size : undefined;
      bytes += size ?? 0;
      collections.push({
        database: c.spec.database,
        collection: c.spec.collection,
        kind: c.spec.kind,
        ...(size === undefined ? {} : { bytes: size }),
      });
    }
    if (dump.collections.length === 0) {
      checks.pass(
        'read selected collections',
        "no collection of the dump matches the selection: a backup would be empty (check 'databases', 'include' and 'exclude')",
      );
    } else {
      checks.pass(
        'read selected collections',
        `${dump.collections.length} collection${dump.collections.length === 1 ? '' : 's'} in the dump, ${formatBytes(bytes)} of files`,
      );
    }
  } catch (error) {
    checks.fail('dump readable', messageOf(error));
    checks.skip(['read selected collections'], 'the dump cannot be read');
  }
  return checks.results;
}

async function checkMongo(config: Config, collections: CollectionEstimate[]): Promise<GroupCheck[]> {
  const checks = new Checks('mongodb');
  const uri = config.mongodbUri as string; // required for validate by the configuration
  const where = describeMongoUri(uri);
  let client: MongoClient | undefined;
  try {
    try {
      client = await connectMongo(uri, { connectTimeoutMs: CONNECT_TIMEOUT_MS });
      checks.pass('reachable, credentials accepted', `connected to ${where}`);
    } catch (error) {
      checks.fail('reachable, credentials accepted', `${messageOf(error)}`);
      checks.skip(['server version and topology', 'list databases', 'read selected collections'], 'MongoDB is not reachable');
      return checks.results;
    }

    try {
      const source = await describeSource(client, uri);
      const topology =
        source.topology === 'replicaSet'
          ? 'replica set (one snapshot across collections)'
          : source.topology === 'sharded'
            ? 'sharded cluster'
            : 'standalone (each collection read consistently on its own)';
      checks.pass('server version and topology', `MongoDB ${source.serverVersion}, ${topology}`);
    } catch (error) {
      checks.fail('server version and topology', `cannot read hello/buildInfo: ${messageOf(error)}`);
    }

    let databases: string[];
    try {
      const listed = await client.db('admin').admin().listDatabases({ nameOnly: true });
      databases = listed.databases.map((d) => d.name);
      checks.pass('list databases', `${databases.length} database${databases.length === 1 ? '' : 's'} visible`);
    } catch (error) {
      checks.fail(
        'list databases',
        `${messageOf(error)}: grant the user the listDatabases action (e.g. the readAnyDatabase role), or list the databases in the 'databases' input`,
      );
      checks.skip(['read selected collections'], 'the databases cannot be listed');
      return checks.results;
    }
    const missing = config.databases.filter((db) => !databases.includes(db));

    try {
      const specs = await listSelectedCollections(client, config);
      const unreadable: string[] = [];
      for (const spec of specs) {
        const estimate: CollectionEstimate = { database: spec.database, collection: spec.collection, kind: spec.kind };
        collections.push(estimate);
        if (spec.kind === 'view') continue; // views are recorded, not copied: nothing to read
        const coll = client.db(spec.database).collection(spec.collection);
        try {
          await coll.findOne({}, { projection: { _id: 1 } });
          estimate.documents = await estimateDocumentCount(client, spec.database, spec.collection);
        } catch (error) {
          unreadable.push(`${spec.database}.${spec.collection} (${messageOf(error)})`);
          continue;
        }
        estimate.bytes = await collectionBytes(client, spec.database, spec.collection);
      }
      const docs = collections.reduce((n, c) => n + (c.documents ?? 0), 0);
      const bytes = collections.reduce((n, c) => n + (c.bytes ?? 0), 0);
      if (unreadable.length > 0) {
        checks.fail(
          'read selected collections',
          `cannot read ${unreadable.join('; ')}: grant the user read on these databases, or leave them out with 'exclude'`,
        );
      } else if (missing.length > 0) {
        checks.fail('read selected collections', missingDatabasesMessage(missing));
      } else if (specs.length === 0) {
        checks.pass(
          'read selected collections',
          "no collection matches the selection: a backup would be empty (check 'databases', 'include' and 'exclude')",
        );
      } else {
        checks.pass(
          'read selected collections',
          `${specs.length} collection${specs.length === 1 ? '' : 's'} readable, ~${docs.toLocaleString('en-US')} documents, ~${formatBytes(bytes)}`,
        );
      }
    } catch (error) {
      checks.fail('read selected collections', `cannot list collections: ${messageOf(error)}; grant the user listCollections and read`);
    }
    return checks.results;
  } finally {
    await client?.close().catch(() => undefined);
  }
}

/** Uncompressed data size as the server reports it; undefined when the server does not say. */
async function collectionBytes(client: MongoClient, database: string, collection: string): Promise<number | undefined> {
  try {
    const stats = await client.db(database).command({ collStats: collection, maxTimeMS: ESTIMATE_TIMEOUT_MS });
    return typeof stats.size === 'number' ? stats.size : Number(stats.size ?? NaN) || undefined;
  } catch {
    return undefined; // an estimate only: its absence must not fail the check
  }
}

/** The freshness check's name when max-backup-age asks for it. */
function freshnessCheck(config: Config): string[] {
  return config.maxBackupAgeMs === undefined ? [] : ['backup freshness'];
}

async function checkNeonApi(config: Config, log: Logger): Promise<GroupCheck[]> {
  const checks = new Checks('neon-api');
  const neon = neonApiFor(config, log, { requestTimeoutMs: CONNECT_TIMEOUT_MS, retryDeadlineMs: 8_000 });
  let project: Awaited<ReturnType<NeonApi['getProject']>>;
  try {
    project = await neon.getProject();
    checks.pass('API key valid, project exists', `project ${project.id} ("${project.name}")`);
  } catch (error) {
    checks.fail('API key valid, project exists', messageOf(error));
    checks.skip(['standby branch', 'branch usage', 'existing backups', ...freshnessCheck(config)], 'the project cannot be read');
    return checks.results;
  }

  let branches: BranchInfo[];
  try {
    branches = await neon.listBranches();
  } catch (error) {
    checks.fail('branch usage', `cannot list branches: ${messageOf(error)}`);
    checks.skip(['standby branch', 'existing backups', ...freshnessCheck(config)], 'the branches cannot be listed');
    return checks.results;
  }

  try {
    const standby = await findStandby(neon, config);
    if (standby) {
      checks.pass(
        'standby branch',
        `neon-database-url points at branch "${standby.name}" (${standby.id})${standby.isDefault ? ', the default branch' : ''}`,
      );
    } else {
      checks.fail('standby branch', standbyNotFound(config));
    }
  } catch (error) {
    checks.fail('standby branch', messageOf(error));
  }

  // An estimate only: backup never deletes by a guessed limit.
  const limit = project.branchLimit ?? FREE_PLAN_BRANCH_LIMIT;
  const limitNote =
    project.branchLimit === undefined
      ? ` (Neon does not report this project's limit; ${FREE_PLAN_BRANCH_LIMIT}, the free plan's, is assumed here)`
      : '';
  const backups = branches.filter((b) => b.annotations[TOOL_ANNOTATION] === BACKUP_KIND);
  const temporaries = branches.filter((b) => b.annotations[TOOL_ANNOTATION] === TEMPORARY_KIND);
  const others = branches.length - backups.length - temporaries.length;
  // A backup run holds the retained backups plus its new one; a temporary branch adds one more.
  const atRest = branchBudget({ existing: others, needed: config.retain + 2, limit, retain: config.retain });
  const usage =
    `${branches.length} of ${limit} branches used${limitNote} (${backups.length} backup${backups.length === 1 ? '' : 's'} of this tool, ` +
    `${temporaries.length} restore test${temporaries.length === 1 ? '' : 's'}, ${others} other${others === 1 ? '' : 's'})`;
  if (!branchBudget({ existing: others, needed: 1, limit, retain: config.retain }).fits) {
    checks.fail('branch usage', `${usage}: no room for a backup branch; delete unused branches or raise the plan's limit`);
  } else if (!atRest.fits) {
    checks.pass(
      'branch usage',
      `${usage}; note: with retain ${config.retain} the project needs ${atRest.total} branches, and a backup that finds no room refuses rather than delete one of the ${config.retain} kept backups before its replacement exists; lower 'retain' to ${Math.max(1, atRest.retainThatFits)}`,
    );
  } else {
    checks.pass('branch usage', usage);
  }

  const names = backups
    .slice()
    .sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1))
    .map((b) => `${b.name} (${b.id}, ${b.createdAt})`);
  checks.pass('existing backups', names.length === 0 ? 'none yet' : `${names.length}: ${names.join('; ')}`);
  if (config.maxBackupAgeMs !== undefined && config.maxBackupAge !== undefined) {
    try {
      const fresh = await backupFreshness(neon, {
        neonDatabaseUrl: config.neonDatabaseUrl,
        maxAgeMs: config.maxBackupAgeMs,
        maxAgeText: config.maxBackupAge,
      });
      if (fresh.ok) checks.pass('backup freshness', fresh.detail);
      else checks.fail('backup freshness', fresh.detail);
    } catch (error) {
      checks.fail('backup freshness', messageOf(error));
    }
  }
  return checks.results;
}

async function checkPostgres(config: Config): Promise<GroupCheck[]> {
  const checks = new Checks('postgres');
  const where = describePostgresUrl(config.neonDatabaseUrl);
  let client: pg.Client | undefined;
  try {
    try {
      client = await connectPostgres(config.neonDatabaseUrl, {
        applicationName: 'supaneon-sync validate',
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
      });
      const { rows } = await client.query<{ version: string; tls: string | null; role: string }>(
        `SELECT current_setting('server_version') AS version, current_user AS role,
                (SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS tls`,
      );
      const info = rows[0];
      checks.pass(
        'reachable over TLS, certificate verified',
        `${where}: PostgreSQL ${info.version}, role ${info.role}, ${info.tls ?? 'TLS'}`,
      );
    } catch (error) {
      checks.fail('reachable over TLS, certificate verified', messageOf(error));
      checks.skip(['create schemas and tables'], 'Postgres is not reachable');
      return checks.results;
    }

    // A throwaway schema inside a transaction that is always rolled back: proves the privileges a
    // backup needs without leaving anything behind on the standby.
    const schema = `supaneon_sync_validate_${randomBytes(4).toString('hex')}`;
    try {
      await client.query('BEGIN');
      await client.query(`CREATE SCHEMA "${schema}"`);
      await client.query(`CREATE TABLE "${schema}"."probe" (${rowTableColumns('standby')})`);
      await client.query(`INSERT INTO "${schema}"."probe" VALUES ('x', '{}', '\\x00', '\\x00')`);
      checks.pass('create schemas and tables', 'schema, table and row created in a transaction, then rolled back');
    } catch (error) {
      checks.fail(
        'create schemas and tables',
        `${messageOf(error)}: the role in neon-database-url must be able to create schemas in its database (use the database owner role)`,
      );
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
    }
    return checks.results;
  } finally {
    await client?.end().catch(() => undefined);
  }
}

/** Logs, outputs and summarises the checks; returns whether every one passed. */
async function publish(
  checks: readonly GroupCheck[],
  collections: readonly CollectionEstimate[],
  io: Io,
  seconds: number,
): Promise<boolean> {
  const valid = checks.every((c) => c.status === 'pass');
  for (const group of Object.keys(GROUP_TITLES) as CheckGroup[]) {
    const results = checks.filter((c) => c.group === group);
    if (results.length === 0) continue;
    io.log.info(`${GROUP_TITLES[group]}:`);
    for (const c of results) {
      if (c.status !== 'fail') {
        io.log.info(`  ${c.status === 'pass' ? 'pass' : 'skip'}  ${c.check}: ${c.detail}`);
      } else {
        // One error line per problem. Configuration problems already name their input.
        io.log.error(group === 'configuration' ? `Configuration: ${c.detail}` : `${GROUP_TITLES[group]}: ${c.check}: ${c.detail}`);
      }
    }
  }
  const failed = checks.filter((c) => c.status === 'fail').length;
  const skipped = checks.filter((c) => c.status === 'skipped').length;
  io.log.info(
    valid
      ? `All ${checks.length} checks passed in ${formatDuration(seconds)}.`
      : `${failed} of ${checks.length} checks failed${skipped > 0 ? `, ${skipped} not checked` : ''}.`,
  );

  io.setOutput('valid', valid);
  // Step outputs share 1 MB per job: a deployment with thousands of collections keeps its first ones.
  const listed = collections.slice(0, REPORT_COLLECTIONS_LIMIT);
  const omitted = collections.length - listed.length;
  const report: ValidationReport = {
    valid,
    checks: checks.map((c) => ({
      group: c.group,
      name: c.check,
      ok: c.status === 'pass',
      ...(c.status === 'skipped' ? { skipped: true as const } : {}),
      detail: c.detail,
    })),
    collections: listed,
  };
  io.setOutput('report', JSON.stringify({ ...report, ...(omitted > 0 ? { collectionsOmitted: omitted } : {}) }));

  let summary =
    `## supaneon-sync validate: ${valid ? 'ready to back up' : `${failed} check${failed === 1 ? '' : 's'} failed`}\n\n` +
    checkTable(
      [
        ['Area', (c) => c.subject],
        ['Check', (c) => c.check],
      ],
      checks,
    );
  if (collections.length > 0) {
    summary +=
      '\n### Selected collections\n\n' +
      markdownTable(
        ['Collection', 'Kind', 'Documents (estimated)', 'Size'],
        collections.map((c) => [
          `${c.database}.${c.collection}`,
          c.kind,
          c.documents === undefined ? '-' : c.documents.toLocaleString('en-US'),
          c.bytes === undefined ? '-' : formatBytes(c.bytes),
        ]),
      );
  }
  await io.appendSummary(summary);
  return valid;
}
