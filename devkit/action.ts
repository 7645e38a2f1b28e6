// Runs the action the way GitHub Actions does, for the tests and the demo: `node dist/index.js`
// (main step), `node dist/post/index.js` (post step) or the CLI, in a process of its own, with
// inputs as INPUT_* variables (name upper-cased, hyphens kept: INPUT_MONGODB-URI), saved state as
// STATE_* variables, temp files for GITHUB_OUTPUT, GITHUB_STEP_SUMMARY and GITHUB_STATE, and the
// outputs and state parsed back from those files as the runner reads them.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { repoRoot } from './stack.js';

export type ActionEntry = 'main' | 'post' | 'cli';

const BUNDLES: Record<ActionEntry, string> = {
  main: 'dist/index.js',
  post: 'dist/post/index.js',
  cli: 'dist/cli/index.js',
};

const SOURCES: Record<ActionEntry, string> = {
  main: 'src/index.ts',
  post: 'src/post-index.ts',
  cli: 'src/cli.ts',
};

export interface ActionOptions {
  /** Action inputs by name (kebab-case), passed as INPUT_<NAME>. Ignored by the CLI. */
  inputs?: Record<string, string>;
  /** Saved state (name -> value) passed as STATE_<name>, as the runner does for the post step. */
  state?: Record<string, string>;
  /** CLI arguments (mode and flags). */
  args?: string[];
  /**
   * Environment on top of the base one (below). A value of undefined removes the variable, e.g.
   * `{ MONGODB_SRV_URL: undefined }`.
   */
  env?: Record<string, string | undefined>;
  /**
   * The base environment: this process's (minus any INPUT_*, STATE_* and GITHUB_* variables),
   * the default; or `runner`: only what a runner gives every step (PATH, HOME, GITHUB_ACTIONS=true,
   * RUNNER_TEMP), so no MONGODB_SRV_URL or NEON_* fallback reaches the action.
   */
  baseEnv?: 'inherit' | 'runner';
  /**
   * What runs: `bundle` (the committed dist/, the default), or `current`: the bundle when it is at
   * least as new as every source, else the same entry from source, so a stale bundle never hides
   * a fix, nor fakes one.
   */
  build?: 'bundle' | 'current';
  /** Kill the process (SIGKILL) after this long; default 180 s. */
  timeoutMs?: number;
  /** Called with each line of stdout and stderr as it arrives (e.g. to show the log live). */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
}

export interface ActionRun {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  durationMs: number;
  stdout: string;
  stderr: string;
  /** stdout and stderr, interleaved as they arrived. */
  log: string;
  /** Parsed GITHUB_OUTPUT. */
  outputs: Record<string, string>;
  /** Parsed GITHUB_STATE (pass it to the post step as `state`). */
  state: Record<string, string>;
  /** Raw GITHUB_STEP_SUMMARY Markdown. */
  summary: string;
  /** Raw file texts, for checks that must see exactly what was written. */
  files: { output: string; state: string; summary: string };
}

export interface RunningAction {
  child: ChildProcess;
  /** What runs, e.g. `dist/index.js`, or `src/index.ts (the bundle is older than the sources)`. */
  label: string;
  /** The log so far (stdout and stderr interleaved). */
  log(): string;
  /** The GITHUB_OUTPUT, GITHUB_STATE and GITHUB_STEP_SUMMARY files, to read while it runs. */
  files: { output: string; state: string; summary: string };
  /** Settles when the process has exited and its files are read (the temp files are then removed). */
  result: Promise<ActionRun>;
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

function newestSourceMs(): number {
  return Math.max(
    ...readdirSync(path.join(repoRoot, 'src'), { recursive: true, withFileTypes: true })
      .filter((d) => d.isFile() && d.name.endsWith('.ts'))
      .map((d) => statSync(path.join(d.parentPath, d.name)).mtimeMs),
  );
}

/** The node arguments that start `entry`, and a label saying which build that is. */
export function actionEntry(entry: ActionEntry = 'main', build: ActionOptions['build'] = 'current'): { argv: string[]; label: string } {
  const bundle = path.join(repoRoot, BUNDLES[entry]);
  if (build === 'bundle' || (existsSync(bundle) && statSync(bundle).mtimeMs >= newestSourceMs()))
    return { argv: [bundle], label: BUNDLES[entry] };
  return {
    argv: ['--import', 'tsx', path.join(repoRoot, SOURCES[entry])],
    label: `${SOURCES[entry]} (the bundle is older than the sources)`,
  };
}

function baseEnvironment(kind: ActionOptions['baseEnv'], tempDir: string): Record<string, string> {
  const env: Record<string, string> = {};
  if (kind === 'runner') {
    for (const name of ['PATH', 'HOME']) if (process.env[name] !== undefined) env[name] = process.env[name];
    return { ...env, GITHUB_ACTIONS: 'true', RUNNER_TEMP: tempDir };
  }
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(INPUT_|STATE_|GITHUB_)/.test(k)) env[k] = v;
  }
  return env;
}

export function startAction(entry: ActionEntry, opts: ActionOptions = {}): RunningAction {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'supaneon-action-'));
  const files = { output: path.join(dir, 'output'), state: path.join(dir, 'state'), summary: path.join(dir, 'summary') };
  for (const f of Object.values(files)) writeFileSync(f, '');

  const env = baseEnvironment(opts.baseEnv, dir);
  env.GITHUB_OUTPUT = files.output;
  env.GITHUB_STATE = files.state;
  env.GITHUB_STEP_SUMMARY = files.summary;
  for (const [name, value] of Object.entries(opts.inputs ?? {})) env[`INPUT_${name.toUpperCase()}`] = value;
  for (const [name, value] of Object.entries(opts.state ?? {})) env[`STATE_${name}`] = value;
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }

  const { argv, label } = actionEntry(entry, opts.build ?? 'bundle');
  const started = Date.now();
  const child = spawn(process.execPath, [...argv, ...(opts.args ?? [])], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let log = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    log += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    log += d;
  });
  const onLine = opts.onLine;
  const linesDone = onLine
    ? Promise.all(
        (['stdout', 'stderr'] as const).map(
          (stream) =>
            new Promise<void>((resolve) => {
              const rl = createInterface({ input: child[stream]! });
              rl.on('line', (line) => onLine(line, stream));
              rl.on('close', resolve);
            }),
        ),
      )
    : Promise.resolve();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? 180_000);

  const result = new Promise<ActionRun>((resolve, reject) => {
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      void linesDone.then(() => {
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
            log,
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
  });
  return { child, label, log: () => log, files, result };
}

/** The action's main step with these inputs. */
export function runAction(inputs: Record<string, string>, opts: Omit<ActionOptions, 'inputs'> = {}): Promise<ActionRun> {
  return startAction('main', { ...opts, inputs }).result;
}

/** The action's post step, with the same inputs and the state the main step saved. */
export function runPost(
  inputs: Record<string, string>,
  state: Record<string, string>,
  opts: Omit<ActionOptions, 'inputs' | 'state'> = {},
): Promise<ActionRun> {
  return startAction('post', { ...opts, inputs, state }).result;
}

/** The CLI: `supaneon-sync <args...>`. */
export function runCli(args: string[], opts: Omit<ActionOptions, 'args' | 'inputs' | 'state'> = {}): Promise<ActionRun> {
  return startAction('cli', { ...opts, args }).result;
}

/**
 * Every place a secret shows up in what a run wrote (stdout, stderr, outputs, summary, state),
 * except `::add-mask::` lines, which exist to carry it. Empty when nothing leaked.
 */
export function findSecretLeaks(run: ActionRun, secrets: readonly string[]): string[] {
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
