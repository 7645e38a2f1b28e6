/**
 * `npm run bench`: measures backup, incremental backup, restore verification and recover through
 * the product's own code path, next to the physical limits of this machine (read, write, plain scan)
 * and a naive hand-written script; prints a table and the targets, writes bench/results/*.json, the
 * chart (docs/performance.svg) and the report (docs/PERFORMANCE.md).
 *
 * Every measurement runs in a fresh child process (bench/child.ts) so its peak RSS is its own.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { parseStackEnv, ensureStack } from '../devkit/stack.js';
import { renderChart } from './chart.js';
import { applyRound, ensureDataset, type DatasetInfo } from './dataset.js';
import { renderMarkdown } from './doc.js';
import { mb, seconds } from './format.js';
import { startNetwork, type Network } from './network.js';
import { BENCH_DATABASE, ROUNDS_PER_DATASET } from '../devkit/generate.js';
import { mongoTools } from '../devkit/mongo-tools.js';
import { MEASUREMENTS, parseOptions, type BenchOptions, type MeasurementKey } from './options.js';
import { findFerretDb } from './proc.js';
import { summariseProfile } from './profile.js';
import type { Task, TaskName, TaskResult } from './protocol.js';
import { terminalReport } from './report.js';
import { summarise, type BenchResults, type RunRecord, type StorageResult, type TargetResult } from './results.js';
import { repoRoot, runChild, type ChildRun, type ServerPids } from './spawn.js';
import { PROFILE_FOR, evaluateTargets } from './targets.js';
import { PRODUCT_BUNDLE } from './tasks/product.js';
import type { TableStorage } from './tasks/inspect.js';

const LABELS: Record<MeasurementKey, { label: string; what: string; task: TaskName }> = {
  read: {
    label: 'Read limit (driver, raw, discarded)',
    what: 'every document streamed with the mongodb driver (raw BSON, batch 1000) and discarded',
    task: 'read',
  },
  write: {
    label: 'Write limit (COPY of encoded rows)',
    what: "rows already encoded by the product's codec COPYed (binary) from files into empty tables with the product's columns, key and compression, one transaction",
    task: 'write',
  },
  full: {
    label: 'Full backup (empty standby)',
    what: "mode backup into a standby without the database's tables: read, encode, COPY, insert, commit, snapshot branch, retention",
    task: 'full',
  },
  'full-sequential': {
    label: 'Full backup, one collection at a time',
    what: 'the full backup above with its collections read one after the other (input parallel-collections: 1), to show what reading several at once gains',
    task: 'full-sequential',
  },
  incremental: {
    label: 'Incremental backup (1% changed)',
    what: 'mode backup after 1% of every collection changed (60% updated, 20% deleted, 20% inserted)',
    task: 'incremental',
  },
  scan: {
    label: 'Plain scan (COPY TO, discarded)',
    what: 'every stored table of the standby read with COPY TO STDOUT (binary) and discarded: the floor for any check that reads every row',
    task: 'scan',
  },
  verify: {
    label: 'Restore + verify: full',
    what: 'mode restore with verify: full of the newest backup branch: temporary branch with an endpoint, every check on every row, branch deleted',
    task: 'verify',
  },
  recover: {
    label: 'Recover into an empty database',
    what: 'mode recover of the standby into an empty MongoDB database, indexes rebuilt, read back and compared',
    task: 'recover',
  },
  naive: {
    label: 'Naive script (toArray + INSERT each)',
    what: 'find().toArray() then one autocommit INSERT of relaxed Extended JSON per document, on a subset, time extrapolated',
    task: 'naive',
  },
  ceiling: {
    label: 'Pipeline ceiling (backup from a dump)',
    what: "mode backup --source-dump-dir into a standby without the database's tables: the same documents read from a mongodump directory (written once by the benchmark, not measured), so the source is not the bottleneck",
    task: 'ceiling',
  },
  'full-rtt40': {
    label: 'Full backup, {rtt} ms round trip',
    what: "mode backup into a standby without the database's tables, every MongoDB and Postgres connection over a simulated network adding a {rtt} ms round trip",
    task: 'full',
  },
  'naive-rtt40': {
    label: 'Naive script, {rtt} ms round trip',
    what: 'the naive script over the simulated {rtt} ms network, on a subset of {subset} documents, time extrapolated to the whole dataset',
    task: 'naive',
  },
  'verify-rtt40': {
    label: 'Restore + verify: full, {rtt} ms round trip',
    what: 'mode restore with verify: full of the newest backup branch, over the simulated {rtt} ms network',
    task: 'verify',
  },
  'recover-rtt40': {
    label: 'Recover, {rtt} ms round trip',
    what: 'mode recover into an empty MongoDB database, read back and compared, over the simulated {rtt} ms network',
    task: 'recover',
  },
};

/** The measurements that run over the simulated network (bench/network.ts). */
const NETWORKED: ReadonlySet<MeasurementKey> = new Set(['full-rtt40', 'naive-rtt40', 'verify-rtt40', 'recover-rtt40']);

