/**
 * mode: recover. Puts a backup (a backup branch, or the standby itself) back into a MongoDB
 * deployment, byte-exact, and proves it by reading the target back:
 *
 *   1. find the backup and open it (a backup branch has no compute: a temporary child branch gets one);
 *   2. read its manifest and choose the collections (databases / include / exclude);
 *   3. refuse non-empty targets unless drop-target, before anything is written;
 *   4. per collection: create it with its recorded options, stream the stored documents into it in
 *      unordered bulk inserts, then build its indexes; then recreate the views;
 *   5. read every target collection back and compare counts and content hashes with the manifest.
 *
 * With target-dump-dir the target is a mongodump directory instead (dump-target.ts): steps 3 and 4
 * write files in a staging directory, step 5 reads those files back, and only a verified dump is
 * renamed into place.
 */
import { BSON, type MongoClient } from 'mongodb';
import type pg from 'pg';
import { STANDBY, type Config } from '../config.js';
import type { Io } from '../io.js';
import { readManifest, type CollectionRecord, type Manifest } from '../manifest.js';
import { cleanIndex, dumpTypeOf } from '../dump-format.js';
import { ArchiveWriter } from '../dump-archive.js';
import { DumpWriter, checkDumpTarget, type DumpSink } from '../dump-target.js';
import { connectMongo, type CollectionSpec } from '../mongo.js';
import { findStandby, neonApiFor, type NeonApi } from '../neon.js';
import { connectPostgres } from '../postgres.js';
import { checkTable, formatBytes, formatDuration, markdownText, Progress, type Check } from '../report.js';
import {
  createRecordedIndexes,
  createTargetCollection,
  describeTarget,
  dropTarget,
  insertDocuments,
  occupiedTargets,
  readBack,
  targetNameProblems,
  viewMatches,
  type IndexOutcome,
  type TargetCollection,
} from '../restore-target.js';
import { isSelected } from '../selection.js';
import { storedDocuments } from '../stored-documents.js';
import { chooseBackupBranch, withTemporaryBranch } from '../temporary-branch.js';

const { EJSON } = BSON;

/**
 * One collection's recovery, reported as a check of it (subject `db.collection`): it passes once
 * the target reads back as the manifest recorded it (settle), and fails with what differed.
 */
interface CollectionOutcome extends Check {
  target: TargetCollection;
  record: CollectionRecord;
  documents: number;
  bytes: number;
  /** Hash of the rows as read from the backup: proves the source was intact. */
  sourceHash?: string;
  /** Read back from the target after the writes. */
  targetDocuments?: number;
  targetHash?: string;
  indexes: IndexOutcome[];
  /** What differed from the manifest, gathered while verifying; the check's detail. */
  problems: string[];
}

/** The verdict once verification has gathered its problems: a pass when there are none. */
function settle(o: CollectionOutcome): void {
  o.status = o.problems.length === 0 ? 'pass' : 'fail';
  o.detail = o.problems.join('; ');
}

function isVerified(o: CollectionOutcome): boolean {
  return o.status === 'pass';
}

