/**
 * The action's main step: read every input through the toolkit, run the mode, report failure.
 * Everything the action writes goes through the redacting Io built here.
 */
import * as core from '@actions/core';
import { INPUT_NAMES, type RawInputs } from './config.js';
import type { Io } from './io.js';
import { inertLogText, showControlCharacters } from './log-safety.js';
import { guardCrashes, runFromInputs } from './run.js';

/** The Io of a GitHub Actions step: log commands, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_STATE. */
export function actionIo(): Io {
  return {
    // core.info writes the message as it is, so a name that looks like a workflow command is
    // wrapped (log-safety.ts); warnings, errors, debug lines and group names are the escaped data of
    // a command the toolkit writes, so only their control characters need showing.
    log: {
      info: (m) => core.info(inertLogText(m)),
      warn: (m) => core.warning(showControlCharacters(m)),
      error: (m) => core.error(showControlCharacters(m)),
      debug: (m) => core.debug(showControlCharacters(m)),
      group: (name, fn) => core.group(showControlCharacters(name), fn),
    },
    setOutput: (name, value) => core.setOutput(name, value),
    appendSummary: async (markdown) => {
      // Outside GitHub (a local `node dist/index.js`) there may be no summary file: the log has it all.
      if (!process.env.GITHUB_STEP_SUMMARY) {
        core.debug('GITHUB_STEP_SUMMARY is not set: job summary not written');
        return;
      }
      await core.summary.addRaw(markdown, true).write();
    },
    saveState: (name, value) => core.saveState(name, value),
  };
}

export function readInputs(): RawInputs {
  return Object.fromEntries(INPUT_NAMES.map((name) => [name, core.getInput(name)]));
}

export async function run(): Promise<void> {
  guardCrashes((line) => core.setFailed(showControlCharacters(line)));
  const result = await runFromInputs(readInputs(), process.env, actionIo(), (secret) => core.setSecret(secret));
  if (!result.ok) core.setFailed(showControlCharacters(result.failure ?? 'supaneon-sync failed'));
}
