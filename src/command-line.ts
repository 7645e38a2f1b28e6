/**
 * The command line's behaviour: `supaneon-sync <mode> [--input-name value ...]`, the same inputs as action.yml
 * (kebab-case flags), the same environment fallbacks, the same code path as the action.
 * Exit codes: 0 success, 1 the mode failed, 2 usage error.
 */
import { BOOLEAN_INPUTS, INPUT_NAMES, MODES, type RawInputs } from './config.js';
import type { Io } from './io.js';
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
  --backup-branch NAME|ID       restore/recover: which backup (default the newest; recover also 'standby')
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
  const [mode, ...rest] = args;
  if (mode === undefined || mode.startsWith('-')) throw new UsageError(`the first argument must be a mode: ${MODES.join(', ')}`);
  if (!(MODES as readonly string[]).includes(mode)) throw new UsageError(`unknown mode '${mode}': use one of ${MODES.join(', ')}`);
  const raw: RawInputs = { mode };
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    const m = /^--([a-z0-9-]+)(?:=([\s\S]*))?$/.exec(arg);
    if (!m) throw new UsageError(`unexpected argument '${arg}': inputs are given as --input-name value`);
    const name = m[1];
    if (!(FLAG_INPUTS as readonly string[]).includes(name)) throw new UsageError(`unknown flag --${name}: see supaneon-sync --help`);
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
        .map((c) => unbold(c.trim().replace(/\\\|/g, '|').replace(/\\\\/g, '\\')));
      if (cells.every((c) => /^:?-+:?$/.test(c))) continue;
      table.push(cells);
      continue;
    }
    flush();
    const heading = /^#{1,6}\s+(.*)$/.exec(line);
    if (heading) {
      out.push(unbold(heading[1]), '='.repeat(unbold(heading[1]).length));
    } else {
      out.push(unbold(line));
    }
  }
  flush();
  return out.join('\n');
}

function terminalIo(outputs: Array<[string, string]>): Io {
  const write = (stream: NodeJS.WriteStream, text: string) => stream.write(`${text}\n`);
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
    process.stderr.write(`supaneon-sync: ${redact(error.message)}\nRun 'supaneon-sync --help' for usage.\n`);
    return 2;
  }
  guardCrashes((line) => process.stderr.write(`${line}\n`));
  const outputs: Array<[string, string]> = [];
  // Nothing to mask in a terminal (no runner scans it); redact() still covers every message.
  const result = await runFromInputs(raw, process.env, terminalIo(outputs), () => undefined);
  if (outputs.length > 0) process.stdout.write(`\n${outputs.map(([n, v]) => `${n}=${v}`).join('\n')}\n`);
  if (!result.ok) process.stderr.write(`${result.failure}\n`);
  return result.ok ? 0 : 1;
}
