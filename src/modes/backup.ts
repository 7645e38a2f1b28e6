/**
 * mode: backup — the runbook:
 *   1. read the selection from the source: a live MongoDB, or a mongodump directory (source-dump-dir);
 *   2. find the standby branch behind neon-database-url, take its backup lock, refuse a selection
 *      that would drop tables the previous backup selected (unless allow-selection-change), and
 *      check that the project has room for one more branch, or that retention can make it without
 *      deleting a kept backup (else fail before anything is written);
 *   3. record the run as running;
 *   4. sync every selected collection into the standby in one transaction (standby.ts);
 *   5. make that room (as late as possible) and freeze the committed standby as a storage-only
 *      snapshot branch;
 *   6. apply retention to this tool's branches;
 *   7. outputs and job summary.
 * Nothing that fails before the commit in step 4 changes the standby; nothing that fails after it
 * undoes it (the next run makes the snapshot the failed run could not).
 */
import { randomUUID } from 'node:crypto';
import type { ClientSession, MongoClient } from 'mongodb';
import type pg from 'pg';
import type { Config } from '../config.js';
import type { Io } from '../io.js';
import { dumpDocuments, openDumpDirectory } from '../dump-source.js';
import { TOOL_VERSION, tablesOfLastBackup, type Consistency, type GithubRun, type SourceDescription } from '../manifest.js';
import {
  clusterTime,
  connectMongo,
  describeSource,
  estimateDocumentCount,
  existingNamespaces,
  listSelectedCollections,
  missingDatabases,
  missingDatabasesMessage,
  rawDocuments,
  replyBatchSize,
  snapshotTimeOf,
  type CollectionSpec,
  type SourceInfo,
} from '../mongo.js';
import type { Selection } from '../selection.js';
import { freeBranchName } from '../naming.js';
import { findStandby, neonApiFor, standbyNotFound, type BranchInfo, type NeonApi } from '../neon.js';
import { connectPostgres, describePostgresUrl } from '../postgres.js';
import { asMarkdown, formatBytes, formatDuration, markdownTable, markdownText } from '../report.js';
import { applyRetention, ensureRoomForBranches, planRetention, planRoom, type RoomRequest } from '../retention.js';
import { droppedBySelection, guardSelectionChange } from '../selection-change.js';
import { acquireBackupLock, recordRunStart, syncStandby, type CollectionSource, type SyncResult } from '../standby.js';

/** MongoDB's error code when a snapshot read outlives the server's snapshot history (5 minutes by default). */
const SNAPSHOT_TOO_OLD = 239;

