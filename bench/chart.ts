/**
 * docs/performance.svg: documents per second of every measurement (median bar, min–max whisker),
 * the machine it ran on, and the targets. Hand-written SVG: no charting dependency to install,
 * and the file diffs as text.
 */
import { mb, rate } from './format.js';
import type { MeasurementKey } from './options.js';
import type { BenchResults } from './results.js';
import type { Spread } from './stats.js';

const KIND: Record<MeasurementKey, 'limit' | 'product' | 'baseline'> = {
  read: 'limit',
  write: 'limit',
  scan: 'limit',
  full: 'product',
  'full-sequential': 'product',
  incremental: 'product',
  verify: 'product',
  recover: 'product',
  naive: 'baseline',
  ceiling: 'product',
  'full-rtt40': 'product',
  'verify-rtt40': 'product',
  'recover-rtt40': 'product',
  'naive-rtt40': 'baseline',
};
const COLOR = { limit: '#8a96a3', product: '#2f6fde', baseline: '#e07b39' };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

interface Bar {
  label: string;
  kind: 'limit' | 'product' | 'baseline';
  docsPerSecond: Spread;
  note?: string;
}

function bars(r: BenchResults): Bar[] {
  const out: Bar[] = [];
  for (const m of Object.values(r.measurements)) {
    if (!m) continue;
    out.push({
      label: m.label,
      kind: KIND[m.key],
      docsPerSecond: m.docsPerSecond,
      note: m.extrapolated
        ? `rate of the ${Math.round((m.extrapolated.fromDocuments / m.extrapolated.toDocuments) * 100)}% subset`
        : undefined,
    });
    if (m.verificationSeconds) {
      const docs = m.runs[0].documents;
      const v = m.verificationSeconds;
      out.push({
        label: '↳ verification alone (inside restore)',
        kind: 'product',
        docsPerSecond: { median: docs / v.median, min: docs / v.max, max: docs / v.min },
      });
    }
  }
  return out;
}

