/**
 * The one table of inputs. Everything else that describes an input is derived from it: the
 * configuration's defaults, ranges, required inputs and their hints (config.ts), which inputs are
 * masked (run.ts), the CLI's flags and help (command-line.ts), and the inputs block of action.yml,
 * docs/INPUTS.md and the README's table (`npm run docs:inputs`; a unit test checks action.yml against
 * this table, since action.yml is the file GitHub reads).
 *
 * Adding an input: add its entry here (in the order action.yml lists it), its rule to the zod schema
 * in config.ts (a compile error points there), its Config field, then run `npm run docs:inputs`.
 *
 * This module holds data only: the CLI, the docs script and the action all import it.
 */

export type Mode = 'validate' | 'backup' | 'restore' | 'recover';
export const MODES: readonly Mode[] = ['validate', 'backup', 'restore', 'recover'];

export const DEFAULT_NEON_API_HOST = 'https://console.neon.tech/api/v2';

interface InputCommon {
  /** action.yml's description (Markdown, also the docs' table); the env fallback sentence is appended. */
  readonly description: string;
  /** The CLI help's one line. Env fallback, range and default are appended. */
  readonly help: string;
  /** What the CLI help shows after the flag; a kind's own placeholder when absent. */
  readonly placeholder?: string;
  /** Environment variable used when the input is empty (users of the original scripts already have it). */
  readonly env?: string;
  /** Modes that cannot run without it (after the env fallback). Conditional requirements are rules in config.ts. */
  readonly requiredBy?: readonly Mode[];
  /** How to fix it when missing: ends the "is required" problem. */
  readonly hint?: string;
}

export type InputSpec = InputCommon &
  (
    | { readonly kind: 'string'; readonly default?: string }
    /** A credential: masked before anything is logged, never repeated in a problem. */
    | { readonly kind: 'secret' }
    /** Items separated by commas or new lines. */
    | { readonly kind: 'list' }
    /** One item a line (commas belong to the items, e.g. SQL). */
    | { readonly kind: 'lines' }
    | { readonly kind: 'boolean'; readonly default: boolean }
    | { readonly kind: 'integer'; readonly min: number; readonly max: number; readonly default?: number }
    | { readonly kind: 'choice'; readonly choices: readonly string[]; readonly default?: string }
  );

