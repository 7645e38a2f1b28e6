// Reads a step's output the way GitHub's runner does (actions/runner: ActionCommandManager.
// TryProcessCommand, ActionCommand.TryParseV2 and TryParse), so tests can assert which workflow
// commands a run's log would really trigger:
// - v2: after leading white space the line starts with `::name[ props]::data`;
// - v1: `##[name[ props]]data` ANYWHERE in the line;
// - `::stop-commands::<token>` stops all processing until a command named `<token>` arrives.
// Only registered command names count (the runner ignores unknown ones).

export interface WorkflowCommand {
  name: string;
  data: string;
  line: number;
}

const REGISTERED = ['add-mask', 'add-matcher', 'debug', 'echo', 'endgroup', 'error', 'group', 'notice', 'remove-matcher', 'save-state', 'set-env', 'set-output', 'warning', 'add-path'];

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

/** Every command the runner would obey in `output` (stdout or stderr of a step), in order. */
export function workflowCommands(output: string): WorkflowCommand[] {
  const registered = new Set([...REGISTERED, 'stop-commands']);
  const found: WorkflowCommand[] = [];
  let stopToken: string | undefined;
  // The runner reads lines with .NET ReadLine: CR, LF and CR LF all end a line.
  output.split(/\r\n|\r|\n/).forEach((line, index) => {
    const cmd = parseLine(line, registered);
    if (!cmd) return;
    if (stopToken !== undefined) {
      if (cmd.name === stopToken.toLowerCase()) {
        registered.delete(stopToken.toLowerCase());
        stopToken = undefined;
      }
      return;
    }
    if (cmd.name === 'stop-commands') {
      stopToken = cmd.data;
      registered.add(cmd.data.toLowerCase());
      return;
    }
    found.push({ name: cmd.name, data: cmd.data, line: index + 1 });
  });
  return found;
}
