/** `npm run bench -- [options]`: what to measure and where. */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_SEED } from '../devkit/generate.js';

/**
 * In the order they run: the limits first (the ceiling is a backup from a dump, next to the write
 * limit), then what the targets need most, recover, and last the product and the naive script again
 * over the simulated network (--rtt-ms; the keys name the default round trip, 40 ms).
 */
export const MEASUREMENTS = [
  'read',
  'write',
  'ceiling',
  'full',
  'full-sequential',
  'naive',
  'incremental',
  'scan',
  'verify',
  'recover',
  'full-rtt40',
  'naive-rtt40',
  'verify-rtt40',
  'recover-rtt40',
] as const;
export type MeasurementKey = (typeof MEASUREMENTS)[number];

export interface BenchOptions {
  docs: number;
  runs: number;
  seed: number;
  only: MeasurementKey[];
  rssScaling: boolean;
  rssDocs: [number, number];
  naiveSubset: number;
  /** Round trip (ms) of the simulated network the -rtt40 measurements run over. */
  rttMs: number;
  /** Documents the naive script inserts over the network (spread over the collections), extrapolated. */
  naiveRttDocs: number;
  /** Build dist/ before measuring (false: refuse when dist/ is older than src/). */
  build: boolean;
  stackEnv: string | undefined;
  keepData: boolean;
  profile: boolean;
  budgetMinutes: number;
  resultsDir: string;
  chartFile: string;
  reportFile: string;
  /** Only re-render the chart and the report from this results file; measure nothing. */
  render: string | undefined;
  /** With --render: take the RSS scaling measurement from this other results file (named in the report). */
  rssFrom: string | undefined;
}

export const USAGE = `usage: npm run bench -- [options]
  --docs N            documents in the dataset, spread over 4 collections (default 200000)
  --runs N            runs per measurement; the median is reported with min and max (default 3, at least 3)
  --seed N            generator seed (default ${DEFAULT_SEED})
  --only a,b,...      measure only these of: ${MEASUREMENTS.join(', ')} (default all)
  --rss-scaling       also run a full backup at --rss-docs sizes and compare peak RSS
  --rss-docs A,B      dataset sizes for --rss-scaling (default 50000,400000)
  --naive-subset F    share of each collection the naive baseline measures (default 0.1)
  --rtt-ms N          round trip of the simulated network (devkit/latency-proxy.ts) the full-rtt40,
                      naive-rtt40, verify-rtt40 and recover-rtt40 measurements run over (default 40)
  --naive-rtt-docs N  documents the naive script inserts over that network, extrapolated (default 1000)
  --no-build          do not build dist/ first (the product is measured as its bundle, dist/index.js;
                      refused when dist/ is older than src/)
  --stack-env FILE    read connection settings from this env file instead of starting the repository's stack
  --keep-data         leave the benchmark's tables on the standby afterwards
  --no-profile        do not re-run a measurement under --cpu-prof when its target is missed
  --budget-minutes M  time budget; profiles that would overrun it are skipped and say so (default 30)
  --results DIR       where the JSON results go (default bench/results)
  --chart FILE        the SVG chart (default docs/performance.svg)
  --report FILE       the Markdown report (default docs/PERFORMANCE.md)
  --render FILE       measure nothing: re-render the chart and the report from a results JSON file
  --rss-from FILE     with --render: add the RSS scaling measured by another run (its file is named in the report)`;

function positiveInt(name: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min} (got "${value}")\n${USAGE}`);
  return n;
}

export function parseOptions(argv: string[], repoRoot: string): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      docs: { type: 'string' },
      runs: { type: 'string' },
      seed: { type: 'string' },
      only: { type: 'string' },
      'rss-scaling': { type: 'boolean', default: false },
      'rss-docs': { type: 'string' },
      'naive-subset': { type: 'string' },
      'rtt-ms': { type: 'string' },
      'naive-rtt-docs': { type: 'string' },
      'no-build': { type: 'boolean', default: false },
      'stack-env': { type: 'string' },
      'keep-data': { type: 'boolean', default: false },
      'no-profile': { type: 'boolean', default: false },
      'budget-minutes': { type: 'string' },
      results: { type: 'string' },
      chart: { type: 'string' },
      report: { type: 'string' },
      render: { type: 'string' },
      'rss-from': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const only = values.only
    ? values.only
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : [...MEASUREMENTS];
  for (const key of only) {
    if (!(MEASUREMENTS as readonly string[]).includes(key))
      throw new Error(`--only: unknown measurement "${key}"; choose from ${MEASUREMENTS.join(', ')}`);
  }
  const rssDocs = (values['rss-docs'] ?? '50000,400000').split(',').map((s) => positiveInt('rss-docs', s.trim(), 0, 100));
  if (rssDocs.length !== 2) throw new Error('--rss-docs takes two sizes, e.g. 50000,400000');
  const subset = values['naive-subset'] === undefined ? 0.1 : Number(values['naive-subset']);
  if (!(subset > 0 && subset <= 1)) throw new Error(`--naive-subset must be in (0, 1] (got "${values['naive-subset']}")`);
  return {
    docs: positiveInt('docs', values.docs, 200_000, 100),
    runs: positiveInt('runs', values.runs, 3, 3),
    seed: positiveInt('seed', values.seed, DEFAULT_SEED, 0),
    only: MEASUREMENTS.filter((m) => only.includes(m)),
    rssScaling: values['rss-scaling'] ?? false,
    rssDocs: [rssDocs[0], rssDocs[1]],
    naiveSubset: subset,
    rttMs: positiveInt('rtt-ms', values['rtt-ms'], 40),
    naiveRttDocs: positiveInt('naive-rtt-docs', values['naive-rtt-docs'], 1000, 10),
    build: !(values['no-build'] ?? false),
    stackEnv: values['stack-env'] ? path.resolve(values['stack-env']) : undefined,
    keepData: values['keep-data'] ?? false,
    profile: !(values['no-profile'] ?? false),
    budgetMinutes: positiveInt('budget-minutes', values['budget-minutes'], 30),
    resultsDir: path.resolve(repoRoot, values.results ?? 'bench/results'),
    chartFile: path.resolve(repoRoot, values.chart ?? 'docs/performance.svg'),
    reportFile: path.resolve(repoRoot, values.report ?? 'docs/PERFORMANCE.md'),
    render: values.render ? path.resolve(values.render) : undefined,
    rssFrom: values['rss-from'] ? path.resolve(values['rss-from']) : undefined,
  };
}