/** Every input of action.yml, in its order. The CLI accepts each (except mode) as `--<name>`. */
export const INPUTS = {
  mode: {
    kind: 'choice',
    choices: MODES,
    requiredBy: MODES,
    hint: `set it to one of ${MODES.join(', ')}`,
    description:
      'What to do: validate (check everything a backup needs), backup, restore (verify a backup in a temporary branch) or recover (write a backup back into MongoDB).',
    help: 'what to do; the CLI takes it as its first argument, not as a flag',
  },
  'mongodb-uri': {
    kind: 'secret',
    env: 'MONGODB_SRV_URL',
    // Required by validate and backup unless source-dump-dir is given, by restore with compare-source: rules in config.ts.
    hint: 'pass the MongoDB connection string (mongodb+srv://…) from a secret, or set MONGODB_SRV_URL',
    placeholder: 'URI',
    description:
      'Source MongoDB connection string (mongodb:// or mongodb+srv://), from a secret. Required for validate and backup unless source-dump-dir is given; for restore only with compare-source.',
    help: 'source MongoDB',
  },
  'neon-api-key': {
    kind: 'secret',
    env: 'NEON_API_KEY',
    requiredBy: MODES,
    hint: 'pass a Neon API key from a secret, or set NEON_API_KEY',
    placeholder: 'KEY',
    description: 'Neon API key, from a secret.',
    help: 'Neon API key',
  },
  'neon-project-id': {
    kind: 'string',
    env: 'NEON_PROJECT_ID',
    requiredBy: MODES,
    hint: "pass the Neon project id (Project settings, e.g. 'late-frost-12345678'), or set NEON_PROJECT_ID",
    placeholder: 'ID',
    description: 'Neon project id (e.g. late-frost-12345678).',
    help: 'Neon project id',
  },
  'neon-database-url': {
    kind: 'secret',
    env: 'NEON_DATABASE_URL',
    requiredBy: MODES,
    hint: "pass the standby branch's connection string (postgresql://…?sslmode=require) from a secret, or set NEON_DATABASE_URL",
    placeholder: 'URL',
    description:
      'Connection string of the standby branch (the branch that holds the latest copy), from a secret; sslmode must be require, verify-ca or verify-full.',
    help: 'standby branch connection string, sslmode=require',
  },
  'neon-api-host': {
    kind: 'string',
    env: 'NEON_API_HOST',
    default: DEFAULT_NEON_API_HOST,
    placeholder: 'URL',
    description: 'Neon API base URL.',
    help: 'Neon API base URL',
  },
  databases: {
    kind: 'list',
    description: 'MongoDB databases to include, separated by commas or new lines. Empty means every non-system database.',
    help: 'databases to back up, comma separated (empty: every non-system one)',
  },
  include: {
    kind: 'list',
    description: 'Glob patterns over db.collection to include (* and ?), separated by commas or new lines. Empty means all.',
    help: 'glob patterns over db.collection to include (empty: all)',
  },
  exclude: {
    kind: 'list',
    description: 'Glob patterns over db.collection to leave out, separated by commas or new lines.',
    help: 'glob patterns over db.collection to leave out',
  },
  'branch-prefix': {
    kind: 'string',
    default: 'backup-',
    placeholder: 'P',
    description: 'Prefix of backup branch names; the UTC time is appended (backup-20260501T031500Z).',
    help: 'backup branch name prefix',
  },
  retain: {
    kind: 'integer',
    min: 1,
    max: 100,
    default: 7,
    description:
      "How many backup branches to keep (1-100). The default fits Neon's free plan of 10 branches: standby, 7 backups, the new one and a restore test.",
    help: 'how many backup branches to keep',
  },
  'retain-days': {
    kind: 'integer',
    min: 1,
    max: 36500,
    description: 'Also delete backup branches older than this many days. Empty means no age limit. The newest backup is never deleted.',
    help: 'if set, also delete backup branches older than this many days',
  },
  'backup-branch': {
    kind: 'string',
    placeholder: 'NAME|ID',
    description:
      "restore and recover: the backup branch to use (name or id, e.g. the branch-id output of a backup); only branches made by mode backup are accepted. Empty means the newest backup; 'standby' reads the standby itself.",
    help: "restore/recover: which backup (empty: the newest; 'standby' for the standby)",
  },
  'restore-prefix': {
    kind: 'string',
    default: 'restore-test-',
    placeholder: 'P',
    description: 'restore: prefix of the temporary restore branch names.',
    help: 'restore branch name prefix',
  },
  'restore-ttl-minutes': {
    kind: 'integer',
    min: 5,
    max: 43200,
    default: 60,
    description: 'restore: expiry of the temporary restore branch, a safety net should cleanup fail (5-43200 minutes).',
    help: 'expiry of the temporary restore branch',
  },
  verify: {
    kind: 'choice',
    choices: ['full', 'sample'],
    default: 'full',
    description: "restore: 'full' rebuilds every stored document; 'sample' checks sample-size random documents per collection.",
    help: 'restore verification depth',
  },
  'sample-size': {
    kind: 'integer',
    min: 1,
    max: 1_000_000,
    default: 1000,
    description: "restore: documents checked per collection when verify is 'sample'.",
    help: 'documents per collection when verify=sample',
  },
  checks: {
    kind: 'lines',
    placeholder: 'SQL',
    description: 'restore: your own SQL checks, one query a line; each must return a single true.',
    help: 'restore: SQL queries, one a line, each must return true',
  },
  'compare-source': {
    kind: 'boolean',
    default: false,
    description: 'restore: also compare counts with the live MongoDB (mongodb-uri); drift is reported as a notice.',
    help: 'restore: compare counts with the live MongoDB',
  },
  'keep-restore-branch': {
    kind: 'boolean',
    default: false,
    description: 'restore: keep the temporary branch for inspection instead of deleting it.',
    help: 'restore: keep the temporary branch',
  },
  'target-mongodb-uri': {
    kind: 'secret',
    // Required by recover unless target-dump-dir is given: a rule in config.ts.
    hint: 'recover never writes to an implicit target: pass the MongoDB connection string to restore into',
    placeholder: 'URI',
    description:
      'recover: connection string of the MongoDB to write into, from a secret. Required for recover unless target-dump-dir is given; there is no implicit target.',
    help: 'recover: the MongoDB to write into (or --target-dump-dir)',
  },
  'target-database-prefix': {
    kind: 'string',
    placeholder: 'P',
    description: 'recover: prefix added to every target database name, for side-by-side recovery (e.g. restored_).',
    help: 'recover: prefix for target database names',
  },
  'drop-target': {
    kind: 'boolean',
    default: false,
    description: 'recover: replace target collections that already hold data. When false, a non-empty target collection stops the run.',
    help: 'recover: replace non-empty target collections',
  },
  'batch-size': {
    kind: 'integer',
    min: 1,
    max: 100_000,
    default: 1000,
    description:
      "Most documents per MongoDB cursor batch (1-100000); batches are sized to about 1 MiB from each collection's average document size, up to this many.",
    help: 'most documents per cursor batch',
  },
  'parallel-collections': {
    kind: 'integer',
    min: 1,
    max: 16,
    default: 4,
    description:
      "backup: collections read from MongoDB at once (1-16), as mongodump's --numParallelCollections; the standby still changes in one transaction. 1 reads them one after the other, which is gentler on a busy shared cluster.",
    help: 'collections read at once during a backup',
  },
  'lock-wait-seconds': {
    kind: 'integer',
    min: 0,
    max: 3600,
    default: 0,
    description: 'backup: how long to wait for a concurrent backup of the same standby to finish (0-3600); 0 fails at once.',
    help: 'backup: wait this long for a concurrent backup',
  },
  'max-backup-age': {
    kind: 'string',
    placeholder: 'AGE',
    description:
      "restore and validate: fail when this standby's newest completed backup is older than this (a number and m, h or d: 90m, 26h, 7d), so a schedule that stopped turns red. Empty means no limit.",
    help: 'restore/validate: fail when the newest backup is older (90m, 26h, 7d)',
  },
  'allow-selection-change': {
    kind: 'boolean',
    default: false,
    description:
      'backup: accept that a changed databases/include/exclude drops tables the previous backup selected. When false, such a backup stops before changing anything.',
    help: 'backup: accept dropping tables the previous backup selected',
  },
  'github-token': {
    kind: 'secret',
    placeholder: 'TOKEN',
    description:
      "Alerts: a token allowed to write issues, e.g. the workflow's github.token with 'permissions: issues: write'. A failed backup, restore or validate opens (or comments on) one tracking issue per mode; the next success comments and closes it. Empty means no alerts.",
    help: 'alerts: open/close a tracking issue (needs GITHUB_REPOSITORY; see docs)',
  },
  'source-dump-dir': {
    kind: 'string',
    placeholder: 'DIR',
    description:
      "backup, validate: a mongodump output directory (mongodump --out, plain or --gzip), or a mongodump --archive file, to back up instead of a live MongoDB; takes the place of mongodb-uri. Consistency is recorded as 'dump'.",
    help: 'backup: read this mongodump directory (or archive) instead of mongodb-uri',
  },
  'target-dump-dir': {
    kind: 'string',
    placeholder: 'DIR',
    description:
      'recover: write the backup as a mongodump directory here (for mongorestore) instead of into a live MongoDB; takes the place of target-mongodb-uri. Must not exist or be empty, unless drop-target replaces it.',
    help: 'recover: write a mongodump directory here instead of target-mongodb-uri',
  },
  'dump-gzip': {
    kind: 'boolean',
    default: false,
    description:
      'recover with target-dump-dir: compress the files as mongodump --gzip does (.bson.gz, .metadata.json.gz); restore them with mongorestore --gzip.',
    help: 'recover into a dump: gzip the files like mongodump --gzip',
  },
  'dump-archive': {
    kind: 'boolean',
    default: false,
    description:
      'recover with target-dump-dir: write one mongodump --archive file at target-dump-dir instead of a directory (gzip-compressed as a whole with dump-gzip); restore it with mongorestore --archive=FILE. backup reads an archive given as source-dump-dir by itself.',
    help: 'recover into a dump: one mongodump --archive file',
  },
} as const satisfies Record<string, InputSpec>;

