/**
 * Inputs (action inputs, CLI flags, environment fallbacks) -> one frozen, typed Config.
 *
 * Every rule reports a problem that names the input, says what is wrong and how to fix it, and
 * never repeats the value it was given: most inputs here are connection strings or keys.
 * All problems are collected and reported together so one run shows everything to fix.
 */
import { z } from 'zod';
import { parseMaxAge } from './freshness.js';
import { currentGithubRun, type GithubRunInfo } from './github-run.js';
import {
  DEFAULT_NEON_API_HOST,
  ENV_FALLBACKS,
  INPUT_NAMES,
  INPUTS,
  MODES,
  REQUIRED_BY_MODE,
  requiredHint,
  type InputName,
  type InputOfKind,
  type Mode,
} from './inputs.js';
import { userInfoOf } from './secrets.js';
import { validatePattern } from './selection.js';

// What every input is (kind, default, range, env fallback, which modes need it) lives in inputs.ts;
// these names are re-exported for the callers that know them from here.
export { DEFAULT_NEON_API_HOST, INPUT_NAMES, MODES, type InputName, type Mode };

/** Keys are input names (kebab-case); '' or undefined = unset. */
export type RawInputs = Record<string, string | undefined>;

declare const effective: unique symbol;
/**
 * Raw inputs after effectiveInputs(): trimmed, empty ones dropped, environment fallbacks applied.
 * A distinct type so a run computes them once and hands the same values to masking, the
 * configuration and the alert.
 */
export type EffectiveInputs = Readonly<RawInputs> & { readonly [effective]: true };

export interface Config {
  readonly mode: Mode;
  readonly mongodbUri: string | undefined;
  readonly neonApiKey: string;
  readonly neonProjectId: string;
  readonly neonDatabaseUrl: string;
  readonly neonApiHost: string;
  readonly databases: readonly string[];
  readonly include: readonly string[];
  readonly exclude: readonly string[];
  readonly branchPrefix: string;
  readonly retain: number;
  readonly retainDays: number | undefined;
  readonly backupBranch: string | undefined;
  readonly restorePrefix: string;
  readonly restoreTtlMinutes: number;
  readonly verify: 'full' | 'sample';
  readonly sampleSize: number;
  readonly checks: readonly string[];
  readonly compareSource: boolean;
  readonly keepRestoreBranch: boolean;
  readonly targetMongodbUri: string | undefined;
  readonly targetDatabasePrefix: string;
  readonly dropTarget: boolean;
  readonly batchSize: number;
  /** backup: collections read at once (1 = one after the other). */
  readonly parallelCollections: number;
  readonly lockWaitSeconds: number;
  /** restore and validate: the newest backup may be at most this old (milliseconds); undefined = no limit. */
  readonly maxBackupAgeMs: number | undefined;
  /** The max-backup-age input as written, for messages. */
  readonly maxBackupAge: string | undefined;
  readonly allowSelectionChange: boolean;
  /** A token allowed to write issues: alerts on failure when set. */
  readonly githubToken: string | undefined;
  /** backup: a mongodump output directory to read instead of a live MongoDB. */
  readonly sourceDumpDir: string | undefined;
  /** recover: write a mongodump directory here instead of into a live MongoDB. */
  readonly targetDumpDir: string | undefined;
  /** recover into a dump: compress its files as mongodump --gzip does. */
  readonly dumpGzip: boolean;
  /** recover into a dump: one mongodump --archive file at target-dump-dir instead of a directory. */
  readonly dumpArchive: boolean;
  /** Neon API timeouts from the environment (not inputs); unset means the client's defaults. */
  readonly neonTimeouts: NeonTimeouts;
  /** The GitHub Actions run this is (from the environment, not inputs); undefined outside a workflow. */
  readonly githubRun: GithubRunInfo | undefined;
}

export interface NeonTimeouts {
  /** One HTTP request may take this long. */
  readonly requestTimeoutMs?: number;
  /** One call keeps retrying 423/429/5xx this long. */
  readonly retryDeadlineMs?: number;
}

/**
 * How long one Neon API request may take and how long a call keeps retrying: the defaults suit
 * Neon; SUPANEON_NEON_REQUEST_TIMEOUT_SECONDS / SUPANEON_NEON_RETRY_DEADLINE_SECONDS shorten them
 * (fault tests) or lengthen them (a slow network). Environment variables rather than inputs: they
 * tune the transport, not what a run does.
 */
