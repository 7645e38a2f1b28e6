import { existsSync } from 'node:fs';
import path from 'node:path';
import { INPUT_NAMES } from '../../src/config.js';
import { HELP, markdownToText, parseArgs, UsageError } from '../../src/command-line.js';
import { runCli } from '../../devkit/action.js';
import { repoRoot } from '../../devkit/stack.js';

describe('parseArgs', () => {
  test('mode then --name value and --name=value flags', () => {
    expect(parseArgs(['backup', '--neon-project-id', 'late-frost-1', '--retain=3', '--include', 'shop.*'])).toEqual({
      mode: 'backup',
      'neon-project-id': 'late-frost-1',
      retain: '3',
      include: 'shop.*',
    });
  });

  test('a boolean flag alone means true; an explicit value is kept', () => {
    expect(parseArgs(['recover', '--drop-target', '--batch-size', '10'])).toMatchObject({ 'drop-target': 'true', 'batch-size': '10' });
    expect(parseArgs(['recover', '--drop-target', 'false'])).toMatchObject({ 'drop-target': 'false' });
    expect(parseArgs(['restore', '--keep-restore-branch'])).toMatchObject({ 'keep-restore-branch': 'true' });
  });

  test('a value may contain = and new lines', () => {
    expect(parseArgs(['restore', '--checks=SELECT 1 = 1\nSELECT true'])).toMatchObject({ checks: 'SELECT 1 = 1\nSELECT true' });
  });

  test.each([
    [[], /first argument must be a mode/],
    [['--mode', 'backup'], /first argument must be a mode/],
    [['sync'], /^argument 1 is not a mode \(not shown/],
    [['backup', '--no-such-input', 'x'], /unknown flag --no-such-input/],
    [['backup', '--mode', 'restore'], /unknown flag --mode/],
    [['backup', 'stray'], /^unexpected argument 2 \(not shown/],
    [['backup', '--retain=5', 'RAWSECRET21'], /^unexpected argument 3 \(after --retain\) \(not shown/],
    [['backup', '--retain'], /--retain needs a value/],
    [['backup', '--retain', '1', '--retain', '2'], /--retain is given twice/],
  ])('usage error: %j', (args, message) => {
    expect(() => parseArgs(args)).toThrow(UsageError);
    expect(() => parseArgs(args)).toThrow(message);
    // A stray argument is named by its position only: it is often a secret that lost its flag.
    for (const arg of args.filter((a) => !a.startsWith('--') && !['backup', '1', '2'].includes(a))) {
      expect(() => parseArgs(args)).not.toThrow(arg);
    }
  });

  test('a boolean flag takes --name=value, and a following non-flag argument as its value', () => {
    expect(parseArgs(['recover', '--drop-target=false', '--dump-gzip'])).toMatchObject({ 'drop-target': 'false', 'dump-gzip': 'true' });
    expect(parseArgs(['recover', '--drop-target', '-x'])).toMatchObject({ 'drop-target': '-x' });
    expect(parseArgs(['backup', '--retain', '--5'])).toMatchObject({ retain: '--5' });
  });

  test.each([
    [['backup', '--neon-api-key', '--Secret-Key-1', 'stray'], /^unexpected argument 4 \(not shown/],
    [['backup', '-Secret1'], /^unexpected argument 2 \(not shown/],
    [['backup', '--Secret1=x'], /^unexpected argument 2 \(not shown/],
    [['backup', '--drop-target', '--', 'Secret1'], /^unexpected argument 3 \(after --drop-target\) \(not shown/],
  ])('an argument that could be a secret is never shown: %j', (args, message) => {
    expect(() => parseArgs(args)).toThrow(message);
    expect(() => parseArgs(args)).not.toThrow(/Secret/);
  });

  test('every input except mode is a flag, and the help names each', () => {
    for (const name of INPUT_NAMES.filter((n) => n !== 'mode')) {
      expect(parseArgs(['validate', `--${name}`, 'v'])[name]).toBe('v');
      expect(HELP).toContain(`--${name}`);
    }
  });
});

describe('markdownToText', () => {
  test('renders headings and aligned tables, unescaping cells', () => {
    const text = markdownToText('## Result\n\n| Name | Value |\n| --- | --- |\n| a\\|b | **FAIL** |\n| longer name | 1 |\n');
    expect(text.split('\n')).toEqual([
      'Result',
      '======',
      '',
      'Name         Value',
      '-----------  -----',
      'a|b          FAIL',
      'longer name  1',
      '',
    ]);
  });

  test('keeps a redacted *** as it is', () => {
    expect(markdownToText('connect to postgresql://u:***@h failed, **twice**')).toBe('connect to postgresql://u:***@h failed, twice');
  });
});

const bundleBuilt = existsSync(path.join(repoRoot, 'dist', 'cli', 'index.js'));
(bundleBuilt ? describe : describe.skip)(
  `the CLI bundle${bundleBuilt ? '' : ' (skipped: dist/cli/index.js not built; run npm run build)'}`,
  () => {
    const noFallbacks = {
      MONGODB_SRV_URL: undefined,
      NEON_API_KEY: undefined,
      NEON_PROJECT_ID: undefined,
      NEON_DATABASE_URL: undefined,
      NEON_API_HOST: undefined,
    };

    test('usage errors exit 2 with a hint', async () => {
      for (const args of [['frobnicate'], ['validate', '--nope', '1'], []]) {
        const run = await runCli(args, { env: noFallbacks, timeoutMs: 20_000 });
        expect(run.exitCode).toBe(2);
        expect(run.stderr).toMatch(/supaneon-sync|Usage/);
      }
    });

    test('--help exits 0 and prints usage', async () => {
      const run = await runCli(['--help'], { timeoutMs: 20_000 });
      expect(run.exitCode).toBe(0);
      expect(run.stdout).toContain('Usage: supaneon-sync <mode>');
    });

    test('an invalid configuration exits 1, one line per problem, no secret', async () => {
      const run = await runCli(
        [
          'backup',
          '--mongodb-uri',
          'mongodb://u:CliSecret%21@h/',
          '--neon-database-url',
          'postgres://o:CliSecret%21@h/db?sslmode=disable',
          '--retain',
          '0',
        ],
        { env: noFallbacks, timeoutMs: 20_000 },
      );
      expect(run.exitCode).toBe(1);
      expect(run.stderr).toMatch(/^supaneon-sync backup failed: invalid configuration \(4 problems\):$/m);
      expect(run.stderr).toMatch(/^- input 'neon-database-url' has sslmode=disable/m);
      expect(run.stderr).toMatch(/^- input 'retain' must be from 1 to 100; got 0$/m);
      expect(`${run.stdout}${run.stderr}`).not.toMatch(/CliSecret/);
    });
  },
);
