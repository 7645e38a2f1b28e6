/**
 * The command line's behaviour: `supaneon-sync <mode> [--input-name value ...]`, the same inputs as action.yml
 * (kebab-case flags), the same environment fallbacks, the same code path as the action.
 * Exit codes: 0 success, 1 the mode failed, 2 usage error.
 */
import type { RawInputs } from './config.js';
import { BOOLEAN_INPUTS, INPUT_NAMES, MODES } from './inputs.js';
import type { Io } from './io.js';
import { inertLogText, markdownTextToPlain, showControlCharacters } from './log-safety.js';
import { redact } from './secrets.js';
import { guardCrashes, runFromInputs } from './run.js';

export const HELP = `Usage: supaneon-sync <mode> [--input-name value ...]

Back up MongoDB into Neon Postgres, verify restores, recover into MongoDB.

Modes:
  validate   check everything a backup needs (nothing is changed)
  backup     sync MongoDB (or a mongodump directory) into the standby branch and freeze it as a backup branch
  restore    restore a backup into a temporary branch and verify it
  recover    write a backup back into MongoDB (or into a mongodump directory, for mongorestore)

Inputs (flags take the action's input names; see docs/INPUTS.md for every detail):
  --mongodb-uri URI             source MongoDB (env MONGODB_SRV_URL)
  --neon-api-key KEY            Neon API key (env NEON_API_KEY)
  --neon-project-id ID          Neon project id (env NEON_PROJECT_ID)
  --neon-database-url URL       standby branch connection string, sslmode=require (env NEON_DATABASE_URL)
  --neon-api-host URL           Neon API base URL (env NEON_API_HOST; default https://console.neon.tech/api/v2)
  --databases LIST              databases to back up (comma separated; default every non-system one)
  --include LIST, --exclude LIST  glob patterns over db.collection
  --branch-prefix P             backup branch name prefix (default backup-)
  --retain N, --retain-days N   how many / how old backups to keep (default 7 / unset)
  --backup-branch NAME|ID       restore/recover: which backup (default the newest; 'standby' for the standby)
  --restore-prefix P            restore branch name prefix (default restore-test-)
  --restore-ttl-minutes N       expiry of the temporary restore branch (default 60)
  --verify full|sample          restore verification depth (default full)
  --sample-size N               documents per collection when verify=sample (default 1000)
  --checks SQL                  restore: SQL queries, one a line, each must return true
  --compare-source BOOL         restore: compare counts with the live MongoDB (default false)
  --keep-restore-branch BOOL    restore: keep the temporary branch (default false)
  --target-mongodb-uri URI      recover: the MongoDB to write into (or --target-dump-dir)
  --target-database-prefix P    recover: prefix for target database names (default none)
  --drop-target BOOL            recover: replace non-empty target collections (default false)
  --batch-size N                documents per cursor batch (default 1000)
  --lock-wait-seconds N         backup: wait this long for a concurrent backup (default 0)
  --max-backup-age AGE          restore/validate: fail when the newest backup is older (90m, 26h, 7d)
  --allow-selection-change BOOL backup: accept dropping tables the previous backup selected (default false)
  --github-token TOKEN          alerts: open/close a tracking issue (needs GITHUB_REPOSITORY; see docs)
  --source-dump-dir DIR         backup: read this mongodump directory (or archive) instead of mongodb-uri
  --target-dump-dir DIR         recover: write a mongodump directory here instead of target-mongodb-uri
  --dump-gzip BOOL              recover into a dump: gzip the files like mongodump --gzip (default false)
  --dump-archive BOOL           recover into a dump: one mongodump --archive file (default false)

Flags accept --name value or --name=value; boolean flags alone mean true.
Outputs are printed as name=value lines at the end.
Exit codes: 0 success, 1 failure, 2 usage error.
`;

export class UsageError extends Error {}

const FLAG_INPUTS = INPUT_NAMES.filter((n) => n !== 'mode');

/** `[mode, ...flags]` -> raw inputs; throws UsageError on anything it does not understand. */
export function parseArgs(args: readonly string[]): RawInputs {
  // A stray argument is named by its position, never shown: it is often a value that lost its
  // flag, and values here are connection strings and keys.
  const [mode, ...rest] = args;
  if (mode === undefined || mode.startsWith('-')) throw new UsageError(`the first argument must be a mode: ${MODES.join(', ')}`);
  if (!(MODES as readonly string[]).includes(mode)) {
    throw new UsageError(`argument 1 is not a mode (not shown, it could be a secret): use one of ${MODES.join(', ')}`);
  }
  const raw: RawInputs = { mode };
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    const position = i + 2;
    const m = /^--([a-z0-9-]+)(?:=([\s\S]*))?$/.exec(arg);
    if (!m) {
      const after = i > 0 && rest[i - 1].startsWith('--') ? ` (after ${flagName(rest[i - 1])})` : '';
      throw new UsageError(
        `unexpected argument ${position}${after} (not shown, it could be a secret): inputs are given as --input-name value; ` +
          'quote a value that contains spaces',
      );
    }
    const name = m[1];
    if (!(FLAG_INPUTS as readonly string[]).includes(name)) throw new UsageError(`unknown flag --${name} (argument ${position}): see supaneon-sync --help`);
    if (raw[name] !== undefined) throw new UsageError(`--${name} is given twice`);
    let value = m[2];
    if (value === undefined) {
      const next = rest[i + 1];
      const isBoolean = (BOOLEAN_INPUTS as readonly string[]).includes(name);
      if (isBoolean && (next === undefined || next.startsWith('--'))) {
        value = 'true';
      } else {
        if (next === undefined) throw new UsageError(`--${name} needs a value`);
        value = next;
        i++;
      }
    }
    raw[name] = value;
  }
  return raw;
}

