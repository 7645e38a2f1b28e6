/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and lists where the measured process spent its time:
 * the top functions by self time, and how much of the run it sat idle (waiting on a server).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: CpuProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  selfMs: number;
  /** Share of the sampled time, 0..1. */
  share: number;
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  /** Time with nothing to run: waiting on MongoDB or Postgres. */
  idleShare: number;
  gcShare: number;
  top: ProfileEntry[];
}

function frameName(node: CpuProfileNode, repoRoot: string): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName || '(anonymous)';
  if (!url) return name;
  let where = url.replace(/^file:\/\//, '');
  if (where.startsWith(repoRoot)) where = path.relative(repoRoot, where);
  where = where.replace(/^.*node_modules\//, '');
  return `${name} ${where}:${lineNumber + 1}`;
}

export function summariseProfile(file: string, repoRoot: string, topN = 12): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfMs = new Map<string, number>();
  let totalMs = 0;
  profile.samples.forEach((id, i) => {
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    const node = byId.get(id);
    if (!node) return;
    const key = frameName(node, repoRoot);
    selfMs.set(key, (selfMs.get(key) ?? 0) + ms);
    totalMs += ms;
  });
  const share = (ms: number) => (totalMs > 0 ? ms / totalMs : 0);
  const top = [...selfMs.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN)
    .map(([name, ms]) => ({ name, selfMs: Math.round(ms), share: share(ms) }));
  return {
    file: path.relative(repoRoot, file),
    totalMs: Math.round(totalMs),
    idleShare: share(selfMs.get('(idle)') ?? 0),
    gcShare: share(selfMs.get('(garbage collector)') ?? 0),
    top,
  };
}