const NEON_TIMEOUT_VARIABLES = {
  requestTimeoutMs: 'SUPANEON_NEON_REQUEST_TIMEOUT_SECONDS',
  retryDeadlineMs: 'SUPANEON_NEON_RETRY_DEADLINE_SECONDS',
} as const;

function neonTimeoutsFrom(env: NodeJS.ProcessEnv, problems: string[]): NeonTimeouts {
  const out: { -readonly [K in keyof NeonTimeouts]: NeonTimeouts[K] } = {};
  for (const [key, variable] of Object.entries(NEON_TIMEOUT_VARIABLES) as [keyof NeonTimeouts, string][]) {
    const raw = env[variable]?.trim();
    if (raw === undefined || raw === '') continue;
    const seconds = Number(raw);
    if (!Number.isFinite(seconds) || seconds <= 0) {
      problems.push(`environment variable ${variable} must be a positive number of seconds: unset it or give e.g. 30`);
      continue;
    }
    out[key] = seconds * 1000;
  }
  return Object.freeze(out);
}

/** backup-branch value that reads the standby itself instead of a backup branch (restore, recover). */
export const STANDBY = 'standby';

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(
      `invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` + problems.map((p) => `- ${p}`).join('\n'),
    );
    this.name = 'ConfigError';
  }
}

