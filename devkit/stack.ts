// The local stack from a development tool's side (tests, the demo, the bench): bring it up (or find
// it running) with scripts/stack/up.sh and read the settings it writes to .stack/env. See
// docs/LOCAL-STACK.md.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const stackEnvFile = path.join(repoRoot, '.stack', 'env');

// One `export NAME='value'` per line, as up.sh writes them: single-quoted, with a quote inside a
// value written as '\'' (close, escaped quote, reopen).
const EXPORT_LINE = /^export ([A-Za-z_][A-Za-z0-9_]*)=((?:'[^']*'|\\')*)$/;

export function parseStackEnv(text: string, source = stackEnvFile): Record<string, string> {
  const env: Record<string, string> = {};
  text.split('\n').forEach((line, index) => {
    if (line.trim() === '' || line.startsWith('#')) return;
    const match = EXPORT_LINE.exec(line);
    if (!match) {
      throw new Error(
        `${source}:${index + 1} is not an "export NAME='value'" line; delete the file and run 'npm run stack:up' to write it again`,
      );
    }
    env[match[1]] = match[2].replace(/'([^']*)'|\\'/g, (_quoted, inner: string | undefined) => inner ?? "'");
  });
  return env;
}

export function loadStackEnv(): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(stackEnvFile, 'utf8');
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot read the local stack settings (${reason}); start the stack with 'npm run stack:up'`, {
      cause: error,
    });
  }
  return parseStackEnv(text);
}

// Runs up.sh (which reuses whatever already runs) and returns the settings it wrote. Its progress
// goes to stderr so it never mixes with a reporter's output on stdout.
export async function ensureStack(): Promise<Record<string, string>> {
  const upScript = path.join(repoRoot, 'scripts', 'stack', 'up.sh');
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    const child = spawn('bash', [upScript], { cwd: repoRoot, stdio: ['ignore', process.stderr, process.stderr] });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(signal ? null : code));
  });
  if (exitCode !== 0) {
    throw new Error(
      `the local stack did not start (${upScript} exited with ${exitCode ?? 'a signal'}); its messages are above, and logs are in .stack/`,
    );
  }
  return loadStackEnv();
}