export type InputName = keyof typeof INPUTS;

/** The input names in action.yml's order. */
export const INPUT_NAMES = Object.keys(INPUTS) as readonly InputName[];

function spec(name: InputName): InputSpec {
  return INPUTS[name];
}

function namesWhere(test: (spec: InputSpec) => boolean): readonly InputName[] {
  return Object.freeze(INPUT_NAMES.filter((name) => test(spec(name))));
}

/** Inputs that are true or false; the CLI takes such a flag alone as true. */
export const BOOLEAN_INPUTS = namesWhere((s) => s.kind === 'boolean');

/** Inputs that carry credentials: masked before anything is logged. */
export const SECRET_INPUTS = namesWhere((s) => s.kind === 'secret');

/** Environment variables used when the input is empty. */
export const ENV_FALLBACKS: Readonly<Partial<Record<InputName, string>>> = Object.freeze(
  Object.fromEntries(INPUT_NAMES.flatMap((name) => (spec(name).env ? [[name, spec(name).env]] : []))),
);

/** Inputs each mode cannot run without (after environment fallbacks). */
export const REQUIRED_BY_MODE: Readonly<Record<Mode, readonly InputName[]>> = Object.freeze(
  Object.fromEntries(MODES.map((mode) => [mode, namesWhere((s) => s.requiredBy?.includes(mode) ?? false)])) as Record<
    Mode,
    readonly InputName[]
  >,
);

