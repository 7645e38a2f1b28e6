// `npm test`: brings the local stack up (unless SUPANEON_SKIP_STACK=1), runs jest over the
// TypeScript sources as native ESM with any extra arguments passed through, and ends with one line
// `N passed, N failed, N skipped`. Exits with jest's code, and non-zero when no test ran at all.
//
// `npm run test:unit` (`--unit`): the pure tests only (__tests__/unit), no stack, no servers.
//
// The whole run has a hard ceiling (SUPANEON_TEST_CEILING_MINUTES, default 25): when it is reached,
// jest and everything it started are stopped and the run fails, naming the tests that were still
// running (recorded as they start and finish by scripts/jest-progress-reporter.mjs).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const started = Date.now();
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const env = { ...process.env };
env.NODE_OPTIONS = [env.NODE_OPTIONS, '--experimental-vm-modules'].filter(Boolean).join(' ');

let args = process.argv.slice(2);
if (args[0] === '--unit') {
  env.SUPANEON_SKIP_STACK = '1';
  args = ['__tests__/unit', ...args.slice(1)];
}

const ceilingMinutes = Number(env.SUPANEON_TEST_CEILING_MINUTES ?? '25');
if (!(ceilingMinutes > 0)) {
  process.stderr.write(
    `SUPANEON_TEST_CEILING_MINUTES must be a positive number of minutes (got ${JSON.stringify(env.SUPANEON_TEST_CEILING_MINUTES)})\n`,
  );
  process.exit(2);
}
/** How long jest may take to exit once its last test has finished before it counts as hung. */
const EXIT_GRACE_MS = 60_000;
/** After SIGTERM, how long jest and its children get before SIGKILL. */
const KILL_GRACE_MS = 10_000;

const resultsDir = mkdtempSync(path.join(tmpdir(), 'supaneon-sync-jest-'));
const resultsFile = path.join(resultsDir, 'results.json');
const progressFile = path.join(resultsDir, 'progress.jsonl');
writeFileSync(progressFile, '');
env.SUPANEON_TEST_PROGRESS_FILE = progressFile;

let jest; // the jest process, once started
let stoppedAtCeiling; // { progress, running } once the ceiling stopped the run
const ceiling = setTimeout(hitCeiling, ceilingMinutes * 60_000);
ceiling.unref();

try {
  // Started here as well as in jest's global setup: Node reads NODE_EXTRA_CA_CERTS only when a
  // process starts, so jest itself must start with the stack's settings for tests it runs
  // in-process (a single file, or --runInBand) to trust the stack's CA. The global setup then finds
  // it running.
  if (env.SUPANEON_SKIP_STACK !== '1') {
    const { tsImport } = await import('tsx/esm/api');
    const { ensureStack } = await tsImport('../devkit/stack.ts', import.meta.url);
    Object.assign(env, await ensureStack());
  }
  const exitCode = await runJest();
  clearTimeout(ceiling);
  process.exitCode = stoppedAtCeiling ? closeAtCeiling(stoppedAtCeiling.progress, stoppedAtCeiling.running) : summarize(exitCode);
} finally {
  rmSync(resultsDir, { recursive: true, force: true });
}