// Neon project ids are lowercase words and digits joined by hyphens, e.g. 'late-frost-12345678'.
const NEON_PROJECT_ID = /^[a-z0-9]+(?:-[a-z0-9]+)+$/;
// Prefixes become the start of Neon branch names; keep them to characters every tool shows plainly.
const BRANCH_PREFIX = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$/;
// MongoDB database names may not contain these (and no NUL); also limited to 63 bytes.
const MONGO_DB_FORBIDDEN = /[/\\. "$*<>:|?\0]/;
const SECURE_SSLMODES = ['require', 'verify-ca', 'verify-full'];
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

type Problem = { input: InputName; message: string };

function problem(ctx: z.RefinementCtx, input: InputName, message: string): void {
  ctx.addIssue({ code: 'custom', path: [input], message });
}

/** Splits a list input: commas or newlines, blanks dropped. */
function listOf(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/**
 * A list input written but holding no item (`" , ,"`): refused, because an empty list means
 * "everything" and a value that lost its names must not widen the selection.
 */
function onlySeparators(ctx: z.RefinementCtx, input: InputName, value: string | undefined, names: readonly string[], what: string): void {
  if (value !== undefined && value.trim() !== '' && names.length === 0) {
    problem(
      ctx,
      input,
      `holds only separators (commas, new lines) and no ${what}: list ${what}s, or leave it empty for ${input === 'exclude' ? 'no exclusion' : 'everything'}`,
    );
  }
}

/** One SQL query a line; blank lines dropped. Commas belong to SQL, so only newlines separate. */
function linesOf(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function parseUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

/**
 * Drivers misparse a password with unescaped delimiters and then echo pieces of it in their
 * errors ("Unable to parse ss:w"), so such passwords are refused before any driver sees them.
 */
function passwordProblem(value: string): string | undefined {
  const userInfo = userInfoOf(value);
  if (userInfo === undefined) return undefined;
  const password = userInfo.slice(userInfo.indexOf(':') + 1);
  if (userInfo.includes(':') && /[:/?#[\]@]/.test(password)) {
    return 'has a password with unescaped special characters: percent-encode : / ? # [ ] @ in it (e.g. @ as %40, / as %2F)';
  }
  if (/%(?![0-9A-Fa-f]{2})/.test(userInfo)) {
    return "has a user name or password with a '%' that does not start a %XX escape: write a literal % as %25";
  }
  return undefined;
}

/** MongoDB URIs may list several hosts, which WHATWG URL refuses; check the parts by hand. */
function mongoUriProblem(value: string): string | undefined {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(value);
  if (!scheme) return 'is not a connection string: it must start with mongodb:// or mongodb+srv://';
  if (scheme[1] !== 'mongodb' && scheme[1] !== 'mongodb+srv') {
    return `has scheme '${scheme[1]}': it must start with mongodb:// or mongodb+srv://`;
  }
  const badPassword = passwordProblem(value);
  if (badPassword) return badPassword;
  const rest = value.slice(scheme[0].length);
  const authority = rest.split(/[/?#]/, 1)[0] ?? '';
  const hosts = authority.slice(authority.lastIndexOf('@') + 1);
  if (hosts === '' || hosts.split(',').some((h) => h.trim() === '')) {
    return 'names no host: it must look like mongodb+srv://user:password@cluster.example.net/';
  }
  if (scheme[1] === 'mongodb+srv' && hosts.includes(',')) {
    return 'lists several hosts, which mongodb+srv:// does not allow: use one SRV host name';
  }
  if (/\s/.test(value)) return 'contains white space: copy the connection string again without spaces or line breaks';
  return undefined;
}

function neonDatabaseUrlProblem(value: string): string | undefined {
  // Without '://' whatever precedes the first ':' may be part of a pasted password: never echo it.
  const hasScheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(value);
  const badPassword = hasScheme ? passwordProblem(value) : undefined;
  if (badPassword) return badPassword;
  const url = hasScheme ? parseUrl(value) : undefined;
  if (!url) return 'is not a valid URL: copy the connection string from the Neon console (postgresql://…)';
  const scheme = url.protocol.replace(/:$/, '');
  if (scheme !== 'postgres' && scheme !== 'postgresql') {
    return `has scheme '${scheme}': it must start with postgresql:// or postgres://`;
  }
  if (url.hostname === '') return 'names no host: copy the connection string from the Neon console';
  const sslmode = url.searchParams.get('sslmode');
  if (sslmode === null) {
    return 'has no sslmode: TLS to Neon is required; add ?sslmode=require (or verify-full) to the connection string';
  }
  if (!SECURE_SSLMODES.includes(sslmode)) {
    return `has sslmode=${sslmode}, which allows unencrypted or unverified connections: TLS to Neon is required; use sslmode=require, verify-ca or verify-full`;
  }
  const channelBinding = url.searchParams.get('channel_binding');
  if (channelBinding !== null && channelBinding !== '' && !['require', 'prefer', 'disable'].includes(channelBinding)) {
    return `has channel_binding=${channelBinding}: use require (as Neon's console writes it), prefer or disable, or leave it out`;
  }
  return undefined;
}

function apiHostProblem(value: string): string | undefined {
  const url = parseUrl(value);
  if (!url) return `is not a valid URL: use the API base URL, e.g. ${DEFAULT_NEON_API_HOST}`;
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:') {
    return LOOPBACK_HOSTS.has(url.hostname) || /^127\.\d+\.\d+\.\d+$/.test(url.hostname)
      ? undefined
      : 'uses http:// for a non-local host, which would send the API key unencrypted: use https://';
  }
  return `has scheme '${url.protocol.replace(/:$/, '')}': use https://, e.g. ${DEFAULT_NEON_API_HOST}`;
}

/** A whole number within the input's range (inputs.ts); its default when unset. */
function integerInput(input: InputOfKind<'integer'>) {
  const spec: { min: number; max: number; default?: number } = INPUTS[input];
  const { min, max } = spec;
  const fallback = spec.default;
  return z
    .string()
    .optional()
    .transform((value, ctx): number | undefined => {
      if (value === undefined) return fallback;
      if (!/^\d+$/.test(value)) {
        problem(ctx, input, `must be a whole number from ${min} to ${max}; got '${value}'`);
        return z.NEVER;
      }
      const n = Number(value);
      if (n < min || n > max) {
        problem(ctx, input, `must be from ${min} to ${max}; got ${n}`);
        return z.NEVER;
      }
      return n;
    });
}

function booleanInput(input: InputOfKind<'boolean'>) {
  const fallback: boolean = INPUTS[input].default;
  return z
    .string()
    .optional()
    .transform((value, ctx): boolean => {
      if (value === undefined) return fallback;
      if (value === 'true') return true;
      if (value === 'false') return false;
      problem(ctx, input, `must be true or false; got '${value}'`);
      return z.NEVER;
    });
}

/** The start of Neon branch names; its default (inputs.ts) when unset. */
function prefixInput(input: 'branch-prefix' | 'restore-prefix') {
  const fallback: string = INPUTS[input].default;
  return z
    .string()
    .optional()
    .transform((value, ctx): string => {
      if (value === undefined) return fallback;
      if (!BRANCH_PREFIX.test(value)) {
        problem(
          ctx,
          input,
          `is not usable in Neon branch names: use 1 to 64 letters, digits, '.', '_', '-' or '/', starting with a letter or digit (e.g. '${fallback}')`,
        );
        return z.NEVER;
      }
      return value;
    });
}

/** A secret string: the rule reports problems without the value. */
function secretInput(input: InputOfKind<'secret'>, check: (v: string) => string | undefined) {
  return z
    .string()
    .optional()
    .superRefine((value, ctx) => {
      if (value === undefined) return;
      const wrong = check(value);
      if (wrong) problem(ctx, input, wrong);
    });
}

/**
 * Where a backup reads from and a recover writes to: exactly one of a live MongoDB and a mongodump
 * directory each. The dump inputs belong to those modes only.
 */
function dumpRules(
  ctx: z.RefinementCtx,
  mode: Mode,
  inputs: {
    'mongodb-uri'?: string;
    'source-dump-dir'?: string;
    'target-mongodb-uri'?: string;
    'target-dump-dir'?: string;
    'dump-gzip': boolean;
    'dump-archive': boolean;
  },
): void {
  const source = inputs['source-dump-dir'];
  const target = inputs['target-dump-dir'];
  if (mode === 'backup' || mode === 'validate') {
    if (source !== undefined && inputs['mongodb-uri'] !== undefined) {
      problem(ctx, 'source-dump-dir', 'and mongodb-uri are both set: a backup reads one source; remove one of them');
    } else if (source === undefined && inputs['mongodb-uri'] === undefined) {
      problem(
        ctx,
        'mongodb-uri',
        `is required for mode ${mode}: ${requiredHint('mongodb-uri')}; or pass source-dump-dir to back up a mongodump directory`,
      );
    }
  } else if (source !== undefined) {
    problem(ctx, 'source-dump-dir', `is used only by modes backup and validate, not ${mode}: remove it`);
  }
  if (mode === 'recover') {
    if (target !== undefined && inputs['target-mongodb-uri'] !== undefined) {
      problem(ctx, 'target-dump-dir', 'and target-mongodb-uri are both set: recover writes to one target; remove one of them');
    } else if (target === undefined && inputs['target-mongodb-uri'] === undefined) {
      problem(
        ctx,
        'target-mongodb-uri',
        `is required for mode recover: ${requiredHint('target-mongodb-uri')}; or pass target-dump-dir to write a mongodump directory`,
      );
    }
    for (const input of ['dump-gzip', 'dump-archive'] as const) {
      if (inputs[input] && target === undefined) {
        problem(ctx, input, `shapes the dump written to target-dump-dir, which is not set: set target-dump-dir, or remove ${input}`);
      }
    }
  } else if (target !== undefined) {
    problem(ctx, 'target-dump-dir', `is used only by mode recover, not ${mode}: remove it`);
  }
}

function buildSchema() {
  const patternList = (input: InputName) =>
    z
      .string()
      .optional()
      .transform((value, ctx) => {
        const patterns = listOf(value);
        onlySeparators(ctx, input, value, patterns, 'pattern');
        for (const p of patterns) {
          const wrong = validatePattern(p);
          if (wrong) problem(ctx, input, `is not usable: ${wrong}`);
        }
        return patterns;
      });

  // One rule per input of inputs.ts (`satisfies` below makes a missing or unknown one a compile
  // error); defaults and ranges come from the table, rules that span inputs follow in superRefine.
  const perInput = {
    mode: z.string().optional(),
    'mongodb-uri': secretInput('mongodb-uri', mongoUriProblem),
    'neon-api-key': secretInput('neon-api-key', (v) =>
      /\s/.test(v) ? 'contains white space: copy the key again without spaces or line breaks' : undefined,
    ),
    'neon-project-id': z
      .string()
      .optional()
      .superRefine((value, ctx) => {
        if (value !== undefined && !NEON_PROJECT_ID.test(value)) {
          problem(
            ctx,
            'neon-project-id',
            `'${value}' does not look like a Neon project id (lowercase words and digits joined by hyphens, e.g. 'late-frost-12345678'): copy it from the project's settings page`,
          );
        }
      }),
    'neon-database-url': secretInput('neon-database-url', neonDatabaseUrlProblem),
    'neon-api-host': z
      .string()
      .optional()
      .transform((value, ctx) => {
        const host = value ?? INPUTS['neon-api-host'].default;
        const wrong = apiHostProblem(host);
        if (wrong) problem(ctx, 'neon-api-host', wrong);
        return host.replace(/\/+$/, '');
      }),
    databases: z
      .string()
      .optional()
      .transform((value, ctx) => {
        const names = listOf(value);
        onlySeparators(ctx, 'databases', value, names, 'database name');
        for (const name of names) {
          if (MONGO_DB_FORBIDDEN.test(name) || Buffer.byteLength(name) > 63) {
            problem(
              ctx,
              'databases',
              `'${name}' is not a MongoDB database name (at most 63 bytes, none of / \\ . " $ * < > : | ? or spaces): list database names separated by commas or new lines`,
            );
          }
        }
        return names;
      }),
    include: patternList('include'),
    exclude: patternList('exclude'),
    'branch-prefix': prefixInput('branch-prefix'),
    retain: integerInput('retain'),
    'retain-days': integerInput('retain-days'),
    'backup-branch': z.string().optional(),
    'restore-prefix': prefixInput('restore-prefix'),
    'restore-ttl-minutes': integerInput('restore-ttl-minutes'),
    verify: z
      .string()
      .optional()
      .transform((value, ctx): 'full' | 'sample' => {
        if (value === undefined) return INPUTS.verify.default;
        if ((INPUTS.verify.choices as readonly string[]).includes(value)) return value as 'full' | 'sample';
        problem(ctx, 'verify', `must be 'full' or 'sample'; got '${value}'`);
        return z.NEVER;
      }),
    'sample-size': integerInput('sample-size'),
    checks: z.string().optional().transform(linesOf),
    'compare-source': booleanInput('compare-source'),
    'keep-restore-branch': booleanInput('keep-restore-branch'),
    'target-mongodb-uri': secretInput('target-mongodb-uri', mongoUriProblem),
    'target-database-prefix': z
      .string()
      .optional()
      .transform((value, ctx) => {
        const prefix = value ?? '';
        if (MONGO_DB_FORBIDDEN.test(prefix) || Buffer.byteLength(prefix) > 32) {
          problem(
            ctx,
            'target-database-prefix',
            `'${prefix}' cannot start a MongoDB database name: use at most 32 bytes and none of / \\ . " $ * < > : | ? or spaces (e.g. 'restored_')`,
          );
        }
        return prefix;
      }),
    'drop-target': booleanInput('drop-target'),
    'batch-size': integerInput('batch-size'),
    'parallel-collections': integerInput('parallel-collections'),
    'lock-wait-seconds': integerInput('lock-wait-seconds'),
    'max-backup-age': z
      .string()
      .optional()
      .transform((value, ctx): { ms: number; text: string } | undefined => {
        if (value === undefined) return undefined;
        const ms = parseMaxAge(value);
        if (typeof ms === 'string') {
          problem(ctx, 'max-backup-age', ms);
          return z.NEVER;
        }
        return { ms, text: value };
      }),
    'allow-selection-change': booleanInput('allow-selection-change'),
    'github-token': secretInput('github-token', (v) =>
      /\s/.test(v) ? 'contains white space: pass ${{ github.token }} or a token from a secret, without spaces or line breaks' : undefined,
    ),
    'source-dump-dir': z.string().optional(),
    'target-dump-dir': z.string().optional(),
    'dump-gzip': booleanInput('dump-gzip'),
    'dump-archive': booleanInput('dump-archive'),
  } satisfies Record<InputName, z.ZodType>;

  return z
    .object(perInput)
    .superRefine(
      (inputs, ctx) => {
        const mode = inputs.mode;
        if (mode === undefined) {
          problem(ctx, 'mode', `is required: ${requiredHint('mode')}`);
          return;
        }
        if (!(MODES as readonly string[]).includes(mode)) {
          problem(ctx, 'mode', `'${mode}' is not a mode: use one of ${MODES.join(', ')}`);
          return;
        }
        for (const input of REQUIRED_BY_MODE[mode as Mode]) {
          if (inputs[input] === undefined) problem(ctx, input, `is required for mode ${mode}: ${requiredHint(input)}`);
        }
        if (mode === 'restore' && inputs['compare-source'] && inputs['mongodb-uri'] === undefined) {
          problem(
            ctx,
            'mongodb-uri',
            'is required when compare-source is true: pass the source connection string, or set compare-source to false',
          );
        }
        dumpRules(ctx, mode as Mode, inputs);
        if (inputs['backup-branch'] === STANDBY && mode !== 'recover' && mode !== 'restore') {
          problem(
            ctx,
            'backup-branch',
            "'standby' is accepted only by modes restore and recover: name a backup branch (name or id), or leave it empty for the newest",
          );
        }
      },
      { when: () => true },
    ) // cross-input rules run even when single inputs failed: report everything at once
    .transform((i): Omit<Config, 'neonTimeouts' | 'githubRun'> =>
      Object.freeze({
        mode: i.mode as Mode,
        mongodbUri: i['mongodb-uri'],
        neonApiKey: i['neon-api-key'] ?? '',
        neonProjectId: i['neon-project-id'] ?? '',
        neonDatabaseUrl: i['neon-database-url'] ?? '',
        neonApiHost: i['neon-api-host'],
        databases: Object.freeze(i.databases),
        include: Object.freeze(i.include),
        exclude: Object.freeze(i.exclude),
        branchPrefix: i['branch-prefix'],
        retain: i.retain as number,
        retainDays: i['retain-days'],
        backupBranch: i['backup-branch'],
        restorePrefix: i['restore-prefix'],
        restoreTtlMinutes: i['restore-ttl-minutes'] as number,
        verify: i.verify,
        sampleSize: i['sample-size'] as number,
        checks: Object.freeze(i.checks),
        compareSource: i['compare-source'],
        keepRestoreBranch: i['keep-restore-branch'],
        targetMongodbUri: i['target-mongodb-uri'],
        targetDatabasePrefix: i['target-database-prefix'],
        dropTarget: i['drop-target'],
        batchSize: i['batch-size'] as number,
        parallelCollections: i['parallel-collections'] as number,
        lockWaitSeconds: i['lock-wait-seconds'] as number,
        maxBackupAgeMs: i['max-backup-age']?.ms,
        maxBackupAge: i['max-backup-age']?.text,
        allowSelectionChange: i['allow-selection-change'],
        githubToken: i['github-token'],
        sourceDumpDir: i['source-dump-dir'],
        targetDumpDir: i['target-dump-dir'],
        dumpGzip: i['dump-gzip'],
        dumpArchive: i['dump-archive'],
      }),
    );
}

/**
 * The effective raw value of every input: the input when set, else its environment fallback;
 * trimmed, with '' meaning unset. Unknown keys are kept so parseConfig can refuse them.
 */
export function effectiveInputs(input: RawInputs, env: NodeJS.ProcessEnv = process.env): EffectiveInputs {
  const out: RawInputs = {};
  for (const [key, value] of Object.entries(input)) {
    const v = key === 'checks' ? value : value?.trim();
    if (v !== undefined && v.trim() !== '') out[key] = v;
  }
  for (const [input, variable] of Object.entries(ENV_FALLBACKS)) {
    // A backup of a dump reads no MongoDB: MONGODB_SRV_URL, set for other runs, must not become a second source.
    if (input === 'mongodb-uri' && out['source-dump-dir'] !== undefined) continue;
    const fromEnv = env[variable]?.trim();
    if (out[input] === undefined && fromEnv) out[input] = fromEnv;
  }
  return out as EffectiveInputs;
}

/** Raw inputs (with their environment fallbacks) -> Config; throws ConfigError listing every problem. */
export function parseConfig(input: RawInputs, env: NodeJS.ProcessEnv = process.env): Config {
  return configFrom(effectiveInputs(input, env), env, currentGithubRun());
}

/**
 * The Config of inputs already made effective (run.ts does that once per run) and of the
 * environment: the Neon timeouts read from env, the GitHub run as the edge read it.
 */
export function configFrom(raw: EffectiveInputs, env: NodeJS.ProcessEnv, githubRun: GithubRunInfo | undefined): Config {
  const problems: Problem[] = [];
  for (const key of Object.keys(raw)) {
    if (!(INPUT_NAMES as readonly string[]).includes(key)) {
      problems.push({ input: key as InputName, message: 'is not an input of supaneon-sync: check its spelling against action.yml' });
    }
  }
  const result = buildSchema().safeParse(raw);
  const environmentProblems: string[] = [];
  const neonTimeouts = neonTimeoutsFrom(env, environmentProblems);
  if (result.success && problems.length === 0 && environmentProblems.length === 0)
    return Object.freeze({ ...result.data, neonTimeouts, githubRun });
  if (!result.success) {
    for (const issue of result.error.issues) {
      problems.push({ input: String(issue.path[0] ?? 'mode') as InputName, message: issue.message });
    }
  }
  throw new ConfigError([...problems.map((p) => `input '${p.input}' ${p.message}`), ...environmentProblems]);
}