export async function backup(config: Config, io: Io): Promise<boolean> {
  const started = new Date();
  const runId = randomUUID();
  if (!config.mongodbUri && !config.sourceDumpDir) {
    throw new Error(
      'mode backup needs mongodb-uri (or MONGODB_SRV_URL), the MongoDB deployment to back up, or source-dump-dir, a mongodump directory',
    );
  }
  const neon = neonApiFor(config, io.log);
  const selection = { databases: config.databases, include: config.include, exclude: config.exclude };

  let source: BackupSource | undefined;
  let standbyClient: pg.Client | undefined;
  try {
    // 1. The source and what it holds.
    source = config.sourceDumpDir
      ? await openDumpSource(config.sourceDumpDir, selection, io)
      : await openLiveSource(config.mongodbUri as string, selection);
    const specs = source.specs;
    for (const db of config.databases.filter((d) => !specs.some((s) => s.database === d))) {
      io.log.info(
        `database ${db} (listed in 'databases') has no collection to back up: it is empty, or include/exclude leave out all of its collections`,
      );
    }
    if (specs.length === 0) {
      throw new Error(
        `no collection ${config.sourceDumpDir ? `of the dump in ${config.sourceDumpDir} ` : ''}matches the selection (databases/include/exclude); nothing to back up. ` +
          'Check the inputs, or run mode validate to list what the selection covers',
      );
    }
    io.log.info(`${source.label}: ${specs.length} collection(s) selected`);

    // 2. The standby branch, and room for the snapshot this run will make.
    const standby = await findStandby(neon, config);
    if (!standby) throw new Error(standbyNotFound(config));
    io.log.info(`standby: branch "${standby.name}" (${standby.id}) at ${describePostgresUrl(config.neonDatabaseUrl)}`);
    // One backup at a time from here on, retention included. (Session advisory locks and a long
    // transaction need a direct connection, not the pooler: connectPostgres always makes one.)
    standbyClient = await connectPostgres(config.neonDatabaseUrl, { applicationName: 'supaneon-sync backup' });
    await acquireBackupLock(standbyClient, config.lockWaitSeconds, io.log);
    // A narrower selection stops here, before retention or the sync has changed anything.
    await checkSelectionChange(standbyClient, source, config.allowSelectionChange, io);
    // Room for the snapshot: checked now, before any work, but made only right before the snapshot
    // is created (step 5), so a run that stops earlier has deleted nothing.
    const project = await neon.getProject();
    const roomRequest: RoomRequest = {
      needed: 1,
      limit: project.branchLimit,
      standbyId: standby.id,
      retain: config.retain,
      retainDays: config.retainDays,
      restoreTtlMinutes: config.restoreTtlMinutes,
    };
    const room = planRoom(await neon.listBranches(), roomRequest);
    if (!room.enough) throw new Error(`${room.problem} Nothing was changed.`);

    // 3. An audit trail even if this run dies.
    await recordRunStart(standbyClient, {
      runId,
      toolVersion: TOOL_VERSION,
      status: 'running',
      startedAt: started,
      finishedAt: null,
      clusterTimeStart: await source.clusterTime(),
      clusterTimeEnd: null,
      consistency: null,
      github: githubRun(config),
      source: source.description,
    });
    io.log.info(`backup run ${runId} started`);

    // 4. The sync, in one transaction.
    const sync = await source.sync(standbyClient, runId, config, io);
    io.log.info(`standby committed: ${sync.result.changed} row(s) written, consistency ${sync.consistency}`);
    for (const db of config.databases) {
      const own = sync.result.collections.filter((c) => c.spec.database === db && c.spec.kind !== 'view');
      if (own.length > 0 && own.every((c) => c.documents === 0)) {
        io.log.info(
          `database ${db} (listed in 'databases') is empty: its ${own.length} collection(s) hold no documents and are backed up as empty tables`,
        );
      }
    }

    // 5. The immutable snapshot, room made for it first if the project is at its limit.
    let madeRoom: BranchInfo[];
    try {
      madeRoom = await ensureRoomForBranches(neon, { ...roomRequest, now: new Date() }, io);
    } catch (err) {
      throw new Error(
        `the standby was updated and committed, but no room could be made for the snapshot branch: ${(err as Error).message} ` +
          'The standby holds this backup; the next successful run creates a snapshot of it',
        { cause: err },
      );
    }
    const branch = await createSnapshotBranch(neon, config.branchPrefix, standby.id, runId, io);

    // 6. Retention (never fails the run: its problems are warnings).
    const plan = planRetention({
      branches: await neon.listBranches(),
      standbyId: standby.id,
      retain: config.retain,
      retainDays: config.retainDays,
      restoreTtlMinutes: config.restoreTtlMinutes,
      now: new Date(),
      protect: [branch.id, standby.id],
    });
    const deleted = [...madeRoom, ...(await applyRetention(neon, plan, io))];

    // 7. Outputs and summary.
    const seconds = (Date.now() - started.getTime()) / 1000;
    const totals = sync.result.collections.reduce((t, c) => ({ documents: t.documents + c.documents, bytes: t.bytes + c.bsonBytes }), {
      documents: 0,
      bytes: 0,
    });
    io.setOutput('branch-name', branch.name);
    io.setOutput('branch-id', branch.id);
    io.setOutput('standby-branch-id', standby.id);
    io.setOutput('collections', sync.result.collections.length);
    io.setOutput('documents', totals.documents);
    io.setOutput('bytes', totals.bytes);
    io.setOutput('changed', sync.result.changed);
    io.setOutput('deleted-branches', deleted.map((b) => b.name).join(','));
    io.setOutput('duration-seconds', Math.round(seconds));
    io.setOutput('consistency', sync.consistency);
    await io.appendSummary(
      summary({ runId, branch, standby, sync: sync.result, consistency: sync.consistency, deleted, plan, seconds, totals }),
    );
    io.log.info(
      `backup complete in ${formatDuration(seconds)}: ${totals.documents} documents (${formatBytes(totals.bytes)}) in ` +
        `${sync.result.collections.length} collection(s), ${sync.result.changed} row(s) written, snapshot "${branch.name}"`,
    );
    return true;
  } finally {
    // Ending the session also releases the backup lock.
    await standbyClient?.end().catch(() => undefined);
    await source?.close().catch(() => undefined);
  }
}