/** The product is measured as users run it, its bundle: built from the checkout first, or refused when older than src/. */
function ensureBundle(options: BenchOptions): void {
  if (options.build) {
    log('building dist/ from src/ (npm run build): the product is measured as its bundle');
    execFileSync(process.execPath, [path.join(repoRoot, 'scripts', 'build.mjs')], {
      cwd: repoRoot,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    return;
  }
  const bundle = path.join(repoRoot, PRODUCT_BUNDLE);
  if (!existsSync(bundle)) throw new Error(`--no-build: ${PRODUCT_BUNDLE} does not exist; run \`npm run build\``);
  const newest = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce(
      (t, e) => Math.max(t, e.isDirectory() ? newest(path.join(dir, e.name)) : statSync(path.join(dir, e.name)).mtimeMs),
      0,
    );
  if (newest(path.join(repoRoot, 'src')) > statSync(bundle).mtimeMs) {
    throw new Error(
      `--no-build: ${PRODUCT_BUNDLE} is older than src/, so it would not measure these sources; run \`npm run build\` or drop --no-build`,
    );
  }
}

function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

/** The checkout's commit, so results say which product code they measured; undefined outside a git checkout. */
function measuredCode(): BenchResults['code'] {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd: repoRoot,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--', 'src'], {
      cwd: repoRoot,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return { commit, srcModified: status.trim() !== '' };
  } catch {
    return undefined;
  }
}

/** The command that reproduces the measurements (output paths and the settings file left out). */
function measuringCommand(o: BenchOptions): string {
  const args = [`--docs ${o.docs}`, `--runs ${o.runs}`];
  if (o.only.length < MEASUREMENTS.length) args.push(`--only ${o.only.join(',')}`);
  if (o.rssScaling) args.push(`--rss-scaling --rss-docs ${o.rssDocs.join(',')}`);
  if (o.naiveSubset !== 0.1) args.push(`--naive-subset ${o.naiveSubset}`);
  if (o.rttMs !== 40) args.push(`--rtt-ms ${o.rttMs}`);
  if (o.naiveRttDocs !== 1000) args.push(`--naive-rtt-docs ${o.naiveRttDocs}`);
  return `npm run bench -- ${args.join(' ')}`;
}

async function resolveStackEnv(options: BenchOptions): Promise<void> {
  const env = options.stackEnv ? parseStackEnv(readFileSync(options.stackEnv, 'utf8'), options.stackEnv) : await ensureStack();
  // A MongoDB server named by MONGODB_TEST_URI replaces the stack's FerretDB (as in the tests).
  if (process.env.MONGODB_TEST_URI) env.MONGODB_SRV_URL = process.env.MONGODB_TEST_URI;
  Object.assign(process.env, env);
  for (const name of ['MONGODB_SRV_URL', 'NEON_API_KEY', 'NEON_PROJECT_ID', 'NEON_API_HOST', 'NEON_DATABASE_URL']) {
    if (!process.env[name])
      throw new Error(`the stack settings lack ${name}; run 'npm run stack:up' (or pass --stack-env with a complete file)`);
  }
}

class Bench {
  readonly started = Date.now();
  private taskCounter = 0;
  readonly createdBranches: string[] = [];

  constructor(
    readonly options: BenchOptions,
    readonly workDir: string,
    readonly pids: ServerPids,
  ) {}

  elapsedMinutes(): number {
    return (Date.now() - this.started) / 60_000;
  }

  task(name: TaskName, dataset: DatasetInfo, extra: Partial<Task> = {}): Task {
    return {
      name,
      database: dataset.database,
      collections: dataset.collections,
      seed: this.options.seed,
      workDir: this.workDir,
      resultFile: path.join(this.workDir, `result-${++this.taskCounter}.json`),
      ...extra,
    };
  }

  async run(task: Task, profileDir?: string): Promise<ChildRun> {
    const run = await runChild(task, this.pids, { profileDir });
    const branchId = run.result.outputs?.['branch-id'];
    if (branchId) this.createdBranches.push(branchId);
    return run;
  }
}

function record(key: MeasurementKey, run: ChildRun, dataset: DatasetInfo): RunRecord {
  const r: TaskResult = run.result;
  // MB/s always counts the source's BSON bytes, so every measurement is on the same scale; the
  // limits move other bytes (COPY rows), reported separately.
  const bsonBytes =
    r.bytes > 0 && ['read', 'full', 'full-sequential', 'incremental', 'naive', 'ceiling', 'full-rtt40', 'naive-rtt40'].includes(key)
      ? r.bytes
      : dataset.bsonBytes * (r.documents / dataset.documents);
  return {
    wallSeconds: r.wallSeconds,
    documents: r.documents,
    bsonBytes,
    peakRssBytes: run.peakRssBytes,
    cpu: run.cpu,
    walBytes: r.walBytes,
    walLsnBytes: r.walLsnBytes,
    verificationSeconds: typeof r.extra?.verificationSeconds === 'number' ? r.extra.verificationSeconds : undefined,
    phases: r.phases,
    naiveReadSeconds: typeof r.extra?.readSeconds === 'number' ? r.extra.readSeconds : undefined,
    naiveInsertSeconds: typeof r.extra?.insertSeconds === 'number' ? r.extra.insertSeconds : undefined,
    syncSeconds:
      key === 'full' || key === 'full-sequential' || key === 'incremental' || key === 'ceiling' || key === 'full-rtt40'
        ? (r.groups ?? []).reduce((n, g) => n + g.seconds, 0)
        : undefined,
    copyBytes: key === 'write' || key === 'scan' ? r.bytes : undefined,
    changedRows: r.outputs?.changed !== undefined ? Number(r.outputs.changed) : undefined,
    groups: r.groups,
    problems: r.problems && r.problems.length > 0 ? r.problems : undefined,
  };
}

function storageTotals(tables: TableStorage[]): StorageResult {
  const sum = (f: (t: TableStorage) => number) => tables.reduce((n, t) => n + f(t), 0);
  return {
    tables,
    total: sum((t) => t.total),
    heap: sum((t) => t.heap),
    toast: sum((t) => t.toast),
    indexes: sum((t) => t.indexes),
    other: sum((t) => t.other),
    docColumn: sum((t) => t.docColumn),
    bsonColumn: sum((t) => t.bsonColumn),
    idColumn: sum((t) => t.idColumn),
    hashColumn: sum((t) => t.hashColumn),
    bsonBytes: sum((t) => t.bsonBytes),
  };
}

function writeChartAndReport(results: BenchResults, options: BenchOptions): void {
  mkdirSync(path.dirname(options.chartFile), { recursive: true });
  writeFileSync(options.chartFile, renderChart(results));
  mkdirSync(path.dirname(options.reportFile), { recursive: true });
  writeFileSync(options.reportFile, renderMarkdown(results, path.relative(path.dirname(options.reportFile), options.chartFile)));
}

/** The targets of `results`, evaluated afresh, keeping the CPU profiles (or why none) taken for earlier ones. */
function reevaluateTargets(results: BenchResults, earlier: readonly TargetResult[]): TargetResult[] {
  return evaluateTargets(results).map((t) => {
    const before = earlier.find((r) => r.id === t.id && (r.profile || r.profileSkipped));
    return before ? { ...t, profile: before.profile, profileSkipped: before.profileSkipped } : t;
  });
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2), repoRoot);
  if (options.render) {
    const results = JSON.parse(readFileSync(options.render, 'utf8')) as BenchResults;
    if (options.rssFrom) {
      const other = JSON.parse(readFileSync(options.rssFrom, 'utf8')) as BenchResults;
      if (!other.rssScaling) throw new Error(`${options.rssFrom} holds no RSS scaling measurement (it was not run with --rss-scaling)`);
      results.rssScaling = {
        ...other.rssScaling,
        note: `measured by the run of ${other.startedAt.slice(0, 16).replace('T', ' ')} UTC (${path.relative(repoRoot, options.rssFrom)}), on the same machine and stack`,
      };
    }
    // Targets are evaluated again, so a report re-rendered by newer code says what that code says.
    results.targets = reevaluateTargets(results, results.targets);
    writeChartAndReport(results, options);
    process.stdout.write(terminalReport(results));
    log(`rendered ${path.relative(repoRoot, options.chartFile)} and ${path.relative(repoRoot, options.reportFile)} from ${options.render}`);
    return;
  }
  await resolveStackEnv(options);
  ensureBundle(options);
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'supaneon-bench-'));
  const startedAt = new Date();
  const notes: string[] = [];
  const mongoUri = process.env.MONGODB_SRV_URL as string;

  log(`dataset: ${options.docs.toLocaleString('en-US')} documents in MongoDB database "${BENCH_DATABASE}"`);
  const mongo = new MongoClient(mongoUri);
  await mongo.connect();
  let dataset: DatasetInfo;
  try {
    dataset = await ensureDataset(mongo, BENCH_DATABASE, options.docs, options.seed, log);
  } finally {
    await mongo.close();
  }
  if (!dataset.reused) log(`dataset loaded in ${seconds(dataset.loadSeconds)}`);

  const pids: ServerPids = { ferretdb: findFerretDb(mongoUri) };
  const bench = new Bench(options, workDir, pids);
  const probe = await bench.run(bench.task('probe', dataset));
  const facts = probe.result.extra ?? {};
  pids.postmaster = typeof facts.postmasterPid === 'number' ? facts.postmasterPid : undefined;
  if (options.stackEnv) {
    notes.push(
      'measured on a dedicated instance of the local stack (scripts/stack/up.sh with its own ports, settings passed with --stack-env), ' +
        'so test runs on the shared stack did not write into the measured Postgres cluster or FerretDB (they still shared the CPU)',
    );
  }
  if (pids.ferretdb === undefined) notes.push('FerretDB CPU was not measured: no local FerretDB process serves MONGODB_SRV_URL');
  if (pids.postmaster === undefined) notes.push("Postgres CPU was not measured: the standby's postmaster is not a local process");
  const idle = await bench.run(bench.task('idle', dataset));
  const tools = mongoTools();
  const peers = 'missing' in tools ? { available: false, reason: tools.missing } : { available: true };
  if (!peers.available) notes.push(`peers not measured: ${peers.reason}`);

  const results: BenchResults = {
    schema: 1,
    startedAt: startedAt.toISOString(),
    finishedAt: '',
    totalSeconds: 0,
    command: measuringCommand(options),
    code: measuredCode(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
      memoryBytes: os.totalmem(),
      os: `${os.type()} ${os.release()}`,
      node: process.versions.node,
    },
    servers: {
      postgres: (facts.postgres as Record<string, string>) ?? {},
      lz4: facts.lz4 === true,
      mongo: String(facts.mongoVersion ?? 'unknown'),
      ferretdb: typeof facts.ferretdbVersion === 'string' ? facts.ferretdbVersion : undefined,
      note: 'all servers run on the measured machine: the source (FerretDB with its SQLite backend, or MONGODB_TEST_URI), the Neon API emulator and its PostgreSQL clusters (local, not Neon)',
    },
    dataset: {
      database: dataset.database,
      documents: dataset.documents,
      bsonBytes: dataset.bsonBytes,
      seed: options.seed,
      collections: dataset.collections.map((c) => ({ name: c.name, documents: c.documents })),
      loadSeconds: dataset.loadSeconds,
      reused: dataset.reused,
    },
    runs: options.runs,
    idleRssBytes: idle.peakRssBytes,
    rssSource: idle.rssSource === 'gnu-time' ? 'GNU time %M (whole process life)' : 'process.resourceUsage().maxRSS',
    measurements: {},
    targets: [],
    peers,
    notes,
  };

  let round = 0;
  let lastBackupBranch: string | undefined;
  try {
    for (const key of options.only) {
      const naiveRttSubset = Math.min(1, options.naiveRttDocs / dataset.documents);
      const fill = (text: string) =>
        text
          .replace(/\{rtt\}/g, String(options.rttMs))
          .replace(/\{subset\}/g, Math.round(naiveRttSubset * dataset.documents).toLocaleString('en-US'));
      const def = { ...LABELS[key], label: fill(LABELS[key].label), what: fill(LABELS[key].what) };
      if (key === 'write') {
        log('encoding the rows for the write limit (not measured)');
        await bench.run(bench.task('prepare-rows', dataset));
      }
      const dumpDir = path.join(workDir, 'dump');
      if (key === 'ceiling') {
        log('writing the dataset as a mongodump directory for the ceiling (not measured)');
        await bench.run(bench.task('prepare-dump', dataset, { dumpDir }));
      }
      let network: Network | undefined;
      if (NETWORKED.has(key)) {
        network = await startNetwork(options.rttMs);
        results.network = {
          rttMs: options.rttMs,
          note:
            `every connection of the measured process to MongoDB (through the benchmark's TCP proxy) and to Postgres (the emulator's endpoint entries, ` +
            `through the same relay) had ${options.rttMs} ms added to its round trip: half of it per direction, per chunk, without capping throughput; the Neon API calls were not delayed`,
        };
        log(`simulated network: ${options.rttMs} ms round trip to MongoDB (proxy) and to the project's Postgres endpoints`);
      }
      const runs: RunRecord[] = [];
      try {
        for (let i = 1; i <= options.runs; i++) {
          if (key === 'incremental') {
            round++;
            if (round > ROUNDS_PER_DATASET) throw new Error(`more than ${ROUNDS_PER_DATASET} incremental rounds in one run`);
            const mongoClient = new MongoClient(mongoUri);
            await mongoClient.connect();
            try {
              const changed = await applyRound(mongoClient, dataset.database, dataset.documents, options.seed, round);
              log(`round ${round}: ${changed.updated} updated, ${changed.deleted} deleted, ${changed.inserted} inserted in MongoDB`);
            } finally {
              await mongoClient.close();
            }
          }
          const extra: Partial<Task> =
            key === 'naive'
              ? { subset: options.naiveSubset }
              : key === 'naive-rtt40'
                ? { subset: naiveRttSubset }
                : key === 'verify' || key === 'verify-rtt40'
                  ? { backupBranch: lastBackupBranch }
                  : key === 'ceiling'
                    ? { dumpDir }
                    : {};
          if (network) extra.env = { MONGODB_SRV_URL: network.mongoUri };
          const countsBefore = await network?.counts();
          const run = await bench.run(bench.task(def.task, dataset, extra));
          const countsAfter = await network?.counts();
          if (run.result.outputs?.['branch-id']) lastBackupBranch = run.result.outputs['branch-id'];
          const rec = record(key, run, dataset);
          if (countsBefore && countsAfter) {
            rec.roundTrips = {
              mongoTurns: countsAfter.mongoTurns - countsBefore.mongoTurns,
              postgresTurns: countsAfter.postgresTurns - countsBefore.postgresTurns,
              mongoConnections: countsAfter.mongoConnections - countsBefore.mongoConnections,
              postgresConnections: countsAfter.postgresConnections - countsBefore.postgresConnections,
            };
          }
          runs.push(rec);
          log(
            `${def.label} run ${i}/${options.runs}: ${seconds(rec.wallSeconds)}, ${Math.round(rec.documents / rec.wallSeconds)} docs/s, ` +
              `peak RSS ${mb(rec.peakRssBytes)}${rec.walBytes !== undefined ? `, WAL ${mb(rec.walBytes)}` : ''}` +
              `${rec.verificationSeconds !== undefined ? `, verification ${seconds(rec.verificationSeconds)}` : ''}` +
              (rec.roundTrips
                ? `, round trips: MongoDB ${rec.roundTrips.mongoTurns} (${rec.roundTrips.mongoConnections} connections), Postgres ${rec.roundTrips.postgresTurns} (${rec.roundTrips.postgresConnections} connections)`
                : ''),
          );
        }
      } finally {
        await network?.close();
      }
      results.measurements[key] = summarise(
        key,
        def.label,
        def.what,
        runs,
        key === 'naive' || key === 'naive-rtt40' ? dataset.documents : undefined,
      );
      if (key === 'full') {
        const s = await bench.run(bench.task('storage', dataset));
        results.storage = storageTotals((s.result.extra?.tables as TableStorage[]) ?? []);
        log(`storage after the full backup: ${mb(results.storage.total)} for ${mb(results.storage.bsonBytes)} of BSON`);
      }
      log(`elapsed ${bench.elapsedMinutes().toFixed(1)} min`);
      publish(results, options, startedAt, true);
    }

    results.measuredSeconds = (Date.now() - startedAt.getTime()) / 1000;
    results.targets = evaluateTargets(results);
    await profileMissed(bench, results, dataset, lastBackupBranch);
    if (options.rssScaling) publish(results, options, startedAt, true);
    // Last: its backups of other databases make the standby drop this dataset's tables.
    if (options.rssScaling) await rssScaling(bench, options, results, log);
  } finally {
    log(
      'cleaning up: backup branches made by this run' +
        (options.keepData ? '' : ", the benchmark's schemas on the standby, the recovered database"),
    );
    await bench
      .run(bench.task('cleanup', dataset, { branchIds: bench.createdBranches, keepData: options.keepData }))
      .catch((err: Error) => {
        log(`cleanup failed: ${err.message}`);
      });
    rmSync(workDir, { recursive: true, force: true });
  }
  if (round > 0)
    notes.push(`the source database keeps ${round} incremental round(s) of changes until the next run undoes them before measuring`);

  publish(results, options, startedAt, false);
}

