import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { ConfigError, DEFAULT_NEON_API_HOST, INPUT_NAMES, parseConfig, type RawInputs } from '../../src/config.js';
import { repoRoot } from '../../devkit/stack.js';

const PASSWORD = 'Zq7-secret-pw';
const API_KEY = 'napi_k3y_do_not_echo_7731';
const VALID: RawInputs = {
  mode: 'validate',
  'mongodb-uri': `mongodb+srv://app:${PASSWORD}@cluster0.example.net/?retryWrites=true`,
  'neon-api-key': API_KEY,
  'neon-project-id': 'late-frost-12345678',
  'neon-database-url': `postgresql://owner:${PASSWORD}@ep-cool-sun-123456.eu-central-1.aws.neon.tech/app?sslmode=require`,
};

function problemsOf(input: RawInputs, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(input, env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    // No rule may repeat a secret back.
    for (const p of [...problems, (error as Error).message]) {
      expect(p).not.toContain(PASSWORD);
      expect(p).not.toContain(API_KEY);
    }
    return [...problems];
  }
  throw new Error('parseConfig accepted the input');
}

describe('parseConfig', () => {
  test('Neon API timeouts come from the environment, in seconds, and a bad value names its variable', () => {
    expect(parseConfig(VALID, {}).neonTimeouts).toEqual({});
    const env = { SUPANEON_NEON_REQUEST_TIMEOUT_SECONDS: '2', SUPANEON_NEON_RETRY_DEADLINE_SECONDS: '8.5' };
    expect(parseConfig(VALID, env).neonTimeouts).toEqual({ requestTimeoutMs: 2000, retryDeadlineMs: 8500 });
    expect(problemsOf(VALID, { SUPANEON_NEON_REQUEST_TIMEOUT_SECONDS: '-1', SUPANEON_NEON_RETRY_DEADLINE_SECONDS: 'soon' })).toEqual([
      'environment variable SUPANEON_NEON_REQUEST_TIMEOUT_SECONDS must be a positive number of seconds: unset it or give e.g. 30',
      'environment variable SUPANEON_NEON_RETRY_DEADLINE_SECONDS must be a positive number of seconds: unset it or give e.g. 30',
    ]);
  });

  test('a valid validate configuration gets every default and is frozen', () => {
    const config = parseConfig(VALID, {});
    expect(config).toMatchObject({
      mode: 'validate',
      neonApiHost: DEFAULT_NEON_API_HOST,
      databases: [],
      include: [],
      exclude: [],
      branchPrefix: 'backup-',
      retain: 7,
      retainDays: undefined,
      restorePrefix: 'restore-test-',
      restoreTtlMinutes: 60,
      verify: 'full',
      sampleSize: 1000,
      checks: [],
      compareSource: false,
      keepRestoreBranch: false,
      targetMongodbUri: undefined,
      targetDatabasePrefix: '',
      dropTarget: false,
      batchSize: 1000,
      lockWaitSeconds: 0,
    });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.include)).toBe(true);
  });

  test('environment variables fill empty inputs; inputs win over them', () => {
    const env = {
      MONGODB_SRV_URL: 'mongodb://env-host:27017/',
      NEON_API_KEY: 'env-key',
      NEON_PROJECT_ID: 'env-project-111',
      NEON_DATABASE_URL: 'postgres://u:p@env-pg/db?sslmode=verify-full',
      NEON_API_HOST: 'http://127.0.0.1:4444/api/v2/',
    };
    const fromEnv = parseConfig({ mode: 'backup', 'mongodb-uri': '', 'neon-api-key': '  ' }, env);
    expect(fromEnv.mongodbUri).toBe('mongodb://env-host:27017/');
    expect(fromEnv.neonApiKey).toBe('env-key');
    expect(fromEnv.neonProjectId).toBe('env-project-111');
    expect(fromEnv.neonDatabaseUrl).toBe(env.NEON_DATABASE_URL);
    expect(fromEnv.neonApiHost).toBe('http://127.0.0.1:4444/api/v2');
    const fromInput = parseConfig({ ...VALID }, env);
    expect(fromInput.neonApiKey).toBe(API_KEY);
  });

  test('lists split on commas and new lines; checks split on new lines only', () => {
    const config = parseConfig(
      {
        ...VALID,
        databases: 'shop, crm\nanalytics',
        include: 'shop.*,crm.users',
        exclude: '*.tmp_*\n',
        checks: 'SELECT count(*) > 0 FROM shop.orders\n\n  SELECT bool_and(x, y) FROM t  \n',
      },
      {},
    );
    expect(config.databases).toEqual(['shop', 'crm', 'analytics']);
    expect(config.include).toEqual(['shop.*', 'crm.users']);
    expect(config.exclude).toEqual(['*.tmp_*']);
    expect(config.checks).toEqual(['SELECT count(*) > 0 FROM shop.orders', 'SELECT bool_and(x, y) FROM t']);
  });

  test('mode: missing or unknown', () => {
    expect(problemsOf({})).toEqual([
      expect.stringMatching(/^input 'mode' is required: set it to one of validate, backup, restore, recover/),
    ]);
    expect(problemsOf({ mode: 'sync' })).toEqual([expect.stringMatching(/^input 'mode' 'sync' is not a mode: use one of/)]);
  });

  test.each([
    ['validate', ['mongodb-uri', 'neon-api-key', 'neon-project-id', 'neon-database-url']],
    ['backup', ['mongodb-uri', 'neon-api-key', 'neon-project-id', 'neon-database-url']],
    ['restore', ['neon-api-key', 'neon-project-id', 'neon-database-url']],
    ['recover', ['neon-api-key', 'neon-project-id', 'neon-database-url', 'target-mongodb-uri']],
  ])('mode %s requires %j', (mode, required) => {
    const problems = problemsOf({ mode });
    expect(problems).toHaveLength(required.length);
    for (const input of required) {
      expect(problems).toContainEqual(expect.stringMatching(new RegExp(`^input '${input}' is required for mode ${mode}: .+`)));
    }
  });

  test('recover with a target is complete without a source', () => {
    const { 'mongodb-uri': _source, ...rest } = VALID;
    const config = parseConfig({ ...rest, mode: 'recover', 'target-mongodb-uri': 'mongodb://t:pw@target:27017/' }, {});
    expect(config.targetMongodbUri).toBe('mongodb://t:pw@target:27017/');
    expect(config.mongodbUri).toBeUndefined();
  });

  test('restore with compare-source needs the source', () => {
    const { 'mongodb-uri': _source, ...rest } = VALID;
    expect(problemsOf({ ...rest, mode: 'restore', 'compare-source': 'true' })).toEqual([
      expect.stringMatching(/^input 'mongodb-uri' is required when compare-source is true/),
    ]);
  });

  test.each([
    [`http://app:${PASSWORD}@host/`, /has scheme 'http': it must start with mongodb:\/\/ or mongodb\+srv:\/\//],
    [`cluster0.example.net`, /is not a connection string/],
    [`mongodb://app:${PASSWORD}@/db`, /names no host/],
    [`mongodb+srv://app:${PASSWORD}@a.example.net,b.example.net/`, /lists several hosts/],
  ])('mongodb-uri %#: refused without echoing it', (uri, message) => {
    expect(problemsOf({ ...VALID, 'mongodb-uri': uri })).toEqual([
      expect.stringMatching(new RegExp(`^input 'mongodb-uri' ${message.source}`)),
    ]);
  });

  test('passwords with unescaped delimiters are refused before a driver misparses and echoes them', () => {
    for (const [input, url] of [
      ['mongodb-uri', `mongodb://app:p@ss:w/rd${PASSWORD}@host/`],
      ['neon-database-url', `postgres://owner:a/b${PASSWORD}@host/db?sslmode=require`],
      ['target-mongodb-uri', `mongodb://t:x#y${PASSWORD}@h/`],
    ]) {
      expect(problemsOf({ ...VALID, mode: 'recover', 'target-mongodb-uri': 'mongodb://t/', [input]: url })).toEqual([
        expect.stringMatching(new RegExp(`^input '${input}' has a password with unescaped special characters: percent-encode`)),
      ]);
    }
    expect(problemsOf({ ...VALID, 'mongodb-uri': `mongodb://app:100%${PASSWORD}@host/` })).toEqual([
      expect.stringMatching(/^input 'mongodb-uri' has a user name or password with a '%' that does not start a %XX escape/),
    ]);
    expect(parseConfig({ ...VALID, 'mongodb-uri': `mongodb://app:${encodeURIComponent('p@ss:w/rd%')}@host/` }, {}).mongodbUri).toContain(
      '%40',
    );
  });

  test('a multi-host mongodb:// URI is accepted', () => {
    expect(parseConfig({ ...VALID, 'mongodb-uri': `mongodb://app:${PASSWORD}@a:27017,b:27017/?replicaSet=rs0` }, {}).mongodbUri).toContain(
      'a:27017,b:27017',
    );
  });

  test.each(['disable', 'allow', 'prefer'])('neon-database-url with sslmode=%s is refused: TLS is required', (mode) => {
    const url = `postgresql://owner:${PASSWORD}@ep-x.neon.tech/app?sslmode=${mode}`;
    expect(problemsOf({ ...VALID, 'neon-database-url': url })).toEqual([
      expect.stringMatching(
        new RegExp(
          `^input 'neon-database-url' has sslmode=${mode}.*TLS to Neon is required; use sslmode=require, verify-ca or verify-full`,
        ),
      ),
    ]);
  });

  test('neon-database-url: missing sslmode, wrong scheme, not a URL', () => {
    expect(problemsOf({ ...VALID, 'neon-database-url': `postgresql://owner:${PASSWORD}@ep-x.neon.tech/app` })).toEqual([
      expect.stringMatching(/^input 'neon-database-url' has no sslmode: TLS to Neon is required; add \?sslmode=require/),
    ]);
    expect(problemsOf({ ...VALID, 'neon-database-url': `mysql://owner:${PASSWORD}@h/app?sslmode=require` })).toEqual([
      expect.stringMatching(/^input 'neon-database-url' has scheme 'mysql'/),
    ]);
    expect(problemsOf({ ...VALID, 'neon-database-url': `owner:${PASSWORD} at somewhere` })).toEqual([
      expect.stringMatching(/^input 'neon-database-url' is not a valid URL/),
    ]);
  });

  test.each(['verify-ca', 'verify-full', 'require'])('neon-database-url with sslmode=%s is accepted', (mode) => {
    expect(() => parseConfig({ ...VALID, 'neon-database-url': `postgres://o:p@h/app?sslmode=${mode}` }, {})).not.toThrow();
  });

  test("neon-project-id must have Neon's shape", () => {
    for (const bad of ['Late-Frost-1', 'late frost', 'proj_123', 'nohyphen', '-lead', 'trail-']) {
      expect(problemsOf({ ...VALID, 'neon-project-id': bad })).toEqual([
        expect.stringMatching(/^input 'neon-project-id' .* does not look like a Neon project id/),
      ]);
    }
    for (const good of ['late-frost-12345678', 'dry-heart-13671059', 'a-1']) {
      expect(parseConfig({ ...VALID, 'neon-project-id': good }, {}).neonProjectId).toBe(good);
    }
  });

  test('neon-api-host: https anywhere, http only on loopback', () => {
    expect(parseConfig({ ...VALID, 'neon-api-host': 'https://api.example.com/api/v2' }, {}).neonApiHost).toBe(
      'https://api.example.com/api/v2',
    );
    expect(parseConfig({ ...VALID, 'neon-api-host': 'http://localhost:8080/api/v2' }, {}).neonApiHost).toBe('http://localhost:8080/api/v2');
    expect(parseConfig({ ...VALID, 'neon-api-host': 'http://127.0.0.7:1/api/v2' }, {}).neonApiHost).toBe('http://127.0.0.7:1/api/v2');
    expect(problemsOf({ ...VALID, 'neon-api-host': 'http://api.example.com/api/v2' })).toEqual([
      expect.stringMatching(/^input 'neon-api-host' uses http:\/\/ for a non-local host.*use https:\/\//),
    ]);
    expect(problemsOf({ ...VALID, 'neon-api-host': 'ftp://x/' })).toEqual([
      expect.stringMatching(/^input 'neon-api-host' has scheme 'ftp'/),
    ]);
    expect(problemsOf({ ...VALID, 'neon-api-host': 'console.neon.tech' })).toEqual([
      expect.stringMatching(/^input 'neon-api-host' is not a valid URL/),
    ]);
  });

  test.each([
    ['retain', '0', /must be from 1 to 100; got 0/],
    ['retain', '101', /must be from 1 to 100; got 101/],
    ['retain', '7.5', /must be a whole number from 1 to 100; got '7.5'/],
    ['retain-days', '0', /must be from 1 to 36500/],
    ['restore-ttl-minutes', '4', /must be from 5 to 43200; got 4/],
    ['restore-ttl-minutes', '43201', /must be from 5 to 43200/],
    ['sample-size', '0', /must be from 1 to 1000000/],
    ['batch-size', '100001', /must be from 1 to 100000/],
    ['batch-size', '-5', /must be a whole number/],
    ['lock-wait-seconds', '3601', /must be from 0 to 3600/],
    ['lock-wait-seconds', 'soon', /must be a whole number from 0 to 3600; got 'soon'/],
  ])('%s=%s is out of range', (input, value, message) => {
    expect(problemsOf({ ...VALID, [input]: value })).toEqual([expect.stringMatching(new RegExp(`^input '${input}' ${message.source}`))]);
  });

  test('numbers at the edges of their ranges are accepted', () => {
    const config = parseConfig(
      {
        ...VALID,
        retain: '100',
        'retain-days': '30',
        'restore-ttl-minutes': '5',
        'batch-size': '1',
        'lock-wait-seconds': '3600',
        'sample-size': '1',
      },
      {},
    );
    expect([
      config.retain,
      config.retainDays,
      config.restoreTtlMinutes,
      config.batchSize,
      config.lockWaitSeconds,
      config.sampleSize,
    ]).toEqual([100, 30, 5, 1, 3600, 1]);
  });

  test('booleans are true or false only', () => {
    expect(parseConfig({ ...VALID, 'drop-target': 'true', 'keep-restore-branch': 'false' }, {})).toMatchObject({
      dropTarget: true,
      keepRestoreBranch: false,
    });
    for (const bad of ['yes', 'TRUE', '1']) {
      expect(problemsOf({ ...VALID, 'compare-source': bad })).toEqual([
        expect.stringMatching(/^input 'compare-source' must be true or false/),
      ]);
    }
  });

  test('verify is full or sample', () => {
    expect(parseConfig({ ...VALID, verify: 'sample' }, {}).verify).toBe('sample');
    expect(problemsOf({ ...VALID, verify: 'quick' })).toEqual([expect.stringMatching(/^input 'verify' must be 'full' or 'sample'/)]);
  });

  test('branch and restore prefixes must be usable in branch names', () => {
    expect(parseConfig({ ...VALID, 'branch-prefix': 'nightly/backup-' }, {}).branchPrefix).toBe('nightly/backup-');
    expect(problemsOf({ ...VALID, 'branch-prefix': 'my backup' })).toEqual([
      expect.stringMatching(/^input 'branch-prefix' is not usable in Neon branch names/),
    ]);
    expect(problemsOf({ ...VALID, 'restore-prefix': '-x' })).toEqual([expect.stringMatching(/^input 'restore-prefix' is not usable/)]);
    expect(problemsOf({ ...VALID, 'restore-prefix': 'x'.repeat(65) })).toHaveLength(1);
  });

  test('databases must be MongoDB database names; patterns follow the selection rules', () => {
    expect(problemsOf({ ...VALID, databases: 'shop, bad.name' })).toEqual([
      expect.stringMatching(/^input 'databases' 'bad.name' is not a MongoDB database name/),
    ]);
    expect(problemsOf({ ...VALID, include: 'shop' })).toEqual([
      expect.stringMatching(/^input 'include' is not usable: pattern "shop" cannot match/),
    ]);
    expect(problemsOf({ ...VALID, exclude: 'db.x\\' })).toEqual([expect.stringMatching(/^input 'exclude' is not usable: .*lone/)]);
  });

  test('target-database-prefix and backup-branch', () => {
    expect(problemsOf({ ...VALID, 'target-database-prefix': 'a.b' })).toEqual([
      expect.stringMatching(/^input 'target-database-prefix' 'a.b' cannot start a MongoDB database name/),
    ]);
    expect(problemsOf({ ...VALID, mode: 'backup', 'backup-branch': 'standby' })).toEqual([
      expect.stringMatching(/^input 'backup-branch' 'standby' is accepted only by modes restore and recover/),
    ]);
    expect(parseConfig({ ...VALID, mode: 'restore', 'backup-branch': 'standby' }, {}).backupBranch).toBe('standby');
    expect(
      parseConfig({ ...VALID, mode: 'recover', 'target-mongodb-uri': 'mongodb://t/', 'backup-branch': 'standby' }, {}).backupBranch,
    ).toBe('standby');
  });

  test('a list input made only of separators is a usage error, not "everything"', () => {
    expect(problemsOf({ ...VALID, databases: ' , ,' })).toEqual([
      expect.stringMatching(/^input 'databases' holds only separators .* no database name/),
    ]);
    expect(problemsOf({ ...VALID, databases: ',\n,' })).toHaveLength(1);
    expect(problemsOf({ ...VALID, include: ',' })).toEqual([expect.stringMatching(/^input 'include' holds only separators/)]);
    expect(problemsOf({ ...VALID, exclude: ' ,\n ' })).toEqual([expect.stringMatching(/^input 'exclude' holds only separators/)]);
    // Empty and white space alone still mean unset.
    expect(parseConfig({ ...VALID, databases: '  ' }, {}).databases).toEqual([]);
  });

  test('unknown inputs are refused', () => {
    expect(problemsOf({ ...VALID, 'neon-api-token': 'x' })).toEqual([
      expect.stringMatching(/^input 'neon-api-token' is not an input of supaneon-sync/),
    ]);
  });

  test('every problem is reported at once, one line each', () => {
    const problems = problemsOf({
      mode: 'backup',
      'mongodb-uri': `https://app:${PASSWORD}@x/`,
      'neon-database-url': `postgres://o:${PASSWORD}@h/app?sslmode=disable`,
      'neon-project-id': 'BAD',
      retain: '0',
      'drop-target': 'maybe',
    });
    expect(problems.map((p) => p.match(/^input '([^']+)'/)?.[1]).sort()).toEqual(
      ['drop-target', 'mongodb-uri', 'neon-api-key', 'neon-database-url', 'neon-project-id', 'retain'].sort(),
    );
    for (const p of problems) expect(p).not.toContain('\n');
    let message = '';
    try {
      parseConfig({ mode: 'backup', retain: '0' }, {});
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/^invalid configuration \(5 problems\):\n- input /);
  });

  test('backup reads exactly one source: mongodb-uri or source-dump-dir', () => {
    const { 'mongodb-uri': source, ...rest } = VALID;
    const fromDump = parseConfig({ ...rest, mode: 'backup', 'source-dump-dir': './dump' }, {});
    expect(fromDump.sourceDumpDir).toBe('./dump');
    expect(fromDump.mongodbUri).toBeUndefined();
    // MONGODB_SRV_URL, set for other runs, does not become a second source.
    expect(parseConfig({ ...rest, mode: 'backup', 'source-dump-dir': './dump' }, { MONGODB_SRV_URL: source }).mongodbUri).toBeUndefined();
    expect(problemsOf({ ...VALID, mode: 'backup', 'source-dump-dir': './dump' })).toEqual([
      expect.stringMatching(/^input 'source-dump-dir' and mongodb-uri are both set: a backup reads one source; remove one of them$/),
    ]);
    expect(problemsOf({ ...rest, mode: 'backup' })).toEqual([
      expect.stringMatching(/^input 'mongodb-uri' is required for mode backup: .+or pass source-dump-dir/),
    ]);
    expect(problemsOf({ ...rest, mode: 'restore', 'source-dump-dir': './dump' })).toEqual([
      "input 'source-dump-dir' is used only by modes backup and validate, not restore: remove it",
    ]);
    expect(parseConfig({ ...rest, mode: 'validate', 'source-dump-dir': './dump' }, { MONGODB_SRV_URL: source }).sourceDumpDir).toBe(
      './dump',
    );
  });

  test('recover writes exactly one target: target-mongodb-uri or target-dump-dir', () => {
    const { 'mongodb-uri': _source, ...rest } = VALID;
    const toDump = parseConfig({ ...rest, mode: 'recover', 'target-dump-dir': './out', 'dump-gzip': 'true' }, {});
    expect(toDump.targetDumpDir).toBe('./out');
    expect(toDump.dumpGzip).toBe(true);
    expect(toDump.targetMongodbUri).toBeUndefined();
    expect(
      problemsOf({ ...rest, mode: 'recover', 'target-dump-dir': './out', 'target-mongodb-uri': `mongodb://t:${PASSWORD}@target/` }),
    ).toEqual(["input 'target-dump-dir' and target-mongodb-uri are both set: recover writes to one target; remove one of them"]);
    expect(problemsOf({ ...rest, mode: 'recover', 'target-mongodb-uri': 'mongodb://target/', 'dump-gzip': 'true' })).toEqual([
      expect.stringMatching(/^input 'dump-gzip' shapes the dump written to target-dump-dir, which is not set/),
    ]);
    expect(problemsOf({ ...rest, mode: 'restore', 'target-dump-dir': './out' })).toEqual([
      "input 'target-dump-dir' is used only by mode recover, not restore: remove it",
    ]);
  });

  test('INPUT_NAMES lists exactly the inputs of action.yml, in order', () => {
    const action = parse(readFileSync(path.join(repoRoot, 'action.yml'), 'utf8')) as { inputs: Record<string, unknown> };
    expect(Object.keys(action.inputs)).toEqual([...INPUT_NAMES]);
  });
});
