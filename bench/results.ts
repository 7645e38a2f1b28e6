/** The shape of bench/results/*.json, and how repeated runs are summarised into it. */
import type { MeasurementKey } from './options.js';
import type { ProfileSummary } from './profile.js';
import type { BackupPhases, GroupTiming } from './protocol.js';
import type { CpuSeconds } from './spawn.js';
import { spread, type Spread } from './stats.js';
import type { TableStorage } from './tasks/inspect.js';

export interface RunRecord {
  wallSeconds: number;
  documents: number;
  /** Source BSON bytes this run processed (the MB/s basis for every measurement). */
  bsonBytes: number;
  peakRssBytes: number;
  cpu: CpuSeconds;
  walBytes?: number;
  walLsnBytes?: number;
  /** restore: seconds inside the product's "Verifying …" groups (the checks, without branch creation). */
  verificationSeconds?: number;
  /** backup: seconds inside the product's per-collection groups (read, encode, COPY, apply), without the branch work. */
  syncSeconds?: number;
  phases?: BackupPhases;
  /** naive: seconds in find().toArray() and in the INSERTs. */
  naiveReadSeconds?: number;
  naiveInsertSeconds?: number;
  /** write / scan: COPY bytes moved. */
  copyBytes?: number;
  changedRows?: number;
  groups?: GroupTiming[];
  problems?: string[];
  /** Over the simulated network: turns (round trips the product waited for) and connections, per server. */
  roundTrips?: RoundTrips;
}

/** Counted by the latency relay (devkit/latency-proxy.ts RelayCounts), per server. */
export interface RoundTrips {
  mongoTurns: number;
  postgresTurns: number;
  mongoConnections: number;
  postgresConnections: number;
}

export interface MeasurementResult {
  key: MeasurementKey;
  label: string;
  what: string;
  runs: RunRecord[];
  wallSeconds: Spread;
  docsPerSecond: Spread;
  mbPerSecond: Spread;
  peakRssBytes: Spread;
  /** WAL generated (pg_stat_wal). */
  walBytes?: Spread;
  /** pg_current_wal_lsn distance. */
  walLsnBytes?: Spread;
  verificationSeconds?: Spread;
  syncSeconds?: Spread;
  /** backup: median seconds of each phase. */
  phases?: BackupPhases;
  /** Median CPU seconds per process during a run. */
  cpu: { node: number | null; ferretdb: number | null; postgres: number | null };
  /** Naive baseline: measured on a subset, scaled to the whole dataset. */
  extrapolated?: { fromDocuments: number; toDocuments: number; wallSeconds: Spread };
  /** Medians of the runs' round trips over the simulated network. */
  roundTrips?: RoundTrips;
}

export interface TargetResult {
  id: string;
  title: string;
  /** The measured ratio (or value) the target is about; null when not measured this run. */
  value: number | null;
  /** How the value is written, e.g. "1.21×" or "212 MB". */
  shown: string;
  limit: string;
  met: boolean | null;
  detail: string;
  /** For a missed target: what holds it back and what would move it. */
  remedy?: string;
  profile?: ProfileSummary;
  profileSkipped?: string;
}

/** The storage of every table of the run, and their sums (the same measures, without table and rows). */
export interface StorageResult extends Omit<TableStorage, 'table' | 'rows'> {
  tables: TableStorage[];
}

export interface RssScalingResult {
  points: { documents: number; bsonBytes: number; peakRssBytes: number; wallSeconds: number; loadSeconds: number }[];
  note?: string;
}

