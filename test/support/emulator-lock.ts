// A lock across test files (jest runs them in parallel workers) for tests that reset the Neon
// emulator or depend on its project-wide state: the branch list, the branch limit, injected faults
// and the default branch's database are shared by every file. Holding the lock makes a file's
// reset, branch counts and faults its own; files that only read need not take it.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { repoRoot } from './stack.js';

const LOCK_DIR = path.join(repoRoot, '.stack', 'emulator-test.lock');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Waits for the lock (a directory: mkdir is atomic), then returns its release function. Files
 * queue behind each other, so the wait can be the sum of several files' run times: callers give
 * their beforeAll a timeout above `timeoutMs`.
 */
export async function lockEmulator(label: string, timeoutMs = 1_800_000): Promise<() => Promise<void>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await mkdir(LOCK_DIR);
      await writeFile(path.join(LOCK_DIR, 'owner'), `${process.pid} ${label}\n`);
      return async () => {
        await rm(LOCK_DIR, { recursive: true, force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    // A holder that died (killed test run) leaves the directory behind: take it over.
    const owner = await readFile(path.join(LOCK_DIR, 'owner'), 'utf8').catch(() => '');
    const pid = Number(owner.split(' ')[0]);
    if (owner !== '' && Number.isInteger(pid) && pid > 0 && !alive(pid)) {
      await rm(LOCK_DIR, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(`the Neon emulator stayed locked by another test file (${owner.trim() || 'unknown'}) for ${timeoutMs / 1000} s; remove ${LOCK_DIR} if no test runs`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Deletes every branch and fault: only the default branch, with an empty database, remains. */
export async function resetEmulator(apiHost: string, apiKey: string): Promise<void> {
  const base = apiHost.replace(/\/api\/v2\/?$/, '');
  const res = await fetch(`${base}/__emulator/reset`, { method: 'POST', headers: { authorization: `Bearer ${apiKey}` } });
  if (!res.ok) throw new Error(`resetting the Neon emulator failed: HTTP ${res.status} ${await res.text()}`);
}

/** Makes the emulator's next `count` matching API calls answer `status` (or hang). */
export async function injectFault(
  apiHost: string,
  apiKey: string,
  fault: { status: 423 | 429 | 500 | 503 | 'hang'; count: number; method?: string; path?: string },
): Promise<void> {
  const base = apiHost.replace(/\/api\/v2\/?$/, '');
  const res = await fetch(`${base}/__emulator/faults`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(fault),
  });
  if (!res.ok) throw new Error(`injecting a fault into the Neon emulator failed: HTTP ${res.status} ${await res.text()}`);
}

export async function clearFaults(apiHost: string, apiKey: string): Promise<void> {
  const base = apiHost.replace(/\/api\/v2\/?$/, '');
  await fetch(`${base}/__emulator/faults`, { method: 'DELETE', headers: { authorization: `Bearer ${apiKey}` } });
}

/**
 * Creates a branch the way a person would in the console: no annotation, no endpoint. Retries the
 * 423 a project answers while an earlier operation still runs. Returns the new branch's id.
 */
export async function createPlainBranch(apiHost: string, apiKey: string, projectId: string, name: string): Promise<string> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const res = await fetch(`${apiHost}/projects/${projectId}/branches`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ branch: { name } }),
    });
    if (res.status === 201) return ((await res.json()) as { branch: { id: string } }).branch.id;
    if (res.status !== 423) throw new Error(`creating branch "${name}" failed: HTTP ${res.status} ${await res.text()}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  throw new Error(`creating branch "${name}": the project stayed locked (423)`);
}
