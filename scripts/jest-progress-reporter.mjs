// A jest reporter that records, as they happen, which test files and tests start and finish, one
// JSON line per event, into the file named by SUPANEON_TEST_PROGRESS_FILE. scripts/test.mjs reads
// it when the run outlives its ceiling, to name the tests that were running (jest's own results
// are only written when the run ends, which a hung run never does).
import { appendFileSync } from 'node:fs';
import path from 'node:path';

export default class ProgressReporter {
  #file;
  #root;

  constructor(globalConfig) {
    this.#file = process.env.SUPANEON_TEST_PROGRESS_FILE;
    this.#root = globalConfig.rootDir;
  }

  #write(event) {
    if (!this.#file) return;
    // Synchronous: the line must be on disk even if the process is killed right after.
    appendFileSync(this.#file, `${JSON.stringify({ ...event, at: Date.now() })}\n`);
  }

  #rel(test) {
    return path.relative(this.#root, test.path);
  }

  onTestFileStart(test) {
    this.#write({ event: 'file-start', file: this.#rel(test) });
  }

  onTestCaseStart(test, info) {
    this.#write({ event: 'case-start', file: this.#rel(test), name: info.fullName });
  }

  onTestCaseResult(test, result) {
    this.#write({ event: 'case-result', file: this.#rel(test), name: result.fullName, status: result.status });
  }

  onTestFileResult(test, result) {
    // A file that fails outside its tests (an import error, a failing beforeAll) has no failed test of its own.
    this.#write({ event: 'file-result', file: this.#rel(test), failedToRun: Boolean(result.testExecError) });
  }

  onRunComplete() {
    this.#write({ event: 'run-complete' });
  }

  getLastError() {
    return undefined;
  }
}
