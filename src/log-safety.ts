/**
 * Log lines that carry data (collection and database names, server messages) made inert before
 * they reach a GitHub Actions log, and Markdown that shows data as text.
 *
 * How the runner reads a step's output (actions/runner, ActionCommand.TryParseV2 / TryParse):
 * every line of stdout and stderr is a workflow command when, after leading white space, it starts
 * with `::name…::` (v2), or when it contains `##[name…]` ANYWHERE (v1, still parsed). So a
 * collection named `x\n::add-mask::br-` or `a ##[add-mask]br-` written with `core.info` would make
 * the runner mask `br-` (and drop every job output that contains it).
 *
 * Why `::stop-commands::` and not escaping:
 * - the toolkit's own escaping (`escapeData`: % CR LF as %25 %0D %0A) exists only for the data of a
 *   command it writes itself; `core.info` writes a message as it is. Escaping a plain line that way
 *   would print `50%25` for `50%`, and it does nothing against `::` at line start or `##[` inside.
 * - Rewriting `::` and `##[` in names (say, with an invisible character) changes what the user
 *   searches for in the log and needs the runner's exact grammar to stay as it is today.
 * - `::stop-commands::<token>` … `::<token>::` is the runner's documented way to print text it must
 *   not interpret: the lines between are shown exactly and nothing in them is obeyed. The token is
 *   random and fresh per message, so the data cannot contain the line that resumes processing.
 *   `core.warning`/`core.error`/`core.debug`/group names are already safe: they are written as a
 *   command whose data the toolkit escapes, so the whole message is that command's data.
 * Only messages that could be read as a command are wrapped; every other line prints as it is.
 *
 * Control characters (other than line feed and tab) are shown as `\u001b`-style escapes wherever a
 * message is written, so a name cannot rewrite a terminal line (CR) or inject ANSI sequences.
 */
import { randomBytes } from 'node:crypto';

// C0 controls except TAB and LF, DEL, C1 controls, and the Unicode line/paragraph separators.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/g;

/** Control characters (except tab and line feed) as visible `\uXXXX` escapes. */
export function showControlCharacters(text: string): string {
  return text.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Whether some line of `text` would be obeyed by the runner as a workflow command. */
export function couldBeWorkflowCommand(text: string): boolean {
  return text.split(/\r\n|\r|\n/).some((line) => /^\s*::/.test(line) || line.includes('##['));
}

/**
 * The text to write for one plain log message: control characters shown, and, when some line
 * could be read as a workflow command, wrapped in `::stop-commands::` so the runner prints it
 * without obeying it.
 */
export function inertLogText(message: string, token: () => string = freshToken): string {
  const shown = showControlCharacters(message);
  if (!couldBeWorkflowCommand(shown)) return shown;
  let t = token();
  while (shown.includes(t)) t = token();
  return `::stop-commands::${t}\n${shown}\n::${t}::`;
}

function freshToken(): string {
  return `supaneon-${randomBytes(16).toString('hex')}`;
}

/**
 * `text` as Markdown that renders exactly as this text: HTML's `< > &` as entities, the inline
 * Markdown metacharacters backslash-escaped (`\\ \` * [ ] | ~`, and `_` where it could start or end
 * emphasis: not between letters or digits, so `shop_orders` stays readable in the raw file), line
 * breaks as spaces (a table row or paragraph stays one line), control characters shown. For names
 * and messages that came from the data; block syntax (`#`, `-` at line start) never applies because
 * such text is always placed inside a line this product writes.
 */
export function markdownText(text: string | number): string {
  return showControlCharacters(String(text))
    .replace(/\r\n|\r|\n/g, ' ')
    .replace(/[\\`*[\]|~]|(?<![\p{L}\p{N}])_|_(?![\p{L}\p{N}])/gu, (c) => `\\${c}`)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
}

/** markdownText undone: what a reader of the rendered Markdown sees (used by the CLI's text summary). */
export function markdownTextToPlain(markdown: string): string {
  return markdown
    .replace(/\\([!-/:-@[-`{-~])/g, '$1')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}