export async function recover(config: Config, io: Io): Promise<boolean> {
  const started = Date.now();
  const { log } = io;
  const targetUri = config.targetMongodbUri;
  const dumpDir = config.targetDumpDir;
  if (!targetUri && !dumpDir) {
    throw new Error('target-mongodb-uri or target-dump-dir is required: recover never writes to an implicit target');
  }
  const neon = neonApiFor(config, log);
  let outcomes: CollectionOutcome[] = [];
  const finish = (verified: boolean): number => {
    const seconds = (Date.now() - started) / 1000;
    io.setOutput('collections', outcomes.length);
    io.setOutput(
      'documents',
      outcomes.reduce((n, o) => n + o.documents, 0),
    );
    io.setOutput('verified', verified);
    io.setOutput('duration-seconds', Math.round(seconds));
    return seconds;
  };

  try {
    // A dump target that cannot be written fails now, before a temporary branch is made for nothing.
    if (dumpDir) await checkDumpTarget(dumpDir, { archive: config.dumpArchive, replace: config.dropTarget });
    return await withSource(config, io, neon, async (source) => {
      io.setOutput('backup-branch-id', source.branchId);
      const manifest = await readManifest(source.client, source.runId);
      assertCompleted(manifest, source.label);
      const records = manifest.collections.filter((c) =>
        isSelected(c.database, c.collection, { databases: config.databases, include: config.include, exclude: config.exclude }),
      );
      if (records.length === 0) {
        throw new Error(
          `no collection of ${source.label} (backup run ${manifest.backup.runId}) matches databases/include/exclude; ` +
            `it holds ${manifest.collections.map((c) => `${c.database}.${c.collection}`).join(', ') || 'no collections'}`,
        );
      }
      log.info(
        `recovering ${records.length} collection(s) of backup run ${manifest.backup.runId} (finished ${manifest.backup.finishedAt?.toISOString() ?? 'unknown'}) from ${source.label}`,
      );
      outcomes = records.map((record) => ({
        subject: `${record.database}.${record.collection}`,
        check: 'target read back = manifest',
        status: 'fail',
        detail: 'not verified',
        target: targetOf(config, record),
        record,
        documents: 0,
        bytes: 0,
        indexes: [],
        problems: [],
      }));

      // The same limits for a dump: mongorestore writes it under these names.
      const badNames = targetNameProblems(
        outcomes.map((o) => o.target),
        config.targetDatabasePrefix,
      );
      if (badNames.length > 0) {
        throw new Error(`recover cannot write under these names, nothing was written: ${badNames.join('; ')}`);
      }
      if (dumpDir) {
        await writeDump(config, io, source.client, dumpDir, outcomes, manifest.backup.source?.serverVersion ?? 'unknown');
      } else {
        const target = await connectMongo(targetUri as string, { input: 'target-mongodb-uri' });
        try {
          await writeAll(config, io, source.client, target, outcomes);
          await verifyAll(config, io, target, outcomes);
        } finally {
          await target.close().catch(() => undefined);
        }
      }
      const ok = outcomes.every(isVerified);
      const seconds = finish(ok);
      await io.appendSummary(summary(source.label, manifest, outcomes, ok, seconds, dumpDir));
      if (ok) {
        const documents = outcomes.reduce((n, o) => n + o.documents, 0);
        log.info(
          `recover verified: ${outcomes.length} collection(s), ${documents} document(s) in ${formatDuration(seconds)}` +
            (dumpDir ? `; mongodump directory ${dumpDir} is ready for mongorestore${config.dumpGzip ? ' --gzip' : ''}` : ''),
        );
      } else {
        for (const o of outcomes.filter((x) => !isVerified(x))) log.error(`${describeTarget(o.target)}: ${o.problems.join('; ')}`);
      }
      return ok;
    });
  } catch (err) {
    finish(false);
    await io.appendSummary(`## supaneon-sync recover: FAILED\n\n${markdownText((err as Error).message)}\n`);
    throw err;
  }
}

interface Source {
  client: pg.Client;
  /** Run id to read from the manifest (a backup branch's annotation), or undefined for the newest completed run. */
  runId: string | undefined;
  branchId: string;
  label: string;
}

