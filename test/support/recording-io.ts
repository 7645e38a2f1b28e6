/**
 * An Io that records everything a mode writes, for tests that call a mode function directly:
 * log lines (warnings and errors prefixed, each log group as a `# name` line), outputs, the job
 * summary and saved state, in order.
 */
import type { Io, Logger } from '../../src/io.js';

export interface RecordingIo extends Io {
  outputs: Record<string, string>;
  state: [string, string][];
  summary: string;
  lines: string[];
}

export function recordingIo(): RecordingIo {
  const lines: string[] = [];
  const log: Logger = {
    info: (m) => void lines.push(m),
    warn: (m) => void lines.push(`warning: ${m}`),
    error: (m) => void lines.push(`error: ${m}`),
    debug: () => undefined,
    group: async (name, fn) => {
      lines.push(`# ${name}`);
      return fn();
    },
  };
  const io: RecordingIo = {
    log,
    outputs: {},
    state: [],
    summary: '',
    lines,
    setOutput: (name, value) => void (io.outputs[name] = String(value)),
    appendSummary: async (md) => void (io.summary += md),
    saveState: (name, value) => void io.state.push([name, value]),
  };
  return io;
}
