// The one table of inputs (src/inputs.ts) against everything that describes an input elsewhere:
// action.yml (the file GitHub reads), the configuration's rules and the CLI's help.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { configFrom, ConfigError, effectiveInputs, parseConfig, type RawInputs } from '../../src/config.js';
import { HELP } from '../../src/command-line.js';
import type { GithubRunInfo } from '../../src/github-run.js';
import {
  actionYmlInput,
  defaultText,
  ENV_FALLBACKS,
  INPUT_NAMES,
  INPUTS,
  MODES,
  REQUIRED_BY_MODE,
  requiredHint,
  type InputName,
} from '../../src/inputs.js';
import { embedInActionYml } from '../../scripts/inputs-doc.js';
import { repoRoot } from '../../devkit/stack.js';

const actionText = readFileSync(path.join(repoRoot, 'action.yml'), 'utf8');
const action = parse(actionText) as { inputs: Record<string, { description: string; required: boolean; default?: string }> };

const VALID: RawInputs = {
  mode: 'validate',
  'mongodb-uri': 'mongodb+srv://app:Zq7-secret-pw@cluster0.example.net/',
  'neon-api-key': 'napi_k3y_7731',
  'neon-project-id': 'late-frost-12345678',
  'neon-database-url': 'postgresql://owner:Zq7-secret-pw@ep-cool-sun-123456.eu-central-1.aws.neon.tech/app?sslmode=require',
};

function problemsOf(input: RawInputs): string[] {
  try {
    parseConfig(input, {});
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  return [];
}

describe('action.yml', () => {
  test('declares exactly the inputs of the table, in order, with their descriptions, required flags and defaults', () => {
    expect(Object.keys(action.inputs)).toEqual([...INPUT_NAMES]);
    for (const name of INPUT_NAMES) expect({ name, ...action.inputs[name] }).toEqual({ name, ...actionYmlInput(name) });
  });

  test('its inputs block is what `npm run docs:inputs` writes', () => {
    expect(embedInActionYml(actionText)).toBe(actionText);
  });

  test('an input with an env fallback has an empty default there, so the fallback can apply', () => {
    for (const name of Object.keys(ENV_FALLBACKS)) expect({ name, default: action.inputs[name].default }).toEqual({ name, default: '' });
  });
});

describe('the table', () => {
  test('every input some mode requires has a hint saying how to give it', () => {
    for (const mode of MODES) {
      for (const name of REQUIRED_BY_MODE[mode]) expect({ name, hint: 'hint' in INPUTS[name] }).toEqual({ name, hint: true });
    }
  });

  test('a missing required input is reported with its hint', () => {
    const { 'neon-api-key': _key, ...rest } = VALID;
    expect(problemsOf(rest)).toEqual([`input 'neon-api-key' is required for mode validate: ${requiredHint('neon-api-key')}`]);
  });

  test('defaults apply as the table gives them', () => {
    const config = parseConfig(VALID, {});
    expect([config.retain, config.restoreTtlMinutes, config.sampleSize, config.batchSize, config.lockWaitSeconds]).toEqual(
      (['retain', 'restore-ttl-minutes', 'sample-size', 'batch-size', 'lock-wait-seconds'] as const).map((n) => INPUTS[n].default),
    );
    expect([config.branchPrefix, config.restorePrefix, config.verify, config.neonApiHost]).toEqual(
      (['branch-prefix', 'restore-prefix', 'verify', 'neon-api-host'] as const).map((n) => INPUTS[n].default),
    );
    expect([
      config.compareSource,
      config.keepRestoreBranch,
      config.dropTarget,
      config.allowSelectionChange,
      config.dumpGzip,
      config.dumpArchive,
    ]).toEqual([false, false, false, false, false, false]);
  });

  test("every integer input accepts its table's range and refuses one beyond either end", () => {
    for (const name of INPUT_NAMES) {
      const spec = INPUTS[name];
      if (spec.kind !== 'integer') continue;
      expect({ name, problems: problemsOf({ ...VALID, [name]: String(spec.min) }) }).toEqual({ name, problems: [] });
      expect({ name, problems: problemsOf({ ...VALID, [name]: String(spec.max) }) }).toEqual({ name, problems: [] });
      for (const outside of [spec.min - 1, spec.max + 1].filter((n) => n >= 0)) {
        expect(problemsOf({ ...VALID, [name]: String(outside) })).toEqual([
          `input '${name}' must be from ${spec.min} to ${spec.max}; got ${outside}`,
        ]);
      }
    }
  });
});

describe('the CLI help', () => {
  test('lists every input but mode as a flag, with its env fallback and default', () => {
    const lines = HELP.split('\n');
    for (const name of INPUT_NAMES.filter((n): n is Exclude<InputName, 'mode'> => n !== 'mode')) {
      const line = lines.find((l) => l.startsWith(`  --${name} `)) ?? '';
      expect({ name, line: line !== '' }).toEqual({ name, line: true });
      const env = ENV_FALLBACKS[name];
      if (env) expect(line).toContain(`env ${env}`);
      if (defaultText(name)) expect(line).toContain(`default ${defaultText(name)}`);
    }
    expect(HELP).toContain(`  --neon-api-host URL`);
    expect(HELP).toMatch(/--retain N +how many backup branches to keep \(1-100; default 7\)/);
  });
});

describe('the run environment', () => {
  test('configFrom keeps the GitHub run the edge read, and inputs made effective once', () => {
    const run: GithubRunInfo = {
      owner: 'acme',
      repo: 'shop',
      repository: 'acme/shop',
      runId: '7',
      sha: 'abc',
      serverUrl: 'https://github.com',
      apiUrl: 'https://api.github.com',
      runUrl: 'https://github.com/acme/shop/actions/runs/7',
    };
    const { 'neon-api-key': _key, ...rest } = VALID;
    const effective = effectiveInputs(rest, { NEON_API_KEY: 'napi_from_env_1' });
    const config = configFrom(effective, {}, run);
    expect(config.githubRun).toEqual(run);
    expect(config.neonApiKey).toBe('napi_from_env_1');
    expect(configFrom(effective, {}, undefined).githubRun).toBeUndefined();
  });
});
