/**
 * One run from raw inputs, shared by the action and the CLI: register every secret before anything
 * is written, wrap the Io so every message is redacted, parse the configuration, run the mode, and
 * turn any failure into the single line the edge reports.
 */
import { ConfigError, effectiveInputs, parseConfig, SECRET_INPUTS, type RawInputs } from './config.js';
import type { Io } from './io.js';
import { dispatch } from './modes/index.js';
import { reportInvalidConfiguration } from './modes/validate.js';
import { MIN_MASK_LENGTH, redact, registerSecret, type MaskFn } from './secrets.js';

export interface RunResult {
  ok: boolean;
  /** `supaneon-sync <mode> failed: <reason>` (redacted) when ok is false. */
  failure?: string;
}

/**
 * Outputs that carry free text (check details, which quote server messages): redacted. Every other
 * output is an id, a name or a number this product generated or read from Neon, and passes as it
 * is: rewriting one (`b***-cold-leaf-1`) would hand the next job a value that does not exist.
 */
const FREE_TEXT_OUTPUTS = new Set(['report']);

/**
 * An Io whose every message and summary passes through redact(), and every free-text output.
 * Outputs and state that hold ids, names and numbers are written unchanged (see above).
 */
export function redactingIo(io: Io): Io {
  return {
    log: {
      info: (m) => io.log.info(redact(m)),
      warn: (m) => io.log.warn(redact(m)),
      error: (m) => io.log.error(redact(m)),
      debug: (m) => io.log.debug(redact(m)),
      group: (name, fn) => io.log.group(redact(name), fn),
    },
    setOutput: (name, value) => io.setOutput(name, FREE_TEXT_OUTPUTS.has(name) ? redact(String(value)) : value),
    appendSummary: (markdown) => io.appendSummary(redact(markdown)),
    // State holds only the temporary branch's name and id, made by this product.
    saveState: (name, value) => io.saveState(name, value),
  };
}

/**
 * Registers every secret input (after env fallbacks, valid or not: a malformed URL still holds a
 * password) and returns the redacting Io. Call before writing anything.
 */
export function secureIo(raw: RawInputs, env: NodeJS.ProcessEnv, rawIo: Io, mask: MaskFn): Io {
  const effective = effectiveInputs(raw, env);
  const tooShort = SECRET_INPUTS.filter((input) => registerSecret(effective[input], mask));
  const io = redactingIo(rawIo);
  if (tooShort.length > 0) {
    io.log.warn(
      `${tooShort.join(', ')}: a password or key shorter than ${MIN_MASK_LENGTH} characters is too short to mask safely ` +
        '(the runner would hide every occurrence of it, inside branch ids and numbers too, and drop the job outputs that contain it). ' +
        'It is not registered for masking; it is still removed from every connection string this action prints. ' +
        `Fix: use a password or key of at least ${MIN_MASK_LENGTH} characters.`,
    );
  }
  return io;
}

export async function runFromInputs(raw: RawInputs, env: NodeJS.ProcessEnv, rawIo: Io, mask: MaskFn): Promise<RunResult> {
  const io = secureIo(raw, env, rawIo, mask);
  const modeName = raw.mode?.trim() || 'run';
  const failed = (reason: string): RunResult => ({ ok: false, failure: redact(`supaneon-sync ${modeName} failed: ${reason}`) });

  let config;
  try {
    config = parseConfig(raw, env);
  } catch (error) {
    if (!(error instanceof ConfigError)) return failed(messageOf(error));
    if (modeName === 'validate') {
      await reportInvalidConfiguration(error.problems, io);
      return failed(`${error.problems.length} configuration problem${error.problems.length === 1 ? '' : 's'} (listed above)`);
    }
    return failed(error.message);
  }

  try {
    const ok = await dispatch(config, io);
    return ok ? { ok } : failed('one or more checks failed (see the errors above and the job summary)');
  } catch (error) {
    if (error instanceof Error && error.stack) io.log.debug(error.stack);
    return failed(messageOf(error));
  }
}

/**
 * Node prints an uncaught error's message and stack to stderr as they are, where a driver's
 * error could carry a connection string. Report such a crash redacted instead, and exit 1.
 */
export function guardCrashes(report: (line: string) => void): void {
  const crash = (error: unknown) => {
    report(redact(`supaneon-sync failed unexpectedly: ${messageOf(error)}`));
    process.exit(1);
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