function runJest() {
  const jestBin = path.join(repoRoot, 'node_modules', 'jest', 'bin', 'jest.js');
  const reporter = path.join(repoRoot, 'scripts', 'jest-progress-reporter.mjs');
  const jestArgs = [jestBin, ...args, '--json', `--outputFile=${resultsFile}`, '--reporters=default', `--reporters=${reporter}`];
  // Its own process group, so a run stopped at the ceiling takes its workers and their children along.
  jest = spawn(process.execPath, jestArgs, { cwd: repoRoot, env, stdio: 'inherit', detached: true });
  const forward = (signal) => killGroup(signal);
  process.on('SIGINT', forward).on('SIGTERM', forward);
  const exitWatch = setInterval(watchExit, 5_000);
  return new Promise((resolve) => {
    jest.on('exit', (code, signal) => {
      clearInterval(exitWatch);
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}

function killGroup(signal) {
  if (!jest) return;
  try {
    process.kill(-jest.pid, signal);
  } catch {
    // already gone
  }
}

/** A jest that outlives its last test by EXIT_GRACE_MS is held by an open handle: stop it. */
function watchExit() {
  const completed = readProgress().find((e) => e.event === 'run-complete');
  if (completed === undefined || Date.now() - completed.at < EXIT_GRACE_MS) return;
  process.stderr.write(
    `\njest had not exited ${EXIT_GRACE_MS / 1000} s after its last test: a test left a handle open (find it with \`npm test -- --detectOpenHandles\`); stopping it\n`,
  );
  killGroup('SIGKILL');
}

function hitCeiling() {
  const minutes = ((Date.now() - started) / 60_000).toFixed(1);
  const progress = readProgress();
  const running = stillRunning(progress);
  const lines = running.map(
    (r) =>
      `  - ${r.file}${r.name ? ` › ${r.name}` : ' (outside its tests: a beforeAll/afterAll hook, or loading)'} (for ${Math.round((Date.now() - r.at) / 1000)} s)`,
  );
  process.stderr.write(
    `\nsupaneon-sync tests: the run reached its ceiling of ${ceilingMinutes} min (SUPANEON_TEST_CEILING_MINUTES) after ${minutes} min and was stopped.\n` +
      (jest === undefined
        ? 'It was still starting the local stack (see its messages above; logs are in .stack/).\n'
        : running.length > 0
          ? `Still running:\n${lines.join('\n')}\n`
          : 'No test was running: jest itself did not finish.\n'),
  );
  if (jest === undefined) {
    closeAtCeiling(progress, running);
    process.exit(1);
  }
  stoppedAtCeiling = { progress, running };
  killGroup('SIGTERM');
  const forced = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
  jest.once('exit', () => {
    clearTimeout(forced);
    // Whatever the group left behind (a worker that ignored SIGTERM) goes too.
    killGroup('SIGKILL');
  });
}

/** The closing line of a stopped run: the tests still running count as failed. */
function closeAtCeiling(progress = readProgress(), running = stillRunning(progress)) {
  const counts = countFromProgress(progress);
  console.log(`${counts.passed} passed, ${counts.failed + Math.max(1, running.length)} failed, ${counts.skipped} skipped`);
  return 1;
}

function readProgress() {
  if (!existsSync(progressFile)) return [];
  return readFileSync(progressFile, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));
}

/** Tests started and not finished, and files started whose tests are all done or not yet begun. */
function stillRunning(progress) {
  const cases = new Map();
  const files = new Map();
  for (const e of progress) {
    if (e.event === 'file-start') files.set(e.file, e);
    if (e.event === 'file-result') files.delete(e.file);
    if (e.event === 'case-start') cases.set(`${e.file}\0${e.name}`, e);
    if (e.event === 'case-result') cases.delete(`${e.file}\0${e.name}`);
  }
  const runningCases = [...cases.values()];
  const inHooks = [...files.values()].filter((f) => !runningCases.some((c) => c.file === f.file)).map((f) => ({ file: f.file, at: f.at }));
  return [...runningCases, ...inHooks];
}

function countFromProgress(progress) {
  const counts = { passed: 0, failed: 0, skipped: 0 };
  for (const e of progress) {
    if (e.event === 'case-result') {
      if (e.status === 'passed') counts.passed++;
      else if (e.status === 'failed') counts.failed++;
      else counts.skipped++;
    }
    if (e.event === 'file-result' && e.failedToRun) counts.failed++;
  }
  return counts;
}

// Prints the closing line and returns the exit code for the whole run.
function summarize(jestExitCode) {
  let results;
  try {
    results = JSON.parse(readFileSync(resultsFile, 'utf8'));
  } catch {
    // No results file (jest was stopped, or crashed): count what the progress file recorded.
    const counts = countFromProgress(readProgress());
    process.stderr.write(`jest wrote no results (exit code ${jestExitCode}); see its output above\n`);
    console.log(`${counts.passed} passed, ${Math.max(1, counts.failed)} failed, ${counts.skipped} skipped`);
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