export interface BenchResults {
  schema: 1;
  startedAt: string;
  finishedAt: string;
  totalSeconds: number;
  /** Seconds until the last measurement ended: the total without the profiled re-runs of missed targets and the clean-up. */
  measuredSeconds?: number;
  command: string;
  /** The product code measured: git commit of the checkout, and whether src/ had uncommitted changes. */
  code?: { commit: string; srcModified: boolean };
  machine: { cpus: number; cpuModel: string; memoryBytes: number; os: string; node: string };
  servers: {
    postgres: Record<string, string>;
    lz4: boolean;
    mongo: string;
    ferretdb?: string;
    note: string;
  };
  dataset: {
    database: string;
    documents: number;
    bsonBytes: number;
    seed: number;
    collections: { name: string; documents: number }[];
    loadSeconds: number;
    reused: boolean;
  };
  runs: number;
  idleRssBytes?: number;
  rssSource: string;
  measurements: Partial<Record<MeasurementKey, MeasurementResult>>;
  /** The simulated network the -rtt40 measurements ran over (bench/network.ts). */
  network?: { rttMs: number; note: string };
  storage?: StorageResult;
  rssScaling?: RssScalingResult;
  /**
   * mongodump and mongorestore, the tools users already trust, measured side by side when this
   * machine has them (devkit/mongo-tools.ts); otherwise why they are missing.
   */
  peers?: { available: boolean; reason?: string };
  targets: TargetResult[];
  notes: string[];
}

function medianOrNull(values: (number | null)[]): number | null {
  const present = values.filter((v): v is number => v !== null);
  return present.length === values.length && present.length > 0 ? spread(present).median : null;
}

export function summarise(key: MeasurementKey, label: string, what: string, runs: RunRecord[], extrapolateTo?: number): MeasurementResult {
  const factor = extrapolateTo !== undefined && runs[0].documents > 0 ? extrapolateTo / runs[0].documents : undefined;
  const result: MeasurementResult = {
    key,
    label,
    what,
    runs,
    wallSeconds: spread(runs.map((r) => r.wallSeconds)),
    docsPerSecond: spread(runs.map((r) => r.documents / r.wallSeconds)),
    mbPerSecond: spread(runs.map((r) => r.bsonBytes / 1e6 / r.wallSeconds)),
    peakRssBytes: spread(runs.map((r) => r.peakRssBytes)),
    cpu: {
      node: medianOrNull(runs.map((r) => r.cpu.node)),
      ferretdb: medianOrNull(runs.map((r) => r.cpu.ferretdb)),
      postgres: medianOrNull(runs.map((r) => r.cpu.postgres)),
    },
  };
  if (runs.every((r) => r.walBytes !== undefined)) result.walBytes = spread(runs.map((r) => r.walBytes as number));
  if (runs.every((r) => r.walLsnBytes !== undefined)) result.walLsnBytes = spread(runs.map((r) => r.walLsnBytes as number));
  if (runs.every((r) => r.verificationSeconds !== undefined)) {
    result.verificationSeconds = spread(runs.map((r) => r.verificationSeconds as number));
  }
  if (runs.every((r) => r.syncSeconds !== undefined)) result.syncSeconds = spread(runs.map((r) => r.syncSeconds as number));
  if (runs.every((r) => r.phases !== undefined)) {
    const phase = (k: keyof BackupPhases) => spread(runs.map((r) => (r.phases as BackupPhases)[k])).median;
    result.phases = {
      prepare: phase('prepare'),
      sync: phase('sync'),
      commit: phase('commit'),
      snapshot: phase('snapshot'),
      finish: phase('finish'),
    };
  }
  if (runs.every((r) => r.roundTrips !== undefined)) {
    const median = (k: keyof RoundTrips) => spread(runs.map((r) => (r.roundTrips as RoundTrips)[k])).median;
    result.roundTrips = {
      mongoTurns: median('mongoTurns'),
      postgresTurns: median('postgresTurns'),
      mongoConnections: median('mongoConnections'),
      postgresConnections: median('postgresConnections'),
    };
  }
  if (factor !== undefined && extrapolateTo !== undefined) {
    result.extrapolated = {
      fromDocuments: runs[0].documents,
      toDocuments: extrapolateTo,
      wallSeconds: spread(runs.map((r) => r.wallSeconds * (extrapolateTo / r.documents))),
    };
  }
  return result;
}
