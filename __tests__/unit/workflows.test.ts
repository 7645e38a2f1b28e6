// Every workflow in .github/workflows: a structural check with the yaml parser (always), and
// actionlint (the real checker: expressions, action inputs, shell scripts) when it is installed.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from '../../devkit/stack.js';

const dir = path.join(repoRoot, '.github', 'workflows');
const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));

interface Step {
  uses?: string;
  run?: string;
  [key: string]: unknown;
}
interface Job {
  'runs-on'?: unknown;
  'timeout-minutes'?: unknown;
  steps?: Step[];
  uses?: string;
  [key: string]: unknown;
}
interface Workflow {
  name?: string;
  on?: unknown;
  permissions?: unknown;
  jobs?: Record<string, Job>;
}

test('there are workflows to check', () => {
  expect(files).toEqual(expect.arrayContaining(['ci.yml', 'check-dist.yml', 'release.yml', 'codeql.yml']));
});

/** Who may write what: each write a job asks for, with the reason it needs it. */
const ALLOWED_WRITES: Record<string, Record<string, string[]>> = {
  'release.yml': { publish: ['contents'] },
  'codeql.yml': { analyze: ['security-events'] },
  'backup.yml': { backup: ['issues'], 'restore-verification': ['issues'] },
};

function writesOf(permissions: unknown): string[] {
  if (permissions === 'write-all') return ['write-all'];
  if (permissions === 'read-all' || permissions === undefined || permissions === null) return [];
  return Object.entries(permissions as Record<string, string>)
    .filter(([, level]) => level === 'write')
    .map(([scope]) => scope)
    .sort();
}

describe.each(files)('%s', (file) => {
  const workflow = parse(readFileSync(path.join(dir, file), 'utf8')) as Workflow;

  test('has a name, triggers, least-privilege permissions and jobs', () => {
    expect(typeof workflow.name).toBe('string');
    expect(workflow.on).toBeTruthy();
    // Workflow-level permissions (or per job, checked below) keep GITHUB_TOKEN from write-all defaults.
    const jobs = Object.values(workflow.jobs ?? {});
    expect(jobs.length).toBeGreaterThan(0);
    for (const job of jobs) expect(workflow.permissions ?? job.permissions).toBeTruthy();
  });

  test('every job has runs-on, a timeout and steps that each use or run something', () => {
    for (const [name, job] of Object.entries(workflow.jobs ?? {})) {
      if (job.uses) continue; // a reusable-workflow call has neither runs-on nor steps
      expect({ name, runsOn: Boolean(job['runs-on']) }).toEqual({ name, runsOn: true });
      expect({ name, timeout: typeof job['timeout-minutes'] }).toEqual({ name, timeout: 'number' });
      expect(Array.isArray(job.steps) && job.steps.length > 0).toBe(true);
      for (const step of job.steps ?? []) {
        expect({ name, step: Boolean(step.uses) !== Boolean(step.run) }).toEqual({ name, step: true });
      }
    }
  });

  test('third-party actions are pinned to a commit SHA', () => {
    for (const job of Object.values(workflow.jobs ?? {})) {
      for (const step of job.steps ?? []) {
        if (!step.uses || step.uses.startsWith('./')) continue;
        expect(step.uses).toMatch(/^[\w.-]+\/[\w./-]+@[0-9a-f]{40}$/);
      }
    }
  });

  test('each pinned action names its version in a comment (# vX.Y.Z), the same for the same SHA', () => {
    const versions = new Map<string, string>();
    for (const line of readFileSync(path.join(dir, file), 'utf8').split('\n')) {
      const m = /^\s*(?:-\s+)?uses:\s*([^\s#]+)\s*(?:#\s*(\S+))?/.exec(line);
      if (!m || m[1].startsWith('./')) continue;
      expect({ line: line.trim(), version: m[2] }).toEqual({ line: line.trim(), version: expect.stringMatching(/^v\d+\.\d+\.\d+$/) });
      const sha = m[1].split('@')[1];
      expect({ sha, version: versions.get(sha) ?? m[2] }).toEqual({ sha, version: m[2] });
      versions.set(sha, m[2]);
    }
  });

  test('least privilege: read-only at the top, writes only in the jobs that need them', () => {
    expect(workflow.permissions).toBeTruthy();
    expect({ file, writes: writesOf(workflow.permissions) }).toEqual({ file, writes: [] });
    for (const [name, job] of Object.entries(workflow.jobs ?? {})) {
      expect({ file, job: name, writes: writesOf(job.permissions) }).toEqual({
        file,
        job: name,
        writes: ALLOWED_WRITES[file]?.[name] ?? [],
      });
    }
  });

  test('checkouts keep no credentials in the workspace', () => {
    for (const job of Object.values(workflow.jobs ?? {})) {
      for (const step of job.steps ?? []) {
        if (!step.uses?.startsWith('actions/checkout@')) continue;
        expect((step.with as Record<string, unknown> | undefined)?.['persist-credentials']).toBe(false);
      }
    }
  });
});

function findActionlint(): string | undefined {
  const candidates = [process.env.ACTIONLINT];
  const onPath = spawnSync('sh', ['-c', 'command -v actionlint'], { encoding: 'utf8' });
  if (onPath.status === 0) candidates.push(onPath.stdout.trim());
  try {
    const gopath = execFileSync('go', ['env', 'GOPATH'], { encoding: 'utf8' }).trim();
    candidates.push(path.join(gopath, 'bin', 'actionlint'));
  } catch {
    // no Go toolchain: only PATH and ACTIONLINT can provide the binary
  }
  return candidates.find((c): c is string => Boolean(c) && existsSync(c as string));
}

const actionlint = findActionlint();
(actionlint ? test : test.skip)(
  actionlint
    ? 'actionlint finds nothing wrong'
    : 'actionlint finds nothing wrong (skipped: actionlint not installed; go install github.com/rhysd/actionlint/cmd/actionlint@latest)',
  () => {
    const result = spawnSync(actionlint as string, ['-no-color', ...files.map((f) => path.join(dir, f))], {
      encoding: 'utf8',
      cwd: repoRoot,
    });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  },
);

test('dependabot keeps npm and the pinned actions up to date', () => {
  const config = parse(readFileSync(path.join(repoRoot, '.github', 'dependabot.yml'), 'utf8')) as {
    version: number;
    updates: { 'package-ecosystem': string; directory: string }[];
  };
  expect(config.version).toBe(2);
  expect(config.updates.map((u) => [u['package-ecosystem'], u.directory]).sort()).toEqual([
    ['github-actions', '/'],
    ['npm', '/'],
  ]);
});
