/**
 * The command line's behaviour: `supaneon-sync <mode> [--input-name value ...]`, the same inputs as action.yml
 * (kebab-case flags), the same environment fallbacks, the same code path as the action.
 * Exit codes: 0 success, 1 the mode failed, 2 usage error.
 */
import { parseArgs as parseArgTokens } from 'node:util';
import type { RawInputs } from './config.js';
import { BOOLEAN_INPUTS, helpLine, INPUT_NAMES, MODES, placeholderOf } from './inputs.js';
import type { Io } from './io.js';
import { inertLogText, markdownTextToPlain, showControlCharacters } from './log-safety.js';
import { redact } from './secrets.js';
import { guardCrashes, runFromInputs } from './run.js';

const FLAG_INPUTS = INPUT_NAMES.filter((n) => n !== 'mode');

/** One line per flag, from the inputs table (inputs.ts): placeholder, help, env fallback, range, default. */
function flagLines(): string {
  const flags = FLAG_INPUTS.map((name) => `--${name} ${placeholderOf(name)}`);
  const width = Math.max(...flags.map((f) => f.length)) + 2;
  return FLAG_INPUTS.map((name, i) => `  ${flags[i].padEnd(width)}${helpLine(name)}`).join('\n');
}

export const HELP = `Usage: supaneon-sync <mode> [--input-name value ...]

Back up MongoDB into Neon Postgres, verify restores, recover into MongoDB.

Modes:
  validate   check everything a backup needs (nothing is changed)
  backup     sync MongoDB (or a mongodump directory) into the standby branch and freeze it as a backup branch
  restore    restore a backup into a temporary branch and verify it
  recover    write a backup back into MongoDB (or into a mongodump directory, for mongorestore)

Inputs (flags take the action's input names; see docs/INPUTS.md for every detail):
${flagLines()}

Flags accept --name value or --name=value; boolean flags alone mean true.
Outputs are printed as name=value lines at the end.
Exit codes: 0 success, 1 failure, 2 usage error.
`;

export class UsageError extends Error {}

// Flag names this CLI may repeat in a message; anything else that starts with '-' is not shown.
const FLAG_NAME = /^[a-z0-9-]+$/;

/** `[mode, ...flags]` -> raw inputs; throws UsageError on anything it does not understand. */
export function parseArgs(args: readonly string[]): RawInputs {
  // A stray argument is named by its position, never shown: it is often a value that lost its
  // flag, and values here are connection strings and keys.
  const [mode, ...rest] = args;
  if (mode === undefined || mode.startsWith('-')) throw new UsageError(`the first argument must be a mode: ${MODES.join(', ')}`);
  if (!(MODES as readonly string[]).includes(mode)) {
    throw new UsageError(`argument 1 is not a mode (not shown, it could be a secret): use one of ${MODES.join(', ')}`);
  }
  // Not strict: util.parseArgs's own errors quote the argument (a value could be a secret) and
  // refuse `--drop-target false`; the tokens are checked here instead. Boolean flags are declared
  // boolean so `--drop-target` alone is complete; every other flag takes the next argument as its
  // value, even one starting with '-'.
  const { tokens } = parseArgTokens({
    args: [...rest],
    options: Object.fromEntries(FLAG_INPUTS.map((name) => [name, { type: BOOLEAN_INPUTS.includes(name) ? 'boolean' : 'string' }] as const)),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const raw: RawInputs = { mode };
  // The flag given as the argument right before a stray one, named in the message when that
  // argument was the flag alone (`--retain=5`, `--drop-target`), never when it was a value.
  let flagBefore: { index: number; flag: string } | undefined;
  const unexpected = (index: number) => {
    const after = flagBefore?.index === index - 1 ? ` (after ${flagBefore.flag})` : '';
    return new UsageError(
      `unexpected argument ${index + 2}${after} (not shown, it could be a secret): inputs are given as --input-name value; ` +
        'quote a value that contains spaces',
    );
  };
  let consumed = -1;
  for (const token of tokens) {
    if (token.index === consumed) continue; // a boolean flag's explicit value (a '-x' there is split into tokens too)
    if (token.kind !== 'option' || !token.rawName.startsWith('--') || !FLAG_NAME.test(token.name)) throw unexpected(token.index);
    const name = token.name;
    if (!(FLAG_INPUTS as readonly string[]).includes(name))
      throw new UsageError(`unknown flag --${name} (argument ${token.index + 2}): see supaneon-sync --help`);
    if (raw[name] !== undefined) throw new UsageError(`--${name} is given twice`);
    let value = token.value;
    if (value === undefined) {
      if (!(BOOLEAN_INPUTS as readonly string[]).includes(name)) throw new UsageError(`--${name} needs a value`);
      // A boolean flag alone means true; a following argument that is not a flag is its value.
      const next = rest[token.index + 1];
      if (next === undefined || next.startsWith('--')) {
        value = 'true';
      } else {
        value = next;
        consumed = token.index + 1;
      }
    }
    raw[name] = value;
    const valueWasNextArgument = token.value === undefined ? consumed === token.index + 1 : !token.inlineValue;
    flagBefore = valueWasNextArgument ? undefined : { index: token.index, flag: `--${name}` };
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
      out.push(
        row
          .map((cell, c) => cell.padEnd(widths[c]))
          .join('  ')
          .trimEnd(),
      );
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
