// `npm test`: brings the local stack up (unless SUPANEON_SKIP_STACK=1), runs jest over the
// TypeScript sources as native ESM with any extra arguments passed through, and ends with one line
// `N passed, N failed, N skipped`. Exits with jest's code, and non-zero when no test ran at all.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tsImport } from 'tsx/esm/api';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const env = { ...process.env };
env.NODE_OPTIONS = [env.NODE_OPTIONS, '--experimental-vm-modules'].filter(Boolean).join(' ');

// Started here as well as in jest's global setup: Node reads NODE_EXTRA_CA_CERTS only when a
// process starts, so jest itself must start with the stack's settings for tests it runs in-process
// (a single file, or --runInBand) to trust the stack's CA. The global setup then finds it running.
if (env.SUPANEON_SKIP_STACK !== '1') {
  const { ensureStack } = await tsImport('../test/support/stack.ts', import.meta.url);
  Object.assign(env, await ensureStack());
}

const resultsDir = mkdtempSync(path.join(tmpdir(), 'supaneon-sync-jest-'));
const resultsFile = path.join(resultsDir, 'results.json');
try {
  const jestBin = path.join(repoRoot, 'node_modules', 'jest', 'bin', 'jest.js');
  const jestArgs = [jestBin, ...process.argv.slice(2), '--json', `--outputFile=${resultsFile}`];
  const child = spawn(process.execPath, jestArgs, { cwd: repoRoot, env, stdio: 'inherit' });
  const forward = (signal) => child.kill(signal);
  process.on('SIGINT', forward).on('SIGTERM', forward);
  const exitCode = await new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
  process.exitCode = summarize(resultsFile, exitCode);
} finally {
  rmSync(resultsDir, { recursive: true, force: true });
}

// Prints the closing line and returns the exit code for the whole run.
function summarize(file, jestExitCode) {
  let results;
  try {
    results = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    process.stderr.write(`jest wrote no results (exit code ${jestExitCode}); see its output above\n`);
    console.log('0 passed, 0 failed, 0 skipped');
    return jestExitCode || 1;
  }
  // A suite that fails before its tests run (an import error, a failing beforeAll) has no failed
  // tests of its own; it still counts as a failure.
  const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
  const skipped = results.numPendingTests + results.numTodoTests;
  console.log(`${results.numPassedTests} passed, ${failed} failed, ${skipped} skipped`);
  if (results.numPassedTests + failed === 0) {
    process.stderr.write('no test ran; check the test path pattern and SUPANEON_SKIP_STACK\n');
    return jestExitCode || 1;
  }
  return jestExitCode;
}