/**
 * Writes the JSON (named for its date and size), the chart and the report. Called after every measurement
 * too, marked partial, so a run stopped midway still leaves what it measured, labelled as such.
 */
function publish(results: BenchResults, options: BenchOptions, startedAt: Date, partial: boolean): void {
  const finished = new Date();
  const out: BenchResults = { ...results, notes: [...results.notes] };
  out.finishedAt = finished.toISOString();
  out.totalSeconds = (finished.getTime() - startedAt.getTime()) / 1000;
  out.targets = reevaluateTargets(out, results.targets);
  if (partial) {
    const missing = options.only.filter((k) => !out.measurements[k]);
    out.notes.push(`partial results: the run was still going (or was stopped) before measuring ${missing.join(', ')}`);
  } else if (out.totalSeconds > options.budgetMinutes * 60) {
    out.notes.push(`the run took ${(out.totalSeconds / 60).toFixed(1)} min, over the ${options.budgetMinutes} min budget`);
  }
  mkdirSync(options.resultsDir, { recursive: true });
  const json = `${JSON.stringify(out, null, 2)}\n`;
  const file = path.join(options.resultsDir, `${out.startedAt.slice(0, 10)}-${options.docs}.json`);
  writeFileSync(file, json);
  writeChartAndReport(out, options);
  if (!partial) {
    process.stdout.write(terminalReport(out));
    log(
      `wrote ${path.relative(repoRoot, file)}, ${path.relative(repoRoot, options.chartFile)}, ${path.relative(repoRoot, options.reportFile)} in ${(out.totalSeconds / 60).toFixed(1)} min`,
    );
  }
}

