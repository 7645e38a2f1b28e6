/**
 * One run from raw inputs, shared by the action and the CLI: register every secret before anything
 * is written, wrap the Io so every message is redacted, parse the configuration, run the mode,
 * turn any failure into the single line the edge reports, and (with github-token) alert.
 */
import { ALERT_MODES, sendAlert } from './alerts.js';
import { ConfigError, configFrom, effectiveInputs, type EffectiveInputs, type RawInputs } from './config.js';
import { currentGithubRun, type GithubRunInfo } from './github-run.js';
import { SECRET_INPUTS, type Mode } from './inputs.js';
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
function redactingIo(io: Io): Io {
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
export function secureIo(effective: EffectiveInputs, rawIo: Io, mask: MaskFn): Io {
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
  // Read once here, at the edge: masking, the configuration and the alert all see the same values.
  const effective = effectiveInputs(raw, env);
  const githubRun = currentGithubRun();
  const errors: string[] = [];
  const io = recordingErrors(secureIo(effective, rawIo, mask), errors);
  const result = await runMode(effective, env, githubRun, io);
  // sendAlert reports its own problems; this only guards the result against anything unforeseen.
  await alertIfAsked(effective, githubRun, result, errors, io).catch((error: unknown) =>
    io.log.warn(`alert: not sent: ${messageOf(error)}`),
  );
  return result;
}

async function runMode(
  effective: EffectiveInputs,
  env: NodeJS.ProcessEnv,
  githubRun: GithubRunInfo | undefined,
  io: Io,
): Promise<RunResult> {
  const modeName = effective.mode || 'run';
  const failed = (reason: string): RunResult => ({ ok: false, failure: redact(`supaneon-sync ${modeName} failed: ${reason}`) });

  let config;
  try {
    config = configFrom(effective, env, githubRun);
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

/** The Io with every error line (already redacted) also kept, for the alert's details. */
function recordingErrors(io: Io, errors: string[]): Io {
  return {
    ...io,
    log: {
      ...io.log,
      error: (m) => {
        errors.push(redact(m));
        io.log.error(m);
      },
    },
  };
}

/**
 * With github-token, tells the repository's tracking issue how this run went (alerts.ts). Also
 * for a configuration that does not parse: a broken workflow must alert as loudly as a broken
 * backup. Never changes the result.
 */
async function alertIfAsked(
  effective: EffectiveInputs,
  run: GithubRunInfo | undefined,
  result: RunResult,
  errors: readonly string[],
  io: Io,
): Promise<void> {
  const token = effective['github-token'];
  const mode = effective.mode as Mode | undefined;
  if (!token || /\s/.test(token) || !mode || !ALERT_MODES.includes(mode)) return;
  if (!run) {
    io.log.warn(
      'alert: github-token is set, but GITHUB_REPOSITORY and GITHUB_RUN_ID are not (this is not a GitHub Actions run), so no alert was sent',
    );
    return;
  }
  const outcome = result.ok
    ? { ok: true as const }
    : { ok: false as const, failure: result.failure ?? `supaneon-sync ${mode} failed`, details: errors };
  await sendAlert({ token, mode, run, outcome, log: io.log });
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
