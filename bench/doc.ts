/**
 * docs/PERFORMANCE.md, written from the results of a run so the text, the chart and the JSON always
 * tell the same numbers. The explanations are derived from the measurements (who used the CPU,
 * what takes the space), not written by hand around numbers that may change.
 */
import { cpu, mb, percent, rate, seconds } from './format.js';
import type { BenchResults, MeasurementResult } from './results.js';
import { measurementRows } from './report.js';
import { spread } from './stats.js';

function row(cells: (string | number)[]): string {
  return `| ${cells.map((c) => String(c).replace(/\|/g, '\\|')).join(' | ')} |`;
}

function range(s: { median: number; min: number; max: number }, f: (x: number) => string): string {
  return `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
}

/** One sentence on who used the CPU during a measurement, against the core-seconds the machine had. */
function cpuStory(m: MeasurementResult, cores: number): string | undefined {
  const { node, ferretdb, postgres } = m.cpu;
  if (node === null && ferretdb === null && postgres === null) return undefined;
  // The Node figure includes about a second of process start-up: meaningless for short runs.
  if (m.wallSeconds.median < 10) return undefined;
  const wall = m.wallSeconds.median;
  const parts: string[] = [];
  if (ferretdb !== null) parts.push(`FerretDB ${ferretdb.toFixed(0)} s`);
  if (node !== null) parts.push(`the Node process ${node.toFixed(0)} s (start-up included)`);
  if (postgres !== null) parts.push(`Postgres ${postgres.toFixed(0)} s`);
  const used = (node ?? 0) + (ferretdb ?? 0) + (postgres ?? 0);
  return (
    `${m.label}: ${seconds(wall)} of wall time, CPU used by ${parts.join(', ')} ` +
    `(${used.toFixed(0)} of the ${(wall * cores).toFixed(0)} core-seconds the ${cores} cores offered, ${percent(used / (wall * cores))}).`
  );
}

export function renderMarkdown(r: BenchResults, chartPath: string): string {
  const m = r.measurements;
  const d = r.dataset;
  const out: string[] = [];
  const source = r.servers.ferretdb ? `FerretDB ${r.servers.ferretdb} with its SQLite backend` : `MongoDB ${r.servers.mongo}`;
  out.push(
    '# Performance',
    '',
    `How fast supaneon-sync backs up, verifies and recovers, measured against what this machine can do at best ` +
      `(reading MongoDB, writing Postgres, scanning Postgres) and against the script people write by hand. ` +
      `Every number below comes from one run of \`${r.command}\` (${r.startedAt.slice(0, 16).replace('T', ' ')} UTC, ` +
      `${(r.totalSeconds / 60).toFixed(1)} minutes in all)` +
      (r.code ? ` on commit \`${r.code.commit.slice(0, 12)}\`${r.code.srcModified ? ' with uncommitted changes in `src/`' : ''}` : '') +
      '; the raw results are in `bench/results/`.',
    '',
    `![Documents per second of every measurement](${chartPath})`,
    '',
    '## The machine and the servers',
    '',
    `- **${r.machine.cpus} cores** (${r.machine.cpuModel}), **${(r.machine.memoryBytes / 2 ** 30).toFixed(1)} GiB RAM**, ${r.machine.os}, Node ${r.machine.node}. ` +
      'The machine was shared with other work while the benchmark ran, so single runs vary; each figure is the median of ' +
      `${r.runs} runs with the minimum and maximum beside it.`,
    `- **Source: ${source}**, on the same machine. FerretDB turns every document it returns into BSON from its SQLite ` +
      'storage, which costs far more CPU than MongoDB serving BSON from WiredTiger: on this stack the source is the read ' +
      'bottleneck, and every measurement that reads MongoDB is bounded by it (see the read limit).',
    `- **Target: PostgreSQL ${r.servers.postgres.server_version ?? '?'}, local** (the Neon API emulator's branch clusters, TLS and ` +
      'scram-sha-256 as on Neon), **not Neon**: no network round trips and no Neon storage layer, so Postgres-bound numbers here ' +
      `are better than Neon would give. Settings: ${Object.entries(r.servers.postgres)
        .filter(([k]) => k !== 'server_version')
        .map(([k, v]) => `${k}=${v}`)
        .join(
          ', ',
        )}; lz4 TOAST compression ${r.servers.lz4 ? 'available' : 'not available'} (the product and the write limit both use the default pglz).`,
    `- **Dataset**: ${d.documents.toLocaleString('en-US')} generated documents (seed ${d.seed}), ${mb(d.bsonBytes)} of BSON, in ` +
      `${d.collections.map((c) => `${c.name} (${c.documents.toLocaleString('en-US')})`).join(', ')}. Sizes from about 200 B to 64 KB, ` +
      'most small with a long tail; nested objects and arrays; every BSON type FerretDB accepts (double, string, object, array, ' +
      'binary subtypes 0/4/5, ObjectId, bool, date, null, regex, int32, timestamp, int64); ids are ObjectIds, strings and int64.',
    `- Every measurement runs in a fresh Node process; peak RSS is that process's maximum resident set (${r.rssSource}). ` +
      "CPU seconds of FerretDB and of the standby's Postgres cluster are read from /proc around each run.",
    '',
    '## Results',
    '',
    row(['Measurement', 'Time, median (min–max)', 'Docs/s', 'MB/s (BSON)', 'Peak RSS', 'WAL', 'CPU s: Node / FerretDB / Postgres']),
    row(['---', '---:', '---:', '---:', '---:', '---:', '---:']),
  );
  for (const x of measurementRows(r)) {
    const time = x.extrapolated ? x.extrapolated.wallSeconds : x.wallSeconds;
    out.push(
      row([
        x.extrapolated
          ? `${x.label} — **extrapolated** from ${x.extrapolated.fromDocuments.toLocaleString('en-US')} documents (measured ${seconds(x.wallSeconds.median)})`
          : x.label,
        range(time, seconds),
        rate(x.docsPerSecond.median),
        x.mbPerSecond.median.toFixed(1),
        mb(x.peakRssBytes.median),
        x.walBytes ? mb(x.walBytes.median) : '–',
        `${cpu(x.cpu.node)} / ${cpu(x.cpu.ferretdb)} / ${cpu(x.cpu.postgres)}`,
      ]),
    );
    if (x.syncSeconds)
      out.push(
        row([
          '↳ of which the per-collection sync (read, encode, COPY, apply)',
          range(x.syncSeconds, seconds),
          rate(x.runs[0].documents / x.syncSeconds.median),
          '',
          '',
          '',
          '',
        ]),
      );
    if (x.verificationSeconds)
      out.push(
        row([
          '↳ of which the checks alone (verification)',
          range(x.verificationSeconds, seconds),
          rate(x.runs[0].documents / x.verificationSeconds.median),
          '',
          '',
          '',
          '',
        ]),
      );
  }
  out.push('', 'What each line measures:', '');
  for (const x of measurementRows(r)) out.push(`- **${x.label}**: ${x.what}.`);
  out.push('', "MB/s counts the source documents' BSON bytes for every line, so lines compare on one scale.", '');

  out.push('## Targets', '', row(['Target', 'Measured', 'Goal', 'Verdict', 'Details']), row(['---', '---:', '---', '---', '---']));
  for (const t of r.targets) {
    const verdict = t.met === null ? 'not measured' : t.met ? '**met**' : '**missed**';
    out.push(row([t.title, t.shown, t.limit, verdict, t.detail]));
  }
  const missed = r.targets.filter((t) => t.met === false);
  if (missed.length > 0) {
    out.push('', '### Missed targets and why', '');
    const shown = new Map<string, string>();
    for (const t of missed) {
      out.push(`**${t.title}** — ${t.shown} against ${t.limit}. ${t.detail}.`, '');
      if (t.remedy) out.push(`Why, and what would move it: ${t.remedy}.`, '');
      const earlier = t.profile ? shown.get(t.profile.file) : undefined;
      if (t.profile && earlier) out.push(`CPU profile: the same run as for "${earlier}" above.`, '');
      else if (t.profile) {
        shown.set(t.profile.file, t.title);
        out.push(
          `CPU profile of one more run (\`node --cpu-prof\`): ${(t.profile.idleShare * 100).toFixed(0)}% of the process's time idle, ` +
            `waiting on the servers; ${(t.profile.gcShare * 100).toFixed(0)}% garbage collection. Top functions by self time:`,
          '',
          row(['Self time', 'Function']),
          row(['---:', '---']),
          ...t.profile.top.slice(0, 10).map((e) => row([`${(e.share * 100).toFixed(1)}%`, `\`${e.name}\``])),
          '',
        );
      }
      if (t.profileSkipped) out.push(`Profile: ${t.profileSkipped}.`, '');
    }
  }

  out.push(
    '## Where the time goes',
    '',
    'CPU seconds per process during each measurement of at least 10 s (medians), against the core-seconds the machine offered:',
    '',
  );
  for (const x of measurementRows(r)) {
    const story = cpuStory(x, r.machine.cpus);
    if (story) out.push(`- ${story}`);
  }
  if (m.read && m.full) {
    out.push(
      '',
      `The read limit is what the source can serve when nothing else of ours runs: ${rate(m.read.docsPerSecond.median)} documents/s. ` +
        `A backup reads the same documents and, on the same ${r.machine.cpus} cores, also encodes them (Node) and writes them (Postgres), ` +
        `so it competes with the source for the CPU; the full backup ran at ${rate(m.full.docsPerSecond.median)} documents/s overall, ` +
        `${percent(m.full.docsPerSecond.median / m.read.docsPerSecond.median)} of the read limit.`,
    );
  }
  if (m.full && m['full-sequential']) {
    const seq = m['full-sequential'];
    out.push(
      '',
      `Reading several collections at once: the full backup took ${seconds(m.full.wallSeconds.median)} (per-collection sync ` +
        `${seconds(m.full.phases?.sync ?? m.full.syncSeconds?.median ?? NaN)}); with its collections read one after the other ${seconds(seq.wallSeconds.median)} ` +
        `(sync ${seconds(seq.phases?.sync ?? seq.syncSeconds?.median ?? NaN)}), ${(seq.wallSeconds.median / m.full.wallSeconds.median).toFixed(2)}× as long.`,
    );
  }
  for (const key of ['full', 'full-sequential', 'incremental'] as const) {
    const p = m[key]?.phases;
    if (!p) continue;
    out.push(
      '',
      `${m[key]!.label}, phases (medians): prepare ${seconds(p.prepare)} (connections, Neon API checks, lock, run record, a document-count ` +
        `estimate per collection), per-collection sync ${seconds(p.sync)} (read, encode, COPY into staging and apply the changed rows, or COPY straight into a new or empty table), ` +
        `commit ${seconds(p.commit)}, snapshot branch ${seconds(p.snapshot)}, finish ${seconds(p.finish)} (retention, summary).`,
    );
  }
  if (r.servers.ferretdb && m.full?.phases && m.read && m.full.phases.prepare > 0.3 * m.read.wallSeconds.median) {
    out.push(
      '',
      `On FerretDB the prepare phase is long because \`estimatedDocumentCount\` (used for the progress ETA) makes FerretDB count ` +
        `by reading the whole collection, where MongoDB answers from metadata; \`collStats\` gives FerretDB's count in milliseconds. ` +
        `Here prepare took ${seconds(m.full.phases.prepare)} against a read limit of ${seconds(m.read.wallSeconds.median)}.`,
    );
  }
  if (m.full?.phases) {
    out.push(
      '',
      'The snapshot branch costs seconds here because the emulator makes a branch by copying the whole Postgres cluster ' +
        '(`pg_basebackup`); Neon makes a branch copy-on-write, in about a second whatever the data size.',
    );
  }
  const naive = m.naive;
  const naiveInsert = naive?.runs.map((x) => x.naiveInsertSeconds);
  if (naive && naiveInsert?.every((v): v is number => v !== undefined)) {
    const perInsertMs = (spread(naiveInsert).median / naive.runs[0].documents) * 1000;
    const readShare = spread(naive.runs.map((x) => x.naiveReadSeconds ?? 0)).median / naive.wallSeconds.median;
    out.push(
      '',
      `The naive script spent ${percent(readShare)} of its time in \`find().toArray()\` and the rest in INSERTs at ` +
        `${perInsertMs.toFixed(2)} ms each over a local TLS connection. Against Neon every INSERT also waits for a network round trip ` +
        '(not measured here), so the gap to COPY, which streams without a round trip per row, widens with the distance to Neon; ' +
        'here both are bounded by how fast the source serves documents.',
    );
  }
  if (m.full?.walBytes && m.full.walLsnBytes) {
    out.push(
      '',
      `WAL is counted as generated by Postgres (\`pg_stat_wal.wal_bytes\`, full-page images included). The WAL position ` +
        `(\`pg_current_wal_lsn\`) moved further, ${mb(m.full.walLsnBytes.median)} for the full backup, because the emulator's ` +
        '`pg_basebackup` switches to a new 16 MB WAL segment when it copies the cluster for the snapshot branch, and a switch skips the ' +
        'unused rest of the segment. Both are in the JSON.',
    );
  }

  if (r.storage) {
    const s = r.storage;
    out.push(
      '',
      '## Storage',
      '',
      `After a full backup the standby holds ${mb(s.total)} for ${mb(s.bsonBytes)} of BSON (${(s.total / s.bsonBytes).toFixed(2)}×). ` +
        'Each document is kept twice on purpose: as `bson` (the exact bytes, which restore checks and recover writes back) and as ' +
        '`doc` (jsonb, for SQL), plus its `_id` key, a 32-byte hash and the primary-key index.',
      '',
      row(['Table', 'Rows', 'Total', 'Heap', 'TOAST', 'Indexes', 'doc (jsonb)', 'bson', 'BSON bytes']),
      row(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:']),
      ...s.tables.map((t) =>
        row([
          t.table,
          t.rows.toLocaleString('en-US'),
          mb(t.total),
          mb(t.heap),
          mb(t.toast),
          mb(t.indexes),
          mb(t.docColumn),
          mb(t.bsonColumn),
          mb(t.bsonBytes),
        ]),
      ),
      row([
        '**all**',
        s.tables.reduce((n, t) => n + t.rows, 0).toLocaleString('en-US'),
        mb(s.total),
        mb(s.heap),
        mb(s.toast),
        mb(s.indexes),
        mb(s.docColumn),
        mb(s.bsonColumn),
        mb(s.bsonBytes),
      ]),
      '',
      'Column sizes are `pg_column_size` sums, i.e. as stored (compressed when Postgres compressed them, in TOAST when the row ' +
        "was too large for the heap page). Heap holds small rows whole; TOAST holds the large documents' `doc` and `bson` values; " +
        'indexes are the `_id` primary keys.',
    );
  }

  out.push('', '## Memory', '');
  const modes = (['full', 'incremental', 'verify', 'recover'] as const).filter((k) => m[k]);
  if (modes.length > 0) {
    out.push(
      `Peak RSS per mode (maximum over the runs): ${modes.map((k) => `${m[k]!.label.toLowerCase()} ${mb(m[k]!.peakRssBytes.max)}`).join(', ')}. ` +
        (r.idleRssBytes
          ? `A measuring process that only loads the modules (Node, the TypeScript loader, the drivers) peaks at ${mb(r.idleRssBytes)}; the bundled action carries no TypeScript loader. `
          : '') +
        'A CPU profile does not show memory; the per-mode peaks above say which modes hold more than the limit.',
    );
  }
  if (r.rssScaling?.points.length === 2) {
    const [a, b] = r.rssScaling.points;
    const apart = Math.abs(b.peakRssBytes - a.peakRssBytes) / a.peakRssBytes;
    out.push(
      '',
      `Full backup at ${a.documents.toLocaleString('en-US')} documents: peak RSS ${mb(a.peakRssBytes)} (${seconds(a.wallSeconds)}); at ` +
        `${b.documents.toLocaleString('en-US')} documents: ${mb(b.peakRssBytes)} (${seconds(b.wallSeconds)}), ${percent(apart)} apart` +
        (apart <= 0.2 ? ': documents are streamed, memory does not grow with the data.' : '.') +
        (b.documents < 400_000
          ? ` The goal compares 50,000 with 400,000 documents; ${b.documents.toLocaleString('en-US')} was the largest size that fit the time available.`
          : '') +
        (r.rssScaling.note ? ` (${r.rssScaling.note}.)` : ''),
    );
  } else {
    out.push(
      '',
      `Flatness with data size: ${r.rssScaling?.note ?? 'not measured in this run; `npm run bench -- --rss-scaling` runs a full backup at 50,000 and 400,000 documents and compares their peak RSS'}.`,
    );
  }

  out.push('', '## Time budget', '');
  const minutes = r.totalSeconds / 60;
  if (r.notes.some((n) => n.startsWith('partial results'))) {
    out.push(`Partial results: the run had taken ${minutes.toFixed(1)} minutes when these were written.`);
  } else if (d.documents >= 200_000) {
    const measured = r.measuredSeconds !== undefined ? r.measuredSeconds / 60 : minutes;
    out.push(
      `The measurements of this run (dataset load included) took ${measured.toFixed(1)} minutes for ${d.documents.toLocaleString('en-US')} documents ` +
        `(goal: under 30 minutes for 200,000): ${measured < 30 ? '**met**' : '**missed**'}.` +
        (r.measuredSeconds !== undefined && minutes - measured > 0.1
          ? ` With the profiled re-runs of missed targets and the clean-up, the whole run took ${minutes.toFixed(1)} minutes.`
          : ''),
    );
  } else {
    const projected = minutes * (200_000 / d.documents);
    out.push(
      `This run took ${minutes.toFixed(1)} minutes for ${d.documents.toLocaleString('en-US')} documents. A run at the goal's 200,000 documents ` +
        `(goal: under 30 minutes) would take about ${projected.toFixed(0)} minutes here — a linear projection from this run, not a measurement — ` +
        `which is why this run is smaller: every measurement reads the source at least three times, and FerretDB served ` +
        `${m.read ? rate(m.read.docsPerSecond.median) : '?'} documents/s on this shared machine.`,
    );
  }

  out.push(
    '',
    '## How it is measured',
    '',
    '- `npm run bench -- --docs 200000` (options: `npm run bench -- --help`). It starts the local stack if needed, builds `dist/` from ' +
      '`src/` (`npm run build`), loads the dataset into the database `bench` once (later runs reuse it), and runs the product as users ' +
      "run it: the action's bundle `dist/index.js` in a process of its own, inputs as `INPUT_*` variables, outputs read from " +
      "`GITHUB_OUTPUT`, with `databases: bench`, so nothing else on the stack is read. A product measurement's time runs from that " +
      "process's start to its exit, and its peak RSS and CPU are that process's own (GNU time).",
    '- Pipeline ceiling: the dataset written once as a mongodump directory (the same generated documents, not timed), then ' +
      "`backup` with `source-dump-dir` into a standby without the database's tables: the product's whole pipeline with a source " +
      'that is not the bottleneck, compared with the write limit (a throughput ratio: write-limit time / ceiling time).',
    `- Network: the \`-rtt40\` measurements run over a simulated network adding ${r.network?.rttMs ?? 40} ms to every round trip ` +
      '(`--rtt-ms`): `devkit/latency-proxy.ts` forwards each chunk half the round trip after it arrived, in each direction, in order, ' +
      'without serializing chunks (throughput is not capped, only latency added). It sits between the measured process and MongoDB ' +
      "(the process gets a `MONGODB_SRV_URL` pointing at it) and, through the Neon emulator's bench-only network setting " +
      "(`PUT /__emulator/projects/{id}/network`), in the emulator's endpoint entries, raw TCP in front of TLS: every Postgres " +
      'connection (the standby URL and the hosts the Neon API hands out) pays it for its TLS handshake, authentication and every ' +
      "statement. The Neon API's HTTP calls are not delayed. The relay counts turns (the client speaking again after the server " +
      'answered: round trips the client did not overlap with its previous request) and connections per server, recorded per run.',
    '- Full backup: before each run the `bench` schema is dropped from the standby, so every run writes into an empty standby. ' +
      'Incremental backup: before each run 1% of every collection is changed in MongoDB (three shards updated, one deleted, as many ' +
      "documents inserted); only the backup is timed. The full backup reads up to 4 collections at once (the product's default); " +
      '`full-sequential` is the same backup with its collections read one after the other (input `parallel-collections: 1`), ' +
      'so the two medians show what reading at once gains on this source.',
    '- WAL: on the standby around each backup, the WAL generated (`pg_stat_wal.wal_bytes`, which the targets use) and the distance ' +
      'the WAL position moved (`pg_wal_lsn_diff(pg_current_wal_lsn(), <before>)`).',
    '- Restore verification: the `restore` mode with `verify: full` of the run\'s newest backup branch; "the checks alone" is the time ' +
      'inside its per-collection verification groups, which the target compares with a plain `COPY … TO STDOUT` scan of the same tables ' +
      '(the `scan` measurement: every column of every table read once and discarded; the per-row pass reads the same columns in one COPY).',
    '- Recover reads the standby (`backup-branch: standby`) and writes `recovered_bench` in the same FerretDB, dropped before each run.',
    `- Naive baseline: ${Math.round((m.naive?.extrapolated ? m.naive.extrapolated.fromDocuments / m.naive.extrapolated.toDocuments : 0.1) * 100)}% of each collection; its time is scaled to the whole dataset and always labelled extrapolated. ` +
      `Over the network (\`naive-rtt40\`) it inserts ${m['naive-rtt40']?.extrapolated ? m['naive-rtt40'].extrapolated.fromDocuments.toLocaleString('en-US') : 'a subset of'} documents (\`--naive-rtt-docs\`), extrapolated the same way.`,
    '- A missed target is re-run once under `node --cpu-prof` (time budget permitting) and its top functions are listed above.',
  );
  if (r.notes.length > 0) out.push('', 'Notes from this run:', '', ...r.notes.map((n) => `- ${n}`));
  out.push('');
  return out.join('\n');
}