/**
 * Peak RSS of a full backup at two dataset sizes (each its own database, loaded once and kept).
 * One run per size: this is about memory, which does not vary between runs the way time does.
 */
async function rssScaling(bench: Bench, options: BenchOptions, results: BenchResults, say: (line: string) => void): Promise<void> {
  const points: NonNullable<BenchResults['rssScaling']>['points'] = [];
  const mongo = new MongoClient(process.env.MONGODB_SRV_URL as string);
  await mongo.connect();
  try {
    for (const docs of options.rssDocs) {
      const database = `${BENCH_DATABASE}_rss_${docs}`;
      say(`RSS scaling: ${docs.toLocaleString('en-US')} documents in "${database}"`);
      const dataset = await ensureDataset(mongo, database, docs, options.seed, say);
      const run = await bench.run(bench.task('full', dataset));
      points.push({
        documents: run.result.documents,
        bsonBytes: run.result.bytes,
        peakRssBytes: run.peakRssBytes,
        wallSeconds: run.result.wallSeconds,
        loadSeconds: dataset.loadSeconds,
      });
      say(`RSS scaling: ${docs.toLocaleString('en-US')} documents: peak RSS ${mb(run.peakRssBytes)} in ${seconds(run.result.wallSeconds)}`);
      await bench.run(bench.task('cleanup', dataset, { branchIds: [], keepData: false }));
    }
  } finally {
    await mongo.close();
  }
  results.rssScaling = { points };
}