/** How to fix a missing input, for the "is required" problem. */
export function requiredHint(name: InputName): string {
  return spec(name).hint ?? `set ${name}`;
}

/** The value used when the input (and its env fallback) is empty, as action.yml would write it; '' = none. */
export function defaultText(name: InputName): string {
  const s = spec(name);
  return 'default' in s && s.default !== undefined ? String(s.default) : '';
}

/**
 * The input as action.yml declares it. An input with an env fallback has an empty default there,
 * else the runner would pass the default and the fallback could never apply; the default then
 * follows the fallback (see its description). Required means required by every mode with no
 * fallback to stand in.
 */
export function actionYmlInput(name: InputName): { description: string; required: boolean; default?: string } {
  const s = spec(name);
  const required = MODES.every((mode) => s.requiredBy?.includes(mode)) && s.env === undefined;
  const fallback = s.env ? ` Falls back to env ${s.env}${defaultText(name) ? `, then ${defaultText(name)}` : ''}.` : '';
  const description = `${s.description}${fallback}`;
  if (required) return { description, required };
  return { description, required, default: s.env ? '' : defaultText(name) };
}

/** What the CLI help shows after `--<name>`. */
export function placeholderOf(name: InputName): string {
  const s = spec(name);
  if (s.placeholder) return s.placeholder;
  switch (s.kind) {
    case 'boolean':
      return 'BOOL';
    case 'integer':
      return 'N';
    case 'list':
    case 'lines':
      return 'LIST';
    case 'choice':
      return s.choices.join('|');
    default:
      return 'VALUE';
  }
}

/** The CLI help's line text for an input: its help, then env fallback, range and default. */
export function helpLine(name: InputName): string {
  const s = spec(name);
  const notes = [
    s.env ? `env ${s.env}` : undefined,
    s.kind === 'integer' ? `${s.min}-${s.max}` : undefined,
    defaultText(name) ? `default ${defaultText(name)}` : undefined,
  ].filter(Boolean);
  return notes.length > 0 ? `${s.help} (${notes.join('; ')})` : s.help;
}

/** The names of the inputs of one kind, e.g. `InputOfKind<'integer'>`. */
export type InputOfKind<K extends InputSpec['kind']> = { [N in InputName]: (typeof INPUTS)[N]['kind'] extends K ? N : never }[InputName];
