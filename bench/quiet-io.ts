/**
 * The Io the benchmark hands to the product's modes: silent (logging to a terminal would cost time
 * and mix with the report), but it keeps what a measurement needs: the time spent in each log group
 * the product opens (per collection, per verification), the outputs, and every warning and error.
 */
import type { Io } from '../src/io.js';
import type { GroupTiming } from './protocol.js';

export interface RecordingIo extends Io {
  readonly groups: GroupTiming[];
  readonly outputs: Record<string, string>;
  readonly problems: string[];
}

export function quietIo(): RecordingIo {
  const groups: GroupTiming[] = [];
  const outputs: Record<string, string> = {};
  const problems: string[] = [];
  return {
    groups,
    outputs,
    problems,
    log: {
      info: () => undefined,
      debug: () => undefined,
      warn: (message) => problems.push(`warning: ${message}`),
      error: (message) => problems.push(`error: ${message}`),
      async group(name, fn) {
        const started = performance.now();
        try {
          return await fn();
        } finally {
          groups.push({ name, seconds: (performance.now() - started) / 1000 });
        }
      },
    },
    setOutput: (name, value) => {
      outputs[name] = String(value);
    },
    appendSummary: async () => undefined,
    saveState: () => undefined,
  };
}