export function renderChart(r: BenchResults): string {
  const rows = bars(r);
  const width = 960;
  const labelWidth = 330;
  const valueWidth = 150;
  const plotWidth = width - labelWidth - valueWidth - 20;
  const top = 130;
  const rowHeight = 30;
  // Log scale: the limits run at tens of thousands of documents/s, the modes at hundreds to thousands.
  const lo = Math.pow(10, Math.floor(Math.log10(Math.max(1, Math.min(...rows.map((b) => b.docsPerSecond.min))))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(10, ...rows.map((b) => b.docsPerSecond.max)))));
  const x = (v: number) => labelWidth + ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotWidth;
  const targetsTop = top + rows.length * rowHeight + 50;
  const height = targetsTop + 24 + r.targets.length * 20 + 20;
  const d = r.dataset;
  const pg = (r.servers.postgres.server_version ?? '?').split(' ')[0];
  const source = r.servers.ferretdb ? `FerretDB ${r.servers.ferretdb} (SQLite backend)` : `MongoDB ${r.servers.mongo}`;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="20" y="30" font-size="18" font-weight="600" fill="#1f2328">supaneon-sync: documents per second (log scale; median of ${r.runs} runs, whisker min–max)</text>`,
    `<text x="20" y="52" fill="#57606a">${esc(`${d.documents.toLocaleString('en-US')} documents, ${mb(d.bsonBytes)} of BSON, 4 collections, 200 B – 64 KB each; measured ${r.startedAt.slice(0, 10)}`)}</text>`,
    `<text x="20" y="70" fill="#57606a">${esc(`Machine: ${r.machine.cpus} cores (${r.machine.cpuModel}), ${(r.machine.memoryBytes / 2 ** 30).toFixed(0)} GiB RAM, Node ${r.machine.node}`)}</text>`,
    `<text x="20" y="88" fill="#57606a">${esc(`Source: ${source} on the same machine; target: PostgreSQL ${pg}, local (not Neon)`)}</text>`,
  );
  // Legend.
  const legend: [string, string][] = [
    ['physical limit', COLOR.limit],
    ['supaneon-sync', COLOR.product],
    ['naive script', COLOR.baseline],
  ];
  legend.forEach(([name, color], i) => {
    const lx = labelWidth + i * 140;
    out.push(
      `<rect x="${lx}" y="${top - 24}" width="12" height="12" fill="${color}"/>`,
      `<text x="${lx + 18}" y="${top - 14}" fill="#1f2328">${esc(name)}</text>`,
    );
  });
  const axisY = top + rows.length * rowHeight + 4;
  out.push(`<line x1="${labelWidth}" x2="${labelWidth + plotWidth}" y1="${axisY}" y2="${axisY}" stroke="#d0d7de"/>`);
  for (let v = lo; v <= hi; v *= 10) {
    out.push(
      `<line x1="${x(v).toFixed(1)}" x2="${x(v).toFixed(1)}" y1="${top}" y2="${axisY}" stroke="#eaeef2"/>`,
      `<line x1="${x(v).toFixed(1)}" x2="${x(v).toFixed(1)}" y1="${axisY}" y2="${axisY + 5}" stroke="#8c959f"/>`,
      `<text x="${x(v).toFixed(1)}" y="${axisY + 18}" text-anchor="middle" fill="#57606a" font-size="11">${esc(rate(v))}/s</text>`,
    );
  }
  rows.forEach((b, i) => {
    const y = top + i * rowHeight;
    const mid = y + rowHeight / 2;
    const w = Math.max(1, x(b.docsPerSecond.median) - labelWidth);
    out.push(
      `<text x="${labelWidth - 10}" y="${mid + 4}" text-anchor="end" fill="#1f2328">${esc(b.label)}</text>`,
      `<rect x="${labelWidth}" y="${y + 6}" width="${w.toFixed(1)}" height="${rowHeight - 12}" fill="${COLOR[b.kind]}"/>`,
      `<line x1="${x(b.docsPerSecond.min).toFixed(1)}" x2="${x(b.docsPerSecond.max).toFixed(1)}" y1="${mid}" y2="${mid}" stroke="#1f2328" stroke-width="1.2"/>`,
      `<line x1="${x(b.docsPerSecond.min).toFixed(1)}" x2="${x(b.docsPerSecond.min).toFixed(1)}" y1="${mid - 5}" y2="${mid + 5}" stroke="#1f2328" stroke-width="1.2"/>`,
      `<line x1="${x(b.docsPerSecond.max).toFixed(1)}" x2="${x(b.docsPerSecond.max).toFixed(1)}" y1="${mid - 5}" y2="${mid + 5}" stroke="#1f2328" stroke-width="1.2"/>`,
      `<text x="${(x(b.docsPerSecond.max) + 8).toFixed(1)}" y="${mid + 4}" fill="#1f2328">${esc(`${rate(b.docsPerSecond.median)}/s${b.note ? ` (${b.note})` : ''}`)}</text>`,
    );
  });
  out.push(`<text x="20" y="${targetsTop + 10}" font-size="15" font-weight="600" fill="#1f2328">Targets</text>`);
  r.targets.forEach((t, i) => {
    const y = targetsTop + 32 + i * 20;
    const [mark, color] = t.met === null ? ['–', '#8c959f'] : t.met ? ['✓', '#1a7f37'] : ['✗', '#cf222e'];
    const verdict = t.met === null ? 'not measured' : t.met ? 'met' : 'missed';
    out.push(
      `<text x="24" y="${y}" fill="${color}" font-weight="700">${mark}</text>`,
      `<text x="44" y="${y}" fill="#1f2328">${esc(`${t.title}: ${t.shown} (target ${t.limit}) — ${verdict}`)}</text>`,
    );
  });
  out.push('</svg>', '');
  return out.join('\n');
}
