// Reads a step's output the way GitHub's runner does (actions/runner: ActionCommandManager.
// TryProcessCommand, ActionCommand.TryParseV2 and TryParse), so tests can assert which workflow
// commands a run's log would really trigger, and the demo shows a log as GitHub would:
// - v2: after leading white space the line starts with `::name[ props]::data`;
// - v1: `##[name[ props]]data` ANYWHERE in the line;
// - `::stop-commands::<token>` stops all processing until a command named `<token>` arrives.
// Only registered command names count (the runner ignores unknown ones).

export interface WorkflowCommand {
  name: string;
  data: string;
  line: number;
}

const REGISTERED = [
  'add-mask',
  'add-matcher',
  'debug',
  'echo',
  'endgroup',
  'error',
  'group',
  'notice',
  'remove-matcher',
  'save-state',
  'set-env',
  'set-output',
  'warning',
  'add-path',
];

function unescapeData(s: string): string {
  return s.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%25/g, '%');
}

function parseLine(line: string, registered: Set<string>): { name: string; data: string } | undefined {
  const v2 = line.trimStart();
  if (v2.startsWith('::')) {
    const end = v2.indexOf('::', 2);
    if (end >= 0) {
      const info = v2.slice(2, end);
      const name = info.split(' ', 1)[0];
      if (registered.has(name.toLowerCase())) return { name: name.toLowerCase(), data: unescapeData(v2.slice(end + 2)) };
    }
  }
  const prefix = line.indexOf('##[');
  if (prefix >= 0) {
    const rb = line.indexOf(']', prefix);
    if (rb >= 0) {
      const name = line.slice(prefix + 3, rb).split(' ', 1)[0];
      if (registered.has(name.toLowerCase())) return { name: name.toLowerCase(), data: line.slice(rb + 1) };
    }
  }
  return undefined;
}

/**
 * Reads a log line by line as the runner does, keeping its state (`::stop-commands::`) from one
 * line to the next; for a log shown as it is written (the demo).
 */
export class WorkflowCommandReader {
  private readonly registered = new Set([...REGISTERED, 'stop-commands']);
  private stopToken: string | undefined;

  /**
   * The command the runner obeys on this line, if any. `stop-commands` and the command that
   * resumes processing change what later lines mean but are not returned.
   */
  read(line: string): { name: string; data: string } | undefined {
    const cmd = parseLine(line, this.registered);
    if (!cmd) return undefined;
    if (this.stopToken !== undefined) {
      if (cmd.name === this.stopToken.toLowerCase()) {
        this.registered.delete(this.stopToken.toLowerCase());
        this.stopToken = undefined;
      }
      return undefined;
    }
    if (cmd.name === 'stop-commands') {
      this.stopToken = cmd.data;
      this.registered.add(cmd.data.toLowerCase());
      return undefined;
    }
    return cmd;
  }
}

/** Every command the runner would obey in `output` (stdout or stderr of a step), in order. */
export function workflowCommands(output: string): WorkflowCommand[] {
  const reader = new WorkflowCommandReader();
  const found: WorkflowCommand[] = [];
  // The runner reads lines with .NET ReadLine: CR, LF and CR LF all end a line.
  output.split(/\r\n|\r|\n/).forEach((line, index) => {
    const cmd = reader.read(line);
    if (cmd) found.push({ name: cmd.name, data: cmd.data, line: index + 1 });
  });
  return found;
}