/** The previous backup's tables that this selection would drop while their collections still exist. */
async function checkSelectionChange(client: pg.Client, source: BackupSource, allow: boolean, io: Io): Promise<void> {
  const previous = await tablesOfLastBackup(client);
  const selected = new Set(source.specs.map((s) => `${s.database}\0${s.collection}`));
  const unselected = previous.filter((t) => !selected.has(`${t.database}\0${t.collection}`));
  if (unselected.length === 0) return;
  const existing = await source.existing(unselected);
  guardSelectionChange(
    droppedBySelection(previous, source.specs, (n) => existing.has(`${n.database}.${n.collection}`)),
    allow,
    io.log,
  );
}

/**
 * Where a backup's documents come from. The sync, manifest and snapshot are the same whatever the
 * source; only the listing of collections, the streams of raw BSON and the consistency differ.
 */
interface BackupSource {
  /** For the log: what is read. */
  label: string;
  /** Recorded in the manifest (never credentials). */
  description: SourceDescription;
  specs: CollectionSpec[];
  /** The source's logical time when the run starts, if it has one. */
  clusterTime(): Promise<string | null>;
  /** Which of these namespaces the source holds, selected or not (`db.collection`). */
  existing(namespaces: readonly { database: string; collection: string }[]): Promise<Set<string>>;
  /** Brings the standby to the source's state in one transaction (standby.ts). */
  sync(client: pg.Client, runId: string, config: Config, io: Io): Promise<{ result: SyncResult; consistency: Consistency }>;
  close(): Promise<void>;
}

async function openLiveSource(uri: string, selection: Selection): Promise<BackupSource> {
  const mongo = await connectMongo(uri);
  let estimates: CountEstimates | undefined;
  try {
    const info = await describeSource(mongo, uri);
    // A listed database that does not exist is refused before anything is touched: backing up
    // without it would drop its tables from the standby, silently.
    const missing = await missingDatabases(mongo, selection);
    if (missing.length > 0) throw new Error(`${missingDatabasesMessage(missing)}; nothing was changed`);
    const specs = await listSelectedCollections(mongo, selection);
    return {
      label: `MongoDB ${info.serverVersion} (${info.topology})`,
      description: { hosts: info.hosts, serverVersion: info.serverVersion, topology: info.topology },
      specs,
      clusterTime: async () => (await clusterTime(mongo)) ?? null,
      existing: (namespaces) => existingNamespaces(mongo, namespaces),
      sync: (client, runId, config, io) => {
        // Count estimates (for progress ETAs only) arrive on the side.
        estimates = new CountEstimates(mongo, specs);
        return syncWithBestConsistency(client, mongo, info, specs, runId, config, io, estimates);
      },
      close: async () => {
        estimates?.stop();
        await mongo.close();
      },
    };
  } catch (err) {
    await mongo.close().catch(() => undefined);
    throw err;
  }
}

