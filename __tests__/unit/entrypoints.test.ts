// Every action entrypoint exports run() and does nothing when imported: GitHub's local runner
// (`npx @github/local-action run . src/main.ts .env --post src/post.ts`) imports the module and
// calls run() itself, and the bundles' entry files (src/index.ts, src/post-index.ts) are the only
// places that call it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../../devkit/stack.js';

// The CLI's behaviour (command-line.ts) follows the same rule with main(args); src/cli.ts is the
// executable that calls it, as src/index.ts is for the action.
const ENTRYPOINTS: [string, string][] = [
  ['src/main.ts', 'run'],
  ['src/post.ts', 'run'],
  ['src/command-line.ts', 'main'],
];

describe.each(ENTRYPOINTS)('%s', (file, exported) => {
  test(`exports an async ${exported}()`, async () => {
    const mod = (await import(path.join(repoRoot, file))) as Record<string, unknown>;
    expect(typeof mod[exported]).toBe('function');
    expect((mod[exported] as () => unknown).constructor.name).toBe('AsyncFunction');
  });

  test('importing it in a fresh process writes nothing, registers nothing and exits 0', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'supaneon-entry-'));
    try {
      const files = { GITHUB_OUTPUT: 'output', GITHUB_STATE: 'state', GITHUB_STEP_SUMMARY: 'summary' };
      const env: Record<string, string> = { PATH: process.env.PATH ?? '', INPUT_MODE: 'validate' };
      for (const [name, base] of Object.entries(files)) {
        env[name] = path.join(dir, base);
        writeFileSync(env[name], '');
      }
      // The module is imported and then the process reports what it saw: a run() that started
      // would have written a log line or a command file, or left a crash handler behind.
      const probe =
        `await import(${JSON.stringify(path.join(repoRoot, file))});` +
        `process.stdout.write('listeners=' + process.listenerCount('uncaughtException') + ',' + process.listenerCount('unhandledRejection'));`;
      const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], {
        cwd: repoRoot,
        env,
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect({ status: result.status, stdout: result.stdout, stderr: result.stderr }).toEqual({
        status: 0,
        stdout: 'listeners=0,0',
        stderr: '',
      });
      for (const name of Object.keys(files)) expect({ name, text: readFileSync(env[name], 'utf8') }).toEqual({ name, text: '' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test('the bundle entries only call run() (the CLI: main with its arguments)', () => {
  for (const [entry, expected] of [
    ['src/index.ts', ["import { run } from './main.js';", 'await run();']],
    ['src/post-index.ts', ["import { run } from './post.js';", 'await run();']],
    ['src/cli.ts', ["import { main } from './command-line.js';", 'process.exitCode = await main(process.argv.slice(2));']],
  ] as const) {
    const code = readFileSync(path.join(repoRoot, entry), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith('//') && !l.startsWith('#!'));
    expect({ entry, code }).toEqual({ entry, code: [...expected] });
  }
});
