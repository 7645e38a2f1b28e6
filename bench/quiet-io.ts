/**
 * The Io the benchmark hands to the product's modes: silent (logging to a terminal would cost time
 * and mix with the report), but it keeps what a measurement needs: the time spent in each log group
 * the product opens (per collection, per verification), the outputs, and every warning and error.
 */
import type { Io } from '../src/io.js';
import type { GroupTiming } from './protocol.js';

export interface TimelineEvent {
  /** Seconds since the Io was made. */
  at: number;
  text: string;
}

export interface RecordingIo extends Io {
  readonly groups: GroupTiming[];
  /** Info lines with their time, to split a mode into its phases afterwards. */
  readonly timeline: TimelineEvent[];
  readonly outputs: Record<string, string>;
  readonly problems: string[];
}

export function quietIo(): RecordingIo {
  const groups: GroupTiming[] = [];
  const outputs: Record<string, string> = {};
  const problems: string[] = [];
  const timeline: TimelineEvent[] = [];
  const origin = performance.now();
  const at = () => (performance.now() - origin) / 1000;
  return {
    groups,
    timeline,
    outputs,
    problems,
    log: {
      // Bounded: progress lines of a long collection would otherwise pile up.
      info: (message) => void (timeline.length < 500 && timeline.push({ at: at(), text: message })),
      debug: () => undefined,
      warn: (message) => problems.push(`warning: ${message}`),
      error: (message) => problems.push(`error: ${message}`),
      async group(name, fn) {
        const started = at();
        try {
          return await fn();
        } finally {
          groups.push({ name, seconds: at() - started, startedAt: started });
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