/**
 * A mongodump directory as the source. Every metadata file is read and checked here, before the
 * standby is touched; the documents stream from their files inside the sync's transaction, so a
 * damaged `.bson` rolls the whole sync back. A dump has no cluster time: consistency is `dump`.
 */
async function openDumpSource(dir: string, selection: Selection, io: Io): Promise<BackupSource> {
  const dump = await openDumpDirectory(dir, selection);
  // As for a live source: a listed database the dump does not hold would silently drop its tables.
  const missing = selection.databases.filter((d) => !dump.databases.includes(d));
  if (missing.length > 0)
    throw new Error(`${missingDatabasesMessage(missing).replace(' not exist', ` not exist in the dump ${dir}`)}; nothing was changed`);
  if (dump.oplog) {
    io.log.warn(
      `${dir} has an oplog.bson (mongodump --oplog): the writes made while it was dumped are not replayed, so each collection is as mongodump read it; ` +
        'for one point in time, restore the dump with mongorestore --oplogReplay and back up that MongoDB instead',
    );
  }
  const specs = dump.collections.map((c) => c.spec);
  return {
    label: `mongodump directory ${dir}${dump.serverVersion ? ` (MongoDB ${dump.serverVersion})` : ''}`,
    // The path stays out of the manifest: it says where a file lay on one runner, not what was backed up.
    description: { hosts: [], serverVersion: dump.serverVersion ?? 'unknown', topology: 'dump' },
    specs,
    clusterTime: async () => null,
    existing: async () => {
      const everything = await openDumpDirectory(dir, { databases: [], include: [], exclude: [] });
      return new Set(everything.collections.map((c) => `${c.spec.database}.${c.spec.collection}`));
    },
    sync: async (client, runId, config, io) => {
      const sources: CollectionSource[] = dump.collections.map((c) => ({ spec: c.spec, documents: () => dumpDocuments(c) }));
      const result = await syncStandby(client, {
        runId,
        sources,
        parallelism: config.parallelCollections,
        log: io.log,
        finish: async () => ({ clusterTimeEnd: null, consistency: 'dump' }),
      });
      return { result, consistency: 'dump' };
    },
    close: async () => undefined,
  };
}

/**
 * Reads with one snapshot across all collections where the server offers it; if the read outlives
 * the server's snapshot window (MongoDB keeps 5 minutes by default), the rolled-back sync is run
 * again with per-collection consistency instead of failing the backup.
 */
async function syncWithBestConsistency(
  client: pg.Client,
  mongo: MongoClient,
  source: SourceInfo,
  specs: CollectionSpec[],
  runId: string,
  config: Config,
  io: Io,
  estimates: CountEstimates,
): Promise<{ result: SyncResult; consistency: Consistency }> {
  if (source.snapshotReads) {
    const session = mongo.startSession({ snapshot: true });
    try {
      const result = await syncOnce(client, mongo, specs, runId, config, io, session, estimates);
      return { result, consistency: 'snapshot' };
    } catch (err) {
      if (!isSnapshotTooOld(err)) throw err;
      io.log.warn(
        "reading every collection took longer than MongoDB's snapshot window (minSnapshotHistoryWindowInSeconds); " +
          'the standby was left unchanged and the collections are read again, each consistent on its own',
      );
    } finally {
      await session.endSession().catch(() => undefined);
    }
  }
  return {
    result: await syncOnce(client, mongo, specs, runId, config, io, undefined, estimates),
    consistency: 'per-collection',
  };
}