/** Re-runs the measurement behind each missed target once under --cpu-prof, if the time budget allows. */
async function profileMissed(
  bench: Bench,
  results: BenchResults,
  dataset: DatasetInfo,
  lastBackupBranch: string | undefined,
): Promise<void> {
  const profileDir = path.join(bench.workDir, 'profiles');
  mkdirSync(profileDir, { recursive: true });
  // Profiles are tens of megabytes: kept outside the repository, named in the results.
  const outDir = path.join(os.tmpdir(), 'supaneon-bench-profiles');
  const done = new Map<MeasurementKey, ReturnType<typeof summariseProfile>>();
  for (const target of results.targets) {
    if (target.met !== false) continue;
    const key = PROFILE_FOR[target.id];
    if (!key) continue;
    if (!bench.options.profile) {
      target.profileSkipped = `not profiled (--no-profile); run \`npm run bench -- --only ${key}\` under --cpu-prof to see where the time goes`;
      continue;
    }
    const cached = done.get(key);
    if (cached) {
      target.profile = cached;
      continue;
    }
    const m = results.measurements[key];
    const expectedMinutes = m ? m.wallSeconds.max / 60 + 0.5 : 5;
    if (bench.elapsedMinutes() + expectedMinutes > bench.options.budgetMinutes) {
      target.profileSkipped = `skipped: one more ${key} run (~${expectedMinutes.toFixed(1)} min) would overrun the ${bench.options.budgetMinutes} min budget; raise --budget-minutes to get it`;
      continue;
    }
    log(`target "${target.title}" missed: profiling one more ${key} run`);
    const extra: Partial<Task> =
      key === 'verify' ? { backupBranch: lastBackupBranch } : key === 'ceiling' ? { dumpDir: path.join(bench.workDir, 'dump') } : {};
    const run = await bench.run(bench.task(LABELS[key].task, dataset, extra), profileDir);
    if (!run.profileFile) {
      target.profileSkipped = 'the profiled run wrote no .cpuprofile';
      continue;
    }
    mkdirSync(outDir, { recursive: true });
    const kept = path.join(outDir, `${results.startedAt.slice(0, 10)}-${dataset.documents}-${key}.cpuprofile`);
    writeFileSync(kept, readFileSync(run.profileFile));
    const summary = summariseProfile(kept, repoRoot);
    done.set(key, summary);
    target.profile = summary;
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
