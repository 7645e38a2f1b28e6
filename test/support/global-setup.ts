// Jest global setup: brings the local stack up once per run (or reuses a running one), puts its
// settings into process.env, which the test workers inherit, and deletes the emulator projects of
// test runs that were killed before they could. SUPANEON_SKIP_STACK=1 skips it for runs of unit
// tests only.
import { tsImport } from 'tsx/esm/api';

// Jest loads this file outside its own module system, where a relative import of another
// TypeScript file does not resolve; tsx loads stack.ts the way the scripts run it.
type StackModule = typeof import('../../devkit/stack.js');
type TestProjectModule = typeof import('./test-project.js');

export default async function globalSetup(): Promise<void> {
  if (process.env.SUPANEON_SKIP_STACK === '1') {
    process.stderr.write('local stack: not started (SUPANEON_SKIP_STACK=1); tests that need it report themselves skipped\n');
    return;
  }
  const { ensureStack } = (await tsImport('../../devkit/stack.ts', import.meta.url)) as StackModule;
  const env = await ensureStack();
  if (process.env.NODE_EXTRA_CA_CERTS !== env.NODE_EXTRA_CA_CERTS) {
    // Node reads NODE_EXTRA_CA_CERTS only at start-up: workers started from here trust the stack's
    // CA, but tests run inside this process (--runInBand, or a single test file) do not.
    process.stderr.write(
      'local stack: NODE_EXTRA_CA_CERTS was not set when jest started; tests run in this process will not trust the stack CA. Use `npm test`, or `. .stack/env` before running jest directly.\n',
    );
  }
  Object.assign(process.env, env);
  const { deleteAbandonedTestProjects } = (await tsImport('./test-project.ts', import.meta.url)) as TestProjectModule;
  const abandoned = await deleteAbandonedTestProjects();
  if (abandoned.length > 0) process.stderr.write(`local stack: deleted ${abandoned.length} project(s) left by killed test runs\n`);
}
