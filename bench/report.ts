/** The terminal report: one row per measurement, then the targets, met or missed. */
import { cpu, mb, rate, seconds } from './format.js';
import type { BenchResults, MeasurementResult } from './results.js';

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

export function measurementRows(r: BenchResults): MeasurementResult[] {
  return Object.values(r.measurements).filter((m): m is MeasurementResult => m !== undefined);
}

export function terminalReport(r: BenchResults): string {
  const lines: string[] = [];
  const d = r.dataset;
  lines.push(
    '',
    `supaneon-sync benchmark: ${d.documents.toLocaleString('en-US')} documents, ${mb(d.bsonBytes)} of BSON in ${d.collections.length} collections; ` +
      `median of ${r.runs} runs (min–max)`,
    `machine: ${r.machine.cpus} cores (${r.machine.cpuModel}), ${(r.machine.memoryBytes / 2 ** 30).toFixed(1)} GiB RAM, Node ${r.machine.node}; ` +
      `source ${r.servers.ferretdb ? `FerretDB ${r.servers.ferretdb} (SQLite)` : `MongoDB ${r.servers.mongo}`}; Postgres ${r.servers.postgres.server_version ?? '?'} (local)`,
    '',
  );
  const header = [
    pad('measurement', 44),
    pad('time', 10, true),
    pad('(min–max)', 18, true),
    pad('docs/s', 9, true),
    pad('MB/s', 7, true),
    pad('peak RSS', 10, true),
    pad('WAL', 9, true),
    pad('CPU s node/ferretdb/pg', 24, true),
  ];
  lines.push(header.join(' '));
  lines.push('-'.repeat(header.join(' ').length));
  for (const m of measurementRows(r)) {
    const time = m.extrapolated ? m.extrapolated.wallSeconds : m.wallSeconds;
    lines.push(
      [
        pad(m.label, 44),
        pad(seconds(time.median), 10, true),
        pad(`(${seconds(time.min)}–${seconds(time.max)})`, 18, true),
        pad(rate(m.docsPerSecond.median), 9, true),
        pad(m.mbPerSecond.median.toFixed(1), 7, true),
        pad(mb(m.peakRssBytes.median), 10, true),
        pad(m.walBytes ? mb(m.walBytes.median) : '–', 9, true),
        pad(`${cpu(m.cpu.node)}/${cpu(m.cpu.ferretdb)}/${cpu(m.cpu.postgres)}`, 24, true),
      ].join(' '),
    );
    if (m.phases) {
      const p = m.phases;
      lines.push(
        `  phases (medians): prepare ${seconds(p.prepare)}, per-collection sync ${seconds(p.sync)}, commit ${seconds(p.commit)}, snapshot branch ${seconds(p.snapshot)}, finish ${seconds(p.finish)}`,
      );
    } else if (m.syncSeconds) {
      lines.push(
        `  ${pad('of which the per-collection sync', 42)} ${pad(seconds(m.syncSeconds.median), 10, true)} ${pad(`(${seconds(m.syncSeconds.min)}–${seconds(m.syncSeconds.max)})`, 18, true)}`,
      );
    }
    if (m.verificationSeconds) {
      lines.push(
        `  ${pad('of which verification (the checks alone)', 42)} ${pad(seconds(m.verificationSeconds.median), 10, true)} ${pad(`(${seconds(m.verificationSeconds.min)}–${seconds(m.verificationSeconds.max)})`, 18, true)}`,
      );
    }
    if (m.extrapolated) {
      lines.push(
        `  measured on ${m.extrapolated.fromDocuments.toLocaleString('en-US')} documents in ${seconds(m.wallSeconds.median)}; time extrapolated to ${m.extrapolated.toDocuments.toLocaleString('en-US')}`,
      );
    }
  }
  lines.push('', 'targets:');
  for (const t of r.targets) {
    const verdict = t.met === null ? 'NOT MEASURED' : t.met ? 'met' : 'MISSED';
    lines.push(`  [${verdict}] ${t.title}: ${t.shown} (target ${t.limit})`, `      ${t.detail}`);
    if (t.profile) {
      lines.push(
        `      profile (${t.profile.file}): ${(t.profile.idleShare * 100).toFixed(0)}% idle (waiting on the servers), ${(t.profile.gcShare * 100).toFixed(0)}% GC; top self time:`,
      );
      for (const e of t.profile.top.slice(0, 8)) lines.push(`        ${(e.share * 100).toFixed(1).padStart(5)}%  ${e.name}`);
    }
    if (t.profileSkipped) lines.push(`      profile: ${t.profileSkipped}`);
  }
  for (const note of r.notes) lines.push(`note: ${note}`);
  lines.push('');
  return lines.join('\n');
}
