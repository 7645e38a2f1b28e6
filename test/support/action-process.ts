// Runs the action's main step in its own node process, as GitHub does (INPUT_* variables, a
// GITHUB_OUTPUT file), from the committed bundle when it is at least as new as the sources, else
// from the same entry in source (so a stale bundle never hides a fix, nor fakes one). The child
// is returned too, so a test can kill it mid-run.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseCommandFile } from './run-bundle.js';
import { repoRoot } from './stack.js';

export interface ActionRun {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** stdout and stderr, interleaved as they arrived. */
  log: string;
  outputs: Record<string, string>;
  summary: string;
}

export function actionEntry(): { argv: string[]; label: string } {
  const bundle = path.join(repoRoot, 'dist', 'index.js');
  const newestSource = Math.max(
    ...readdirSync(path.join(repoRoot, 'src'), { recursive: true, withFileTypes: true })
      .filter((d) => d.isFile() && d.name.endsWith('.ts'))
      .map((d) => statSync(path.join(d.parentPath, d.name)).mtimeMs),
  );
  if (existsSync(bundle) && statSync(bundle).mtimeMs >= newestSource) return { argv: [bundle], label: 'dist/index.js' };
  return { argv: ['--import', 'tsx', path.join(repoRoot, 'src', 'index.ts')], label: 'src/index.ts (the bundle is older than the sources)' };
}

export function startAction(
  inputs: Record<string, string>,
  env: Record<string, string> = {},
  timeoutMs = 180_000,
): { child: ChildProcess; result: Promise<ActionRun> } {
  const entry = actionEntry();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'supaneon-action-'));
  const output = path.join(dir, 'output');
  const summary = path.join(dir, 'summary');
  writeFileSync(output, '');
  writeFileSync(summary, '');
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(INPUT_|GITHUB_|STATE_)/.test(k)) childEnv[k] = v;
  Object.assign(childEnv, { GITHUB_OUTPUT: output, GITHUB_STEP_SUMMARY: summary, ...env });
  for (const [name, value] of Object.entries(inputs)) childEnv[`INPUT_${name.toUpperCase()}`] = value;
  const child = spawn(process.execPath, entry.argv, { cwd: repoRoot, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (log += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (log += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const result = new Promise<ActionRun>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      try {
        resolve({ exitCode, signal, log, outputs: parseCommandFile(readFileSync(output, 'utf8')), summary: readFileSync(summary, 'utf8') });
      } catch (e) {
        reject(e);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
  return { child, result };
}