async function syncOnce(
  client: pg.Client,
  mongo: MongoClient,
  specs: CollectionSpec[],
  runId: string,
  config: Config,
  io: Io,
  session: ClientSession | undefined,
  estimates: CountEstimates,
): Promise<SyncResult> {
  const opened = session ? new FirstReply() : undefined;
  const sources: CollectionSource[] = specs.map((spec) => ({
    spec,
    documents: () => {
      const documents = sizedRawDocuments(mongo, spec, config.batchSize, session);
      return opened ? opened.gate(documents) : documents;
    },
    // Read when the collection's copy starts: whatever estimate has arrived by then, else no ETA.
    get estimatedDocuments() {
      return estimates.get(spec);
    },
  }));
  return syncStandby(client, {
    runId,
    sources,
    parallelism: config.parallelCollections,
    log: io.log,
    // With a snapshot, the data is as of one cluster time (recorded as the end); without, the end
    // of the window in which collections were read.
    finish: async () => ({
      clusterTimeEnd: (session ? snapshotTimeOf(session) : undefined) ?? (await clusterTime(mongo)) ?? null,
      consistency: session ? 'snapshot' : 'per-collection',
    }),
  });
}

/**
 * A collection's documents in replies sized by bytes (replyBatchSize), `maxDocuments` (the
 * batch-size input) at most. The statistics are asked outside the session: they are metadata, and a
 * snapshot session must settle on its time with its first read.
 */
async function* sizedRawDocuments(
  mongo: MongoClient,
  spec: CollectionSpec,
  maxDocuments: number,
  session: ClientSession | undefined,
): AsyncGenerator<Buffer> {
  const batchSize = await replyBatchSize(mongo, spec.database, spec.collection, maxDocuments);
  yield* rawDocuments(mongo, spec, { batchSize, session });
}

/**
 * One snapshot for collections read at once: a snapshot session settles on its cluster time with
 * the reply to its first read, and reads sent before that reply would each get a time of their
 * own. So the first cursor opened goes alone; the others open once its first reply (a batch, the
 * end, or an error) has arrived, and then read at the session's one time.
 */
export class FirstReply {
  private first: Promise<void> | undefined;

  gate(documents: AsyncIterable<Buffer>): AsyncIterable<Buffer> {
    if (this.first === undefined) {
      let replied!: () => void;
      this.first = new Promise<void>((resolve) => {
        replied = resolve;
      });
      return leading(documents, replied);
    }
    const first = this.first;
    return (async function* () {
      await first;
      yield* documents;
    })();
  }
}

async function* leading(documents: AsyncIterable<Buffer>, replied: () => void): AsyncGenerator<Buffer> {
  const it = documents[Symbol.asyncIterator]();
  let result: IteratorResult<Buffer>;
  try {
    result = await it.next();
  } finally {
    replied();
  }
  try {
    while (!result.done) {
      yield result.value;
      result = await it.next();
    }
  } finally {
    if (!result.done) await it.return?.();
  }
}

/**
 * Document-count estimates asked one collection at a time in the background, ahead of the sync,
 * each bounded in time: a slow or missing estimate only means a progress line without an ETA,
 * never a slower backup. One at a time so the estimates never crowd the sync's own reads.
 */
class CountEstimates {
  private readonly known = new Map<CollectionSpec, number>();
  private stopped = false;

  constructor(mongo: MongoClient, specs: readonly CollectionSpec[]) {
    void (async () => {
      for (const spec of specs) {
        if (this.stopped) return;
        if (spec.kind === 'view') continue;
        const n = await estimateDocumentCount(mongo, spec.database, spec.collection);
        if (n !== undefined) this.known.set(spec, n);
      }
    })().catch(() => undefined);
  }

  get(spec: CollectionSpec): number | undefined {
    return this.known.get(spec);
  }

  stop(): void {
    this.stopped = true;
  }
}

function isSnapshotTooOld(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if ((e as { code?: unknown }).code === SNAPSHOT_TOO_OLD) return true;
  }
  return false;
}

/**
 * Freezes the committed standby as `<prefix>YYYYMMDDTHHMMSSZ`, storage only. If Neon fails for
 * good, a branch the failed call may still have made is removed, so no half-made snapshot stays.
 */
