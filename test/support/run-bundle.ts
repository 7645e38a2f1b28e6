// Runs the built bundles the way GitHub Actions does: `node dist/index.js` (main step),
// `node dist/post/index.js` (post step) or the CLI, with inputs as INPUT_* variables (name
// upper-cased, hyphens kept: INPUT_MONGODB-URI), temp files for GITHUB_OUTPUT,
// GITHUB_STEP_SUMMARY and GITHUB_STATE, and the outputs and state parsed back.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from './stack.js';

export type BundleEntry = 'main' | 'post' | 'cli';

const ENTRY_FILES: Record<BundleEntry, string> = {
  main: 'dist/index.js',
  post: 'dist/post/index.js',
  cli: 'dist/cli/index.js',
};

export interface BundleOptions {
  /** Action inputs by name (kebab-case), passed as INPUT_<NAME>. Ignored by the CLI. */
  inputs?: Record<string, string>;
  /** Saved state (name -> value) passed as STATE_<name>, as the runner does for the post step. */
  state?: Record<string, string>;
  /** CLI arguments (mode and flags). */
  args?: string[];
  /**
   * Environment on top of this process's (minus any INPUT_*, STATE_* and GITHUB_* variables).
   * A value of undefined removes the variable, e.g. `{ MONGODB_SRV_URL: undefined }`.
   */
  env?: Record<string, string | undefined>;
  /** Kill the process (SIGKILL) after this long; default 120 s. */
  timeoutMs?: number;
}

export interface BundleRun {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  durationMs: number;
  stdout: string;
  stderr: string;
  /** Parsed GITHUB_OUTPUT. */
  outputs: Record<string, string>;
  /** Parsed GITHUB_STATE (pass it to runPost as `state`). */
  state: Record<string, string>;
  /** Raw GITHUB_STEP_SUMMARY Markdown. */
  summary: string;
  /** Raw file texts, for checks that must see exactly what was written. */
  files: { output: string; state: string; summary: string };
}

export interface RunningBundle {
  child: ChildProcess;
  result: Promise<BundleRun>;
}

/** Parses a GitHub command file (GITHUB_OUTPUT / GITHUB_STATE): `name<<delimiter` blocks or `name=value` lines. */
export function parseCommandFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line === '') continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name, delimiter] = heredoc;
      const value: string[] = [];
      for (i++; i < lines.length && lines[i] !== delimiter; i++) value.push(lines[i]);
      if (i >= lines.length) throw new Error(`command file: no closing delimiter for '${name}'`);
      out[name] = value.join('\n');
      continue;
    }
    const eq = line.indexOf('=');
    if (eq === -1) throw new Error(`command file: unexpected line '${line}'`);
    out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

export function startBundle(entry: BundleEntry, opts: BundleOptions = {}): RunningBundle {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'supaneon-run-'));
  const files = { output: path.join(dir, 'output'), state: path.join(dir, 'state'), summary: path.join(dir, 'summary') };
  for (const f of Object.values(files)) writeFileSync(f, '');

  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(INPUT_|STATE_|GITHUB_)/.test(k)) env[k] = v;
  }
  env.GITHUB_OUTPUT = files.output;
  env.GITHUB_STATE = files.state;
  env.GITHUB_STEP_SUMMARY = files.summary;
  for (const [name, value] of Object.entries(opts.inputs ?? {})) env[`INPUT_${name.toUpperCase()}`] = value;
  for (const [name, value] of Object.entries(opts.state ?? {})) env[`STATE_${name}`] = value;
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }

  const started = Date.now();
  const child = spawn(process.execPath, [path.join(repoRoot, ENTRY_FILES[entry]), ...(opts.args ?? [])], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? 120_000);

  const result = new Promise<BundleRun>((resolve, reject) => {
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      try {
        const text = {
          output: readFileSync(files.output, 'utf8'),
          state: readFileSync(files.state, 'utf8'),
          summary: readFileSync(files.summary, 'utf8'),
        };
        resolve({
          exitCode,
          signal,
          timedOut,
          durationMs: Date.now() - started,
          stdout,
          stderr,
          outputs: parseCommandFile(text.output),
          state: parseCommandFile(text.state),
          summary: text.summary,
          files: text,
        });
      } catch (error) {
        reject(error);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
  return { child, result };
}

/** The action's main step with these inputs. */
export function runAction(inputs: Record<string, string>, opts: Omit<BundleOptions, 'inputs'> = {}): Promise<BundleRun> {
  return startBundle('main', { ...opts, inputs }).result;
}

/** The action's post step, with the same inputs and the state the main step saved. */
export function runPost(
  inputs: Record<string, string>,
  state: Record<string, string>,
  opts: Omit<BundleOptions, 'inputs' | 'state'> = {},
): Promise<BundleRun> {
  return startBundle('post', { ...opts, inputs, state }).result;
}

/** The CLI: `supaneon-sync <args...>`. */
export function runCli(args: string[], opts: Omit<BundleOptions, 'args' | 'inputs' | 'state'> = {}): Promise<BundleRun> {
  return startBundle('cli', { ...opts, args }).result;
}

/**
 * Every place a secret shows up in what a run wrote (stdout, stderr, outputs, summary, state),
 * except `::add-mask::` lines, which exist to carry it. Empty when nothing leaked.
 */
export function findSecretLeaks(run: BundleRun, secrets: readonly string[]): string[] {
  const places: Array<[string, string]> = [
    ['stdout', run.stdout],
    ['stderr', run.stderr],
    ['GITHUB_OUTPUT', run.files.output],
    ['GITHUB_STEP_SUMMARY', run.files.summary],
    ['GITHUB_STATE', run.files.state],
  ];
  const leaks: string[] = [];
  for (const [where, text] of places) {
    text.split('\n').forEach((line, index) => {
      if (line.startsWith('::add-mask::')) return;
      secrets.forEach((secret, n) => {
        if (secret !== '' && line.includes(secret)) leaks.push(`${where} line ${index + 1} contains secrets[${n}]`);
      });
    });
  }
  return leaks;
}