/** `--name=value` or `--name` -> `--name`, so a message can point at a flag without its value. */
function flagName(arg: string): string {
  return arg.split('=', 1)[0];
}

/** `**bold**` -> `bold`; a lone `***` (a redacted secret) stays as it is. */
function unbold(text: string): string {
  return text.replace(/(?<!\*)\*\*(?![*\s])([^*]+?)(?<!\s)\*\*(?!\*)/g, '$1');
}

/** Job-summary Markdown as terminal text: tables aligned in columns, emphasis dropped. */
export function markdownToText(markdown: string): string {
  const out: string[] = [];
  let table: string[][] = [];
  const flush = () => {
    if (table.length === 0) return;
    const widths = table[0].map((_, c) => Math.max(...table.map((r) => (r[c] ?? '').length)));
    table.forEach((row, r) => {
      out.push(row.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd());
      if (r === 0) out.push(widths.map((w) => '-'.repeat(w)).join('  '));
    });
    table = [];
  };
  for (const line of markdown.split('\n')) {
    if (/^\|.*\|$/.test(line.trim())) {
      const cells = line
        .trim()
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((c) => markdownTextToPlain(unbold(c.trim())));
      if (cells.every((c) => /^:?-+:?$/.test(c))) continue;
      table.push(cells);
      continue;
    }
    flush();
    const heading = /^#{1,6}\s+(.*)$/.exec(line);
    if (heading) {
      const text = markdownTextToPlain(unbold(heading[1]));
      out.push(text, '='.repeat(text.length));
    } else {
      out.push(markdownTextToPlain(unbold(line)));
    }
  }
  flush();
  return out.join('\n');
}

/**
 * Writes one message to the terminal. Control characters are always shown escaped; inside a GitHub
 * Actions step (`GITHUB_ACTIONS=true`, e.g. the CLI run from a workflow's `run:`) the runner reads
 * this output for workflow commands too, so a message that could be one is made inert as the
 * action does (log-safety.ts).
 */
function write(stream: NodeJS.WriteStream, text: string): void {
  stream.write(`${process.env.GITHUB_ACTIONS === 'true' ? inertLogText(text) : showControlCharacters(text)}\n`);
}

function terminalIo(outputs: Array<[string, string]>): Io {
  return {
    log: {
      info: (m) => write(process.stdout, m),
      warn: (m) => write(process.stderr, `warning: ${m}`),
      error: (m) => write(process.stderr, `error: ${m}`),
      debug: (m) => {
        if (process.env.RUNNER_DEBUG === '1') write(process.stderr, `debug: ${m}`);
      },
      group: async (name, fn) => {
        write(process.stdout, `\n== ${name} ==`);
        return fn();
      },
    },
    setOutput: (name, value) => {
      outputs.push([name, String(value)]);
    },
    appendSummary: async (markdown) => {
      write(process.stdout, `\n${markdownToText(markdown)}`);
    },
    // The CLI has no post step: nothing outlives the process, so there is no state to keep.
    saveState: () => undefined,
  };
}

export async function main(args: readonly string[]): Promise<number> {
  if (args.length === 0 || args.includes('--help') || args.includes('-h')) {
    (args.length === 0 ? process.stderr : process.stdout).write(HELP);
    return args.length === 0 ? 2 : 0;
  }
  let raw: RawInputs;
  try {
    raw = parseArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    write(process.stderr, `supaneon-sync: ${redact(error.message)}\nRun 'supaneon-sync --help' for usage.`);
    return 2;
  }
  guardCrashes((line) => write(process.stderr, line));
  const outputs: Array<[string, string]> = [];
  // Nothing to mask in a terminal (no runner scans it); redact() still covers every message.
  const result = await runFromInputs(raw, process.env, terminalIo(outputs), () => undefined);
  if (outputs.length > 0) write(process.stdout, `\n${outputs.map(([n, v]) => `${n}=${v}`).join('\n')}`);
  if (!result.ok) write(process.stderr, result.failure ?? 'supaneon-sync failed');
  return result.ok ? 0 : 1;
}