async function createSnapshotBranch(neon: NeonApi, prefix: string, standbyId: string, runId: string, io: Io): Promise<BranchInfo> {
  const name = await freeBranchName(neon, prefix);
  try {
    const branch = await neon.createBackupBranch({ name, parentId: standbyId, runId });
    io.log.info(`snapshot branch "${branch.name}" (${branch.id}) created from the standby, no compute endpoint`);
    return branch;
  } catch (err) {
    await removeHalfMadeBranch(neon, name, runId, io);
    throw new Error(
      `the standby was updated and committed, but the snapshot branch "${name}" could not be created: ${(err as Error).message}. ` +
        'The standby holds this backup; the next successful run creates a snapshot of it',
      { cause: err },
    );
  }
}

async function removeHalfMadeBranch(neon: NeonApi, name: string, runId: string, io: Io): Promise<void> {
  try {
    for (const b of await neon.findBranchesByName(name)) {
      if (b.annotations['run-id'] !== runId) continue;
      io.log.warn(`removing branch "${b.name}" (${b.id}) left by the failed snapshot call`);
      await neon.deleteBranch(b.id);
    }
  } catch (err) {
    io.log.warn(`could not check for a half-made snapshot branch "${name}": ${(err as Error).message}; look for it in the Neon console`);
  }
}

/** The workflow run that made this backup, recorded in the manifest; null outside GitHub Actions. */
function githubRun(config: Config): GithubRun | null {
  const run = config.githubRun;
  return run ? { repository: run.repository, runId: run.runId, sha: run.sha, runUrl: run.runUrl } : null;
}

function summary(s: {
  runId: string;
  branch: BranchInfo;
  standby: BranchInfo;
  sync: SyncResult;
  consistency: Consistency;
  deleted: BranchInfo[];
  plan: ReturnType<typeof planRetention>;
  seconds: number;
  totals: { documents: number; bytes: number };
}): string {
  const rows = s.sync.collections.map((c) => [
    `${c.spec.database}.${c.spec.collection}${c.spec.kind === 'collection' ? '' : ` (${c.spec.kind})`}`,
    c.spec.kind === 'view' ? '(definition only)' : `${c.schemaName}.${c.tableName}`,
    c.documents,
    formatBytes(c.bsonBytes),
    c.inserted + c.updated + c.deleted,
    asMarkdown(`\`${c.contentHash.slice(0, 16)}…\``),
  ]);
  const lines = [
    '## supaneon-sync backup',
    '',
    `Snapshot branch **${markdownText(s.branch.name)}** (${markdownText(s.branch.id)}) from standby **${markdownText(s.standby.name)}** (${markdownText(s.standby.id)}), ` +
      `run \`${s.runId}\`, ${formatDuration(s.seconds)}, consistency ${s.consistency}.`,
    '',
    markdownTable(['Collection', 'Postgres table', 'Documents', 'Size', 'Changed', 'Content hash'], rows),
    `Total: ${s.totals.documents} documents, ${formatBytes(s.totals.bytes)}, ${s.sync.changed} row(s) written.`,
  ];
  if (s.sync.droppedTables.length > 0)
    lines.push('', `Dropped tables (collections gone or deselected): ${markdownText(s.sync.droppedTables.join(', '))}`);
  lines.push('', '### Retention');
  if (s.deleted.length === 0) lines.push('', 'No branch deleted.');
  else
    lines.push(
      '',
      markdownTable(
        ['Deleted branch', 'Id', 'Created', 'Why'],
        s.deleted.map((b) => [b.name, b.id, b.createdAt, s.plan.reasons[b.id] ?? 'made room for this backup']),
      ),
    );
  for (const k of s.plan.skipped) lines.push(`- kept ${markdownText(`${k.branch.name} (${k.branch.id}): ${k.reason}`)}`);
  lines.push('', `Backups kept: ${markdownText(s.plan.keep.map((b) => b.name).join(', ') || 'none')}.`);
  return lines.join('\n') + '\n';
}