/** Runs `use` with the backup open: the standby's own database, or a backup branch through a temporary branch. */
async function withSource<T>(config: Config, io: Io, neon: NeonApi, use: (source: Source) => Promise<T>): Promise<T> {
  if (config.backupBranch === STANDBY) {
    const client = await connectPostgres(config.neonDatabaseUrl, { applicationName: 'supaneon-sync recover' });
    try {
      const standby = await findStandby(neon, config).catch((err: Error) => {
        io.log.warn(`could not identify the standby branch through the Neon API (${err.message}); continuing with its database`);
        return undefined;
      });
      return await use({
        client,
        runId: undefined,
        branchId: standby?.id ?? '',
        label: `the standby${standby ? ` (branch ${standby.name})` : ''}`,
      });
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  // Named apart from restore's branches (a restore and a recover may start in the same second), and
  // annotated as a restore test like them, so the post step and the sweeps remove it the same way.
  const backup = await chooseBackupBranch(neon, config, io, {});
  return withTemporaryBranch(neon, config, io, { backup, purpose: 'recover', keep: false }, ({ client }) =>
    use({ client, runId: backup.annotations['run-id'], branchId: backup.id, label: `backup branch "${backup.name}"` }),
  );
}

function assertCompleted(manifest: Manifest, label: string): void {
  if (manifest.backup.status !== 'completed') {
    throw new Error(
      `backup run ${manifest.backup.runId} in ${label} is marked ${manifest.backup.status}, not completed: its data is not a whole backup; choose another backup-branch`,
    );
  }
}

function targetOf(config: Config, record: CollectionRecord): TargetCollection {
  return {
    source: {
      database: record.database,
      collection: record.collection,
      kind: record.kind,
      options: record.options,
      indexes: record.indexes,
    },
    database: `${config.targetDatabasePrefix}${record.database}`,
    collection: record.collection,
  };
}

async function writeAll(config: Config, io: Io, pgClient: pg.Client, target: MongoClient, outcomes: CollectionOutcome[]): Promise<void> {
  const targets = outcomes.map((o) => o.target);

  if (config.dropTarget) {
    for (const t of targets) {
      if (await dropTarget(target, t)) io.log.info(`${describeTarget(t)}: dropped (drop-target: true)`);
    }
  } else {
    const occupied = await occupiedTargets(target, targets);
    if (occupied.length > 0) {
      throw new Error(
        `refusing to write into target collections that already hold data: ${occupied.join(', ')}; ` +
          `set drop-target: true to replace them, or recover side by side with target-database-prefix`,
      );
    }
  }

  // Views last, once the collections they read from exist and hold their data.
  const ordered = [...outcomes.filter((o) => o.record.kind !== 'view'), ...outcomes.filter((o) => o.record.kind === 'view')];
  for (const o of ordered) {
    const name = describeTarget(o.target);
    await io.log.group(`recover ${o.record.database}.${o.record.collection} → ${name}`, async () => {
      for (const w of await createTargetCollection(target, o.target)) io.log.warn(w);
      if (o.record.kind === 'view') return;
      const progress = new Progress(name, io.log, { total: o.record.documents });
      const rows = storedDocuments(pgClient, { schemaName: o.record.schemaName, tableName: o.record.tableName, label: name });
      try {
        const totals = await insertDocuments(target, o.target, rows, {
          onProgress: (p) => {
            progress.add(p.documents - o.documents, p.bytes - o.bytes);
            o.documents = p.documents;
            o.bytes = p.bytes;
          },
        });
        o.sourceHash = totals.contentHash;
      } catch (err) {
        throw new Error(
          `recover stopped at ${name} after ${o.documents} of ${o.record.documents} documents: ${(err as Error).message}; ` +
            `the collections before it are complete; fix the cause and rerun with drop-target: true`,
          { cause: err },
        );
      }
      progress.done();
      o.indexes = await createRecordedIndexes(target, o.target);
      for (const ix of o.indexes.filter((i) => !i.created)) {
        io.log.warn(`${name}: index ${ix.name} not created, the target server refused it: ${ix.reason}`);
      }
    });
  }
}

/** The collection as recorded, in the shape the dump writer takes. */
function specOf(record: CollectionRecord): CollectionSpec {
  return { database: record.database, collection: record.collection, kind: record.kind, options: record.options, indexes: record.indexes };
}

/**
 * recover into a mongodump directory: every selected collection is written into a staging directory
 * beside target-dump-dir, every file is read back and checked against the manifest, and only then
 * is the dump renamed into place. A failure or a mismatch leaves the target as it was.
 */
async function writeDump(
  config: Config,
  io: Io,
  pgClient: pg.Client,
  dir: string,
  outcomes: CollectionOutcome[],
  serverVersion: string,
): Promise<void> {
  const options = { gzip: config.dumpGzip, replace: config.dropTarget };
  const writer: DumpSink = config.dumpArchive ? await ArchiveWriter.open(dir, options) : await DumpWriter.open(dir, options);
  let committed = false;
  try {
    await writer.begin(
      outcomes.map((o) => ({ database: o.target.database, spec: specOf(o.record), bytes: o.record.bsonBytes })),
      serverVersion,
    );
    for (const o of outcomes) {
      const name = describeTarget(o.target);
      const spec = specOf(o.record);
      const file = writer.describe(o.target.database, o.record.collection);
      await io.log.group(`export ${o.record.database}.${o.record.collection} → ${file}`, async () => {
        const progress = new Progress(name, io.log, { total: o.record.documents });
        const rows =
          o.record.kind === 'view'
            ? undefined
            : storedDocuments(pgClient, { schemaName: o.record.schemaName, tableName: o.record.tableName, label: name });
        try {
          const totals = await writer.writeCollection(o.target.database, spec, rows, (p) => {
            progress.add(p.documents - o.documents, p.bytes - o.bytes);
            o.documents = p.documents;
            o.bytes = p.bytes;
          });
          o.sourceHash = totals.contentHash;
        } catch (err) {
          throw new Error(
            `export of ${o.record.database}.${o.record.collection} to ${file} failed: ${(err as Error).message}; ${dir} was not changed`,
            {
              cause: err,
            },
          );
        }
        progress.done();
        o.indexes = o.record.indexes.map((ix) => ({ name: String(ix.name ?? JSON.stringify(ix.key)), created: true }));
      });
    }
    await writer.end();

    await io.log.group('verify the dump files against the manifest', async () => {
      for (const o of outcomes) {
        const back = await writer.readBack(o.target.database, specOf(o.record));
        const type = dumpTypeOf(o.record.kind);
        if (back.metadata.collectionName !== o.record.collection || back.metadata.kind !== type) {
          o.problems.push(
            `metadata file names ${back.metadata.collectionName} (${back.metadata.kind}), not ${o.record.collection} (${type})`,
          );
        }
        // The index definitions read back must be the recorded ones, field order and number types included.
        const written = EJSON.stringify(back.metadata.indexes, { relaxed: false });
        const recorded = EJSON.stringify(o.record.kind === 'view' ? [] : o.record.indexes.map(cleanIndex), { relaxed: false });
        if (written !== recorded) o.problems.push(`the metadata file's indexes ${written} differ from the manifest's ${recorded}`);
        if (EJSON.stringify(back.metadata.options, { relaxed: false }) !== EJSON.stringify(o.record.options, { relaxed: false })) {
          o.problems.push("the metadata file's options differ from the manifest's");
        }
        if (o.record.kind !== 'view') {
          if (o.documents !== o.record.documents || o.sourceHash !== o.record.contentHash) {
            o.problems.push(
              `the backup's rows (${o.documents} documents, hash ${o.sourceHash}) differ from its manifest (${o.record.documents}, ${o.record.contentHash})`,
            );
          }
          o.targetDocuments = back.documents;
          o.targetHash = back.contentHash;
          if (back.documents !== o.record.documents)
            o.problems.push(`the .bson file holds ${back.documents} documents, the manifest ${o.record.documents}`);
          if (back.contentHash !== o.record.contentHash) {
            o.problems.push(
              `content hash read back from the .bson file ${back.contentHash} differs from the manifest's ${o.record.contentHash}`,
            );
          }
        }
        settle(o);
        io.log.info(
          `${describeTarget(o.target)}: ${isVerified(o) ? 'verified' : 'MISMATCH'} (${back.documents} documents, hash ${back.contentHash.slice(0, 16)}…)`,
        );
      }
    });

    if (outcomes.every(isVerified)) {
      await writer.commit();
      committed = true;
    } else {
      io.log.error(`the dump did not match the backup: ${dir} was not changed`);
    }
  } finally {
    if (!committed) await writer.abort().catch(() => undefined);
  }
}

async function verifyAll(config: Config, io: Io, target: MongoClient, outcomes: CollectionOutcome[]): Promise<void> {
  await io.log.group('verify the target against the manifest', async () => {
    for (const o of outcomes) {
      const name = describeTarget(o.target);
      if (o.record.kind === 'view') {
        const matches = await viewMatches(target, o.target);
        if (!matches) o.problems.push('view missing or its definition differs from the backup');
        settle(o);
        continue;
      }
      if (o.documents !== o.record.documents || o.sourceHash !== o.record.contentHash) {
        o.problems.push(
          `the backup's rows (${o.documents} documents, hash ${o.sourceHash}) differ from its manifest (${o.record.documents}, ${o.record.contentHash})`,
        );
      }
      const back = await readBack(target, o.target, { batchSize: config.batchSize });
      o.targetDocuments = back.documents;
      o.targetHash = back.contentHash;
      if (back.documents !== o.record.documents) {
        o.problems.push(`target holds ${back.documents} documents, the manifest ${o.record.documents}`);
      }
      if (back.contentHash !== o.record.contentHash) {
        o.problems.push(`content hash read back from the target ${back.contentHash} differs from the manifest's ${o.record.contentHash}`);
      }
      settle(o);
      io.log.info(
        `${name}: ${isVerified(o) ? 'verified' : 'MISMATCH'} (${back.documents} documents, hash ${back.contentHash.slice(0, 16)}…)`,
      );
    }
  });
}

function summary(
  label: string,
  manifest: Manifest,
  outcomes: readonly CollectionOutcome[],
  ok: boolean,
  seconds: number,
  dumpDir?: string,
): string {
  const stored = (o: CollectionOutcome, cell: string) => (o.record.kind === 'view' ? '-' : cell);
  const indexes = (o: CollectionOutcome) => {
    const refused = o.indexes.filter((i) => !i.created).map((i) => i.name);
    return `${o.indexes.filter((i) => i.created).length}${refused.length ? ` (refused: ${refused.join(', ')})` : ''}`;
  };
  return (
    `## supaneon-sync recover: ${ok ? 'verified' : 'FAILED'}\n\n` +
    `Backup run ${markdownText(manifest.backup.runId)} from ${markdownText(label)}, ${outcomes.length} collection(s) in ${formatDuration(seconds)}` +
    (dumpDir ? `, written as the mongodump directory ${markdownText(dumpDir)}${ok ? '' : ' (not created: verification failed)'}` : '') +
    '.\n\n' +
    checkTable(
      [
        ['source', (o) => o.subject],
        ['target', (o) => describeTarget(o.target)],
        ['kind', (o) => o.record.kind],
        ['documents (target / backup)', (o) => stored(o, `${o.targetDocuments ?? 0} / ${o.record.documents}`)],
        ['size', (o) => stored(o, formatBytes(o.bytes))],
        ['indexes', (o) => stored(o, indexes(o))],
        ['content hash', (o) => stored(o, `${o.record.contentHash.slice(0, 12)}…`)],
      ],
      outcomes,
    )
  );
}
